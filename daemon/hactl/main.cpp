// hactl: a thin client of duetd's control socket.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/model.hpp"
#include "daemon/hactl/client.hpp"
#include "daemon/hactl/replica.hpp"
#include "proto/control.hpp"

namespace {

using namespace duet::hactl;
namespace pc = duet::proto::control;

constexpr const char* kUsage = R"(usage: hactl [-s SOCKET] COMMAND
  status [--json] [--gaps]
                    nodes, heartbeat paths, timings, late heartbeats, rejected packets;
                    --gaps adds the histogram of intervals between the peer's heartbeats
  events            stream events (peer up/late/dead, path up/down, groups) as JSON lines
  standby [all|local|foreign] [--no-wait]
                    give this node's groups (all, those whose home is here, or the others)
                    to the peer, as Heartbeat's hb_standby; waits and reports the outcome
  takeover [all|local|foreign] [--no-wait]
                    take groups over from the peer, as Heartbeat's hb_takeover
  cleanup GROUP     clear GROUP's failures (and a blocked group's block) on both nodes
  maintenance on|off
                    stop / resume managing resources, leaving running ones untouched
  replica ...       replicated disks: create-md, up, down, primary, secondary, connect,
                    disconnect, status, events (hactl replica for details)
  import DIR [--output FILE [--force]]
                    convert Heartbeat's ha.cf, authkeys, haresources and drbd.conf in DIR
                    into an equivalent duet.toml (secrets included; a FILE gets mode 0600)
  version           hactl's version
The socket defaults to $DUET_SOCKET or /run/duet/duetd.sock.
)";

std::string duration(const Json& ms) {
    if (!ms.is_number()) return "-";
    double v = ms.get<double>();
    char buf[32];
    if (v < 1000) std::snprintf(buf, sizeof buf, "%.0fms", v);
    else if (v < 120000) std::snprintf(buf, sizeof buf, "%.1fs", v / 1000);
    else if (v < 7200000) std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(v / 60000), std::fmod(v / 1000, 60));
    else std::snprintf(buf, sizeof buf, "%.1fh", v / 3600000);
    return buf;
}

std::string pad(std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
}

// One line per path: how many gaps between the peer's heartbeats fell in each bucket.
void print_gaps(const Json& peer) {
    std::cout << "\nGaps between " << peer.value("name", "?") << "'s heartbeats (for choosing deadtime):\n";
    for (const auto& p : peer["paths"]) {
        const auto& g = p["gaps"];
        std::cout << "  " << p.value("name", "?") << ": " << g.value("count", 0) << " gaps, max "
                  << duration(g["max_ms"]) << "\n   ";
        Json lower = 0;
        bool any = false;
        for (const auto& b : g["buckets"]) {
            uint64_t n = b.value("count", 0);
            if (n) {
                std::cout << " " << (b["lt_ms"].is_null() ? ">=" + duration(lower) : duration(lower) + "-" + duration(b["lt_ms"]))
                          << ": " << n;
                any = true;
            }
            if (!b["lt_ms"].is_null()) lower = b["lt_ms"];
        }
        std::cout << (any ? "" : " (none yet)") << "\n";
    }
}

void print_groups(const Json& s) {
    if (!s.contains("groups") || s["groups"].empty()) return;
    size_t w = 8;
    for (const auto& g : s["groups"]) w = std::max(w, g.value("name", "?").size() + 2);
    std::cout << "\n" << pad("GROUP", w) << pad("HOME", 10) << pad("RUNS ON", 10) << pad("STATE", 10) << "FAILURES\n";
    for (const auto& g : s["groups"]) {
        std::cout << pad(g.value("name", "?"), w) << pad(g.value("home", "?"), 10)
                  << pad(g["node"].is_null() ? "-" : g["node"].get<std::string>(), 10) << pad(g.value("state", "?"), 10)
                  << g.value("failures", 0) << (g.value("standby", false) ? "  (standby here)" : "") << "\n";
        for (const auto& r : g["resources"])
            std::cout << "  - " << pad(r.value("name", "?"), w + 18) << r.value("state", "?") << "\n";
        if (g.contains("last_failure"))
            std::cout << "    last failure " << g["last_failure"].value("time", "") << ": "
                      << g["last_failure"].value("reason", "") << "\n";
    }
    if (s.value("maintenance", false)) std::cout << "Maintenance mode: resources are not managed on this node\n";
}

