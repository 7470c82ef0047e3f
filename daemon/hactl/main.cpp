// hactl: a thin client of duetd's control socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "proto/control.hpp"

namespace {

using Json = nlohmann::json;
namespace pc = duet::proto::control;

// Exit codes: 0 ok, 1 the daemon answered with an error, 2 usage, 3 the daemon is not running
// (LSB's "program is not running"), 4 protocol error.
enum Exit { kOk = 0, kFailed = 1, kUsageError = 2, kNotRunning = 3, kProtocol = 4 };

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
  version           hactl's version
The socket defaults to $DUET_SOCKET or /run/duet/duetd.sock.
)";

class Client {
public:
    explicit Client(std::string path) : path_(std::move(path)) {}
    ~Client() {
        if (fd_ >= 0) ::close(fd_);
    }

    int connect() {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path_.size() >= sizeof addr.sun_path) {
            std::cerr << "hactl: socket path too long: " << path_ << "\n";
            return kUsageError;
        }
        std::memcpy(addr.sun_path, path_.c_str(), path_.size());
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            int e = errno;
            std::cerr << "hactl: cannot connect to duetd at " << path_ << ": " << std::strerror(e);
            if (e == ENOENT || e == ECONNREFUSED) std::cerr << " (is duetd running?)";
            if (e == EACCES) std::cerr << " (hactl needs root or the haclient group)";
            std::cerr << "\n";
            return e == EACCES ? kFailed : kNotRunning;
        }
        return kOk;
    }

    bool send(const pc::Request& r) {
        std::string line = pc::encode(r);
        size_t off = 0;
        while (off < line.size()) {
            ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                std::cerr << "hactl: write to duetd failed: " << std::strerror(errno) << "\n";
                return false;
            }
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // The next line, or nullopt at end of stream / error.
    std::optional<std::string> line() {
        while (true) {
            if (auto l = split_.next()) return l;
            if (split_.overflow()) {
                std::cerr << "hactl: duetd sent an over-long message\n";
                return std::nullopt;
            }
            char buf[65536];
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            split_.append(std::string_view(buf, static_cast<size_t>(n)));
        }
    }

    // Sends a request and waits for its response.
    int call(const std::string& command, Json args, Json& result) {
        if (!send(pc::Request{1, command, std::move(args)})) return kProtocol;
        auto l = line();
        if (!l) {
            std::cerr << "hactl: duetd closed the connection without answering\n";
            return kProtocol;
        }
        std::string err;
        auto r = pc::decode_response(*l, err);
        if (!r) {
            std::cerr << "hactl: bad answer from duetd: " << err << "\n";
            return kProtocol;
        }
        if (!r->ok) {
            std::cerr << "hactl: " << r->error << "\n";
            return kFailed;
        }
        result = std::move(r->result);
        return kOk;
    }

private:
    std::string path_;
    int fd_ = -1;
    pc::LineSplitter split_;
};

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
        if (json) std::cout << result.dump(2) << "\n";
        else print_status(result, gaps);
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
        while (auto l = c.line()) {
            std::string err;
            auto e = pc::decode_event(*l, err);
            if (!e) {
                std::cerr << "hactl: bad event from duetd: " << err << "\n";
                return kProtocol;
            }
            std::cout << e->event.dump() << std::endl;  // flushed per line, for pipes
        }
        std::cerr << "hactl: duetd closed the event stream\n";
        return kNotRunning;
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