void print_status(const Json& s, bool gaps) {
    const auto& t = s["timings"];
    std::cout << "Cluster " << s.value("cluster", "?") << ", this node: " << s.value("node", "?") << " (generation "
              << s.value("generation", 0) << ", up " << duration(s["uptime_ms"]) << ")\n";
    std::cout << "Timings: keepalive " << duration(t["keepalive_ms"]) << ", warntime " << duration(t["warntime_ms"])
              << ", deadtime " << duration(t["deadtime_ms"]) << ", initdead " << duration(t["initdead_ms"]) << "\n\n";

    std::cout << pad("NODE", 16) << pad("STATE", 9) << pad("LAST HEARD", 12) << pad("LATE", 6) << pad("DEATHS", 8)
              << "RESTARTS\n";
    const Json* peer = nullptr;
    for (const auto& n : s["nodes"]) {
        bool self = n.value("self", false);
        if (!self) peer = &n;
        std::cout << pad(n.value("name", "?"), 16) << pad(n.value("state", "?"), 9)
                  << pad(self ? "(this node)" : (n["last_heard_ms_ago"].is_null() ? "never" : duration(n["last_heard_ms_ago"]) + " ago"), 12)
                  << pad(self ? "" : std::to_string(n.value("late", 0)), 6)
                  << pad(self ? "" : std::to_string(n.value("deaths", 0)), 8)
                  << (self ? "" : std::to_string(n.value("restarts", 0))) << "\n";
        if (!self && n.value("leaving", false)) std::cout << "  (" << n.value("name", "?") << " announced it is shutting down)\n";
    }
    std::cout << "\n"
              << pad("PATH", 34) << pad("SEND", 6) << pad("RECEIVE", 9) << pad("LAST HEARD", 12) << pad("RECEIVED", 10)
              << pad("LATE", 6) << "MAX GAP\n";
    const Json* self_node = nullptr;
    for (const auto& n : s["nodes"])
        if (n.value("self", false)) self_node = &n;
    if (self_node && peer) {
        const auto& sp = (*self_node)["paths"];
        const auto& pp = (*peer)["paths"];
        for (size_t i = 0; i < sp.size() && i < pp.size(); ++i) {
            const auto& a = sp[i];
            const auto& b = pp[i];
            std::cout << pad(a.value("name", "?"), 34) << pad(a.value("state", "?"), 6) << pad(b.value("state", "?"), 9)
                      << pad(b["last_heard_ms_ago"].is_null() ? "never" : duration(b["last_heard_ms_ago"]) + " ago", 12)
                      << pad(std::to_string(b.value("received", 0)), 10) << pad(std::to_string(b.value("late", 0)), 6)
                      << (b["gaps"].value("count", 0) ? duration(b["gaps"]["max_ms"]) : "-") << "\n";
            if (a.contains("error")) std::cout << "  send error: " << a["error"].get<std::string>() << "\n";
        }
    }
    const auto& rej = s["rejected"];
    uint64_t total = rej.value("total", 0);
    std::cout << "\nRejected packets: " << total;
    if (total) {
        std::cout << " (";
        bool first = true;
        for (const auto& [k, v] : rej.items()) {
            if (k == "total" || k == "own") continue;
            std::cout << (first ? "" : ", ") << k << " " << v;
            first = false;
        }
        std::cout << ")";
    }
    std::cout << "\n";
    print_groups(s);
    if (gaps && peer) print_gaps(*peer);
}

// ---- hactl import: no daemon involved; the conversion is config::import_to_toml().

// Owns a file descriptor.
class FileFd {
public:
    explicit FileFd(int fd) : fd_(fd) {}
    ~FileFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileFd(const FileFd&) = delete;
    FileFd& operator=(const FileFd&) = delete;
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

bool write_all(int fd, const std::string& text) {
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Writes `text` to `path` with mode 0600, since it holds the secrets. Without `force` the file
// must not exist. With `force` a temporary file next to it replaces it by rename(), so an
// interrupted write never leaves a half-written configuration. Returns what went wrong, or "".
std::string write_private_file(const std::string& path, const std::string& text, bool force) {
    auto failed = [&](const std::string& what) { return what + ": " + std::strerror(errno); };
    if (!force) {
        FileFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (fd.get() < 0) {
            if (errno == EEXIST) return path + " already exists; add --force to replace it";
            return failed("cannot create " + path);
        }
        if (!write_all(fd.get(), text) || ::fchmod(fd.get(), 0600) != 0 || ::fsync(fd.get()) != 0) {
            std::string err = failed("cannot write " + path);
            ::unlink(path.c_str());
            return err;
        }
        if (::close(fd.release()) != 0) {
            std::string err = failed("cannot write " + path);
            ::unlink(path.c_str());
            return err;
        }
        return "";
    }
    std::string tmp = path + ".XXXXXX";
    FileFd fd(::mkstemp(tmp.data()));  // mode 0600
    if (fd.get() < 0) return failed("cannot create a temporary file next to " + path);
    if (!write_all(fd.get(), text) || ::fchmod(fd.get(), 0600) != 0 || ::fsync(fd.get()) != 0 || ::close(fd.release()) != 0 ||
        ::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string err = failed("cannot write " + path);
        ::unlink(tmp.c_str());
        return err;
    }
    return "";
}

// hactl import DIR [--output FILE] [--force]
int import_main(const std::vector<std::string>& args) {
    std::optional<std::string> dir, output;
    bool force = false;
    for (size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--output" || args[i] == "-o") {
            if (i + 1 >= args.size()) {
                std::cerr << "hactl: import: " << args[i] << " needs a file name\n";
                return kUsageError;
            }
            output = args[++i];
        } else if (args[i] == "--force") {
            force = true;
        } else if (!args[i].empty() && args[i][0] == '-') {
            std::cerr << "hactl: import: unknown option " << args[i] << "; expected import DIR [--output FILE [--force]]\n";
            return kUsageError;
        } else if (dir) {
            std::cerr << "hactl: import takes one directory (holding ha.cf, authkeys, haresources, drbd.conf), got "
                      << *dir << " and " << args[i] << "\n";
            return kUsageError;
        } else {
            dir = args[i];
        }
    }
    if (!dir) {
        std::cerr << "hactl: import needs the directory holding ha.cf, authkeys, haresources and drbd.conf "
                     "(such as /etc/ha.d)\n";
        return kUsageError;
    }
    if (force && !output) {
        std::cerr << "hactl: import: --force only applies with --output FILE\n";
        return kUsageError;
    }
    duet::config::Source src;
    src.ha_dir = *dir;
    duet::config::Diagnostics diag;
    auto text = duet::config::import_to_toml(src, diag);
    std::cerr << diag.str();
    if (!text) {
        std::cerr << "hactl: import: " << *dir << " was not converted (see the errors above)\n";
        return kFailed;
    }
    if (!output) {
        std::cout << *text << std::flush;
        return std::cout ? kOk : kFailed;
    }
    std::string err = write_private_file(*output, *text, force);
    if (!err.empty()) {
        std::cerr << "hactl: import: " << err << "\n";
        return kFailed;
    }
    std::cerr << "hactl: import: wrote " << *output << " (mode 0600: it holds the secrets); check it with "
              << "`duetd --check-config -c " << *output << "`\n";
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    std::string sock = std::getenv("DUET_SOCKET") ? std::getenv("DUET_SOCKET") : "/run/duet/duetd.sock";
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-s" || a == "--socket") {
            if (i + 1 >= argc) {
                std::cerr << "hactl: " << a << " needs a path\n" << kUsage;
                return kUsageError;
            }
            sock = argv[++i];
        } else if (a == "-h" || a == "--help" || a == "help") {
            std::cout << kUsage;
            return kOk;
        } else {
            args.push_back(a);
        }
    }
    if (args.empty()) {
        std::cerr << kUsage;
        return kUsageError;
    }
    const std::string cmd = args[0];
    if (cmd == "version" || cmd == "--version") {
        std::cout << "hactl " DUET_VERSION "\n";
        return kOk;
    }
    if (cmd == "replica") return replica_main(args);
    if (cmd == "import") return import_main(args);
    if (cmd == "status") {
        bool json = false, gaps = false;
        for (size_t i = 1; i < args.size(); ++i) {
            if (args[i] == "--json") json = true;
            else if (args[i] == "--gaps") gaps = true;
            else {
                std::cerr << "hactl: status: unknown argument " << args[i] << "\n" << kUsage;
                return kUsageError;
            }
        }
        Client c(sock);
        if (int rc = c.connect()) return rc;
        Json result;
        if (int rc = c.call("status", Json::object(), result)) return rc;
        // The replicated disks' engines are separate processes with their own sockets.
        Json replicas = replica_statuses();
        if (json) {
            result["replicas"] = replicas;
            std::cout << result.dump(2) << "\n";
        } else {
            print_status(result, gaps);
            print_replica_summary(replicas);
        }
        return kOk;
    }
    if (cmd == "events") {
        if (args.size() > 1) {
            std::cerr << "hactl: events takes no arguments\n";
            return kUsageError;
        }
        Client c(sock);
        if (int rc = c.connect()) return rc;
        Json result;
        if (int rc = c.call("events", Json::object(), result)) return rc;
        // duetd's events and those of every replica engine running here (their own sockets).
        std::vector<std::unique_ptr<Client>> engines;
        for (const auto& path : replica_sockets()) {
            auto e = std::make_unique<Client>(path, "replica engine " + path);
            Json r;
            if (e->connect() == kOk && e->call("events", Json::object(), r) == kOk) engines.push_back(std::move(e));
        }
        for (;;) {
            std::vector<pollfd> fds{{c.fd(), POLLIN, 0}};
            for (const auto& e : engines) fds.push_back({e->fd(), POLLIN, 0});
            if (::poll(fds.data(), fds.size(), -1) < 0) {
                if (errno == EINTR) continue;
                return kProtocol;
            }
            for (size_t i = 0; i < fds.size(); ++i) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                Client& from = i == 0 ? c : *engines[i - 1];
                bool open = from.read_some();
                while (auto l = from.buffered_line()) {
                    std::string err;
                    auto e = pc::decode_event(*l, err);
                    if (!e) {
                        std::cerr << "hactl: bad event: " << err << "\n";
                        return kProtocol;
                    }
                    std::cout << e->event.dump() << std::endl;  // flushed per line, for pipes
                }
                if (!open) {
                    if (i == 0) {
                        std::cerr << "hactl: duetd closed the event stream\n";
                        return kNotRunning;
                    }
                    std::cerr << "hactl: a replica engine closed its event stream\n";
                    engines.erase(engines.begin() + static_cast<long>(i - 1));
                    break;  // indexes changed: poll again
                }
            }
        }
    }
    auto simple = [&](const std::string& command, Json args) -> int {
        Client c(sock);
        if (int rc = c.connect()) return rc;
        Json result;
        if (int rc = c.call(command, std::move(args), result)) return rc;
        if (result.contains("groups") && result["groups"].is_array() && !result["groups"].empty()) {
            for (const auto& g : result["groups"]) {
                std::cout << g.value("name", "?") << ": ";
                if (g.contains("node")) std::cout << (g["node"].is_null() ? "runs nowhere" : "runs on " + g["node"].get<std::string>());
                else std::cout << g.value("state", "?");
                std::cout << "\n";
            }
        } else if (result.contains("message")) {
            std::cout << result["message"].get<std::string>() << "\n";
        } else {
            std::cout << result.dump() << "\n";
        }
        return kOk;
    };
    if (cmd == "standby" || cmd == "takeover") {
        std::string scope = "all";
        bool wait = true;
        for (size_t i = 1; i < args.size(); ++i) {
            if (args[i] == "--no-wait") wait = false;
            else if (args[i] == "all" || args[i] == "local" || args[i] == "foreign") scope = args[i];
            else {
                std::cerr << "hactl: " << cmd << ": expected all, local, foreign or --no-wait, got " << args[i] << "\n";
                return kUsageError;
            }
        }
        return simple(cmd, Json{{"scope", scope}, {"wait", wait}});
    }
    if (cmd == "cleanup") {
        if (args.size() != 2) {
            std::cerr << "hactl: cleanup needs one group name (see hactl status)\n";
            return kUsageError;
        }
        return simple(cmd, Json{{"group", args[1]}});
    }
    if (cmd == "maintenance") {
        if (args.size() != 2 || (args[1] != "on" && args[1] != "off")) {
            std::cerr << "hactl: maintenance on|off\n";
            return kUsageError;
        }
        return simple(cmd, Json{{"on", args[1] == "on"}});
    }
    std::cerr << "hactl: unknown command '" << cmd << "'\n" << kUsage;
    return kUsageError;
}
