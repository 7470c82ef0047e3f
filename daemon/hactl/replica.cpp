// hactl replica ...: metadata creation, and the replica engines' control sockets.
#include "daemon/hactl/replica.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "daemon/config/model.hpp"
#include "daemon/hactl/client.hpp"
#include "daemon/replication/metadata.hpp"

namespace fs = std::filesystem;

namespace duet::hactl {
namespace {

const char* kReplicaUsage = R"(usage: hactl replica COMMAND [NAME] [options]
  create-md NAME [--force]   write fresh metadata on this node's backing disk for NAME
  up NAME                    start NAME's engine on this node (duetd does this at start)
  down NAME                  stop NAME's engine (refused while its device is in use)
  primary NAME [--force] [--overwrite-data-of-peer] [--peer-dead]
                             promote: serve the device on this node (--peer-dead: the
                             cluster declared the peer dead; a silent link is dropped at once)
  secondary NAME             demote (refused while the device is mounted)
  connect NAME | disconnect NAME
                             (re)connect / drop the replication link
  status [NAME] [--json]     roles, disk states, connection, counters, resync progress
  events NAME                stream NAME's events as JSON lines
Options for create-md and up: -c FILE | --ha-dir DIR (as duetd), --node NAME.
Engine sockets: $DUET_REPLICA_DIR (default /run/duet/replica)/NAME.sock.
)";

std::string run_dir() {
    const char* d = std::getenv("DUET_REPLICA_DIR");
    return d && *d ? d : "/run/duet/replica";
}
std::string socket_of(const std::string& name) { return run_dir() + "/" + name + ".sock"; }

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string human(double b) {
    const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        ++i;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, i == 0 ? "%.0f %s" : "%.1f %s", b, u[i]);
    return buf;
}

struct Common {
    config::Source source;
    std::optional<std::string> node;
    bool force = false, overwrite = false, json = false, peer_dead = false;
    std::vector<std::string> positional;
};

int parse(const std::vector<std::string>& args, size_t from, Common& c) {
    for (size_t i = from; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= args.size()) return std::nullopt;
            return args[++i];
        };
        if (a == "-c" || a == "--config" || a == "--ha-dir" || a == "--node") {
            auto v = value();
            if (!v) {
                std::cerr << "hactl: replica: " << a << " needs a value\n";
                return kUsageError;
            }
            if (a == "--ha-dir") c.source.ha_dir = *v;
            else if (a == "--node") c.node = *v;
            else c.source.toml_path = *v;
        } else if (a == "--force") c.force = true;
        else if (a == "--overwrite-data-of-peer") c.overwrite = true;
        else if (a == "--peer-dead") c.peer_dead = true;
        else if (a == "--json") c.json = true;
        else if (!a.empty() && a[0] == '-') {
            std::cerr << "hactl: replica: unknown option " << a << "\n" << kReplicaUsage;
            return kUsageError;
        } else c.positional.push_back(a);
    }
    if (c.source.toml_path && c.source.ha_dir) {
        std::cerr << "hactl: replica: give either --config or --ha-dir, not both\n";
        return kUsageError;
    }
    if (!c.source.toml_path && !c.source.ha_dir) {
        if (fs::exists("/etc/duet/duet.toml")) c.source.toml_path = "/etc/duet/duet.toml";
        else c.source.ha_dir = "/etc/ha.d";
    }
    return kOk;
}

// The configuration, this node's name and NAME's settings; prints why not and returns false.
bool load_replica(const Common& c, const std::string& name, config::Config& cfg, std::string& self,
                  const config::Replica*& rep) {
    config::Diagnostics diag;
    cfg = config::load(c.source, diag);
    for (const auto& d : diag.items())
        if (d.severity == config::Diagnostic::Severity::Error) std::cerr << d.str() << "\n";
    if (diag.has_errors()) return false;
    if (c.node) self = lower(*c.node);
    else {
        utsname u{};
        ::uname(&u);
        self = lower(u.nodename);
    }
    if (cfg.nodes.size() != 2 || (cfg.nodes[0] != self && cfg.nodes[1] != self)) {
        std::cerr << "hactl: this node's name '" << self << "' is not one of the configured nodes; use --node NAME\n";
        return false;
    }
    rep = nullptr;
    for (const auto& r : cfg.replicas)
        if (r.name == name) rep = &r;
    if (!rep) {
        std::cerr << "hactl: no replica '" << name << "' in " << (cfg.sources.empty() ? "the configuration" : cfg.sources.front());
        if (!cfg.replicas.empty()) {
            std::cerr << " (defined:";
            for (const auto& r : cfg.replicas) std::cerr << " " << r.name;
            std::cerr << ")";
        }
        std::cerr << "\n";
        return false;
    }
    return true;
}

uint64_t size_of(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return 0;
    if (S_ISBLK(st.st_mode)) {
        uint64_t n = 0;
        return ::ioctl(fd, BLKGETSIZE64, &n) == 0 ? n : 0;
    }
    return static_cast<uint64_t>(st.st_size);
}

bool answers(const std::string& name) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string p = socket_of(name);
    if (p.size() >= sizeof a.sun_path) {
        ::close(fd);
        return false;
    }
    std::memcpy(a.sun_path, p.c_str(), p.size());
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

int create_md(const Common& c) {
    if (c.positional.size() != 1) {
        std::cerr << "hactl: replica create-md needs one replica name\n";
        return kUsageError;
    }
    const std::string& name = c.positional[0];
    config::Config cfg;
    std::string self;
    const config::Replica* rep;
    if (!load_replica(c, name, cfg, self, rep)) return kFailed;
    const config::ReplicaNode* me = rep->on(self);
    if (!me) {
        std::cerr << "hactl: replica " << name << " has no settings for node " << self << "\n";
        return kFailed;
    }
    if (answers(name)) {
        std::cerr << "hactl: the engine of replica " << name << " is running on this node and owns its metadata: "
                  << "stop it first (hactl replica down " << name << ")\n";
        return kFailed;
    }
    bool internal = me->meta_disk == "internal";
    int fd = ::open(me->disk.c_str(), O_RDWR | O_CLOEXEC | (internal ? O_EXCL : 0));
    if (fd < 0) {
        std::cerr << "hactl: cannot open " << me->disk << ": " << std::strerror(errno)
                  << (errno == EBUSY ? " (in use: is it mounted, or is the replica's engine running?)" : "") << "\n";
        return kFailed;
    }
    int mfd = internal ? fd : ::open(me->meta_disk.c_str(), O_RDWR | O_CLOEXEC | O_EXCL);
    if (mfd < 0) {
        std::cerr << "hactl: cannot open the metadata device " << me->meta_disk << ": " << std::strerror(errno) << "\n";
        ::close(fd);
        return kFailed;
    }
    int rc = kOk;
    try {
        uint64_t backing = size_of(fd);
        auto layout = replication::compute_layout(backing, internal, internal ? 0 : size_of(mfd));
        bool exists = false;
        try {
            auto old = replication::layout_of_existing(mfd, backing, internal, internal ? 0 : size_of(mfd));
            (void)replication::read_superblock(mfd, old);
            exists = true;
        } catch (const std::exception&) {
        }
        if (exists && !c.force) {
            std::cerr << "hactl: " << (internal ? me->disk : me->meta_disk) << " already holds Duet metadata for a replica; "
                      << "creating it again forgets its generation and out-of-sync bitmap (the next connection then "
                      << "needs a full sync). Add --force to do it anyway.\n";
            rc = kFailed;
        } else if (auto why = internal ? replication::filesystem_in_the_way(fd, layout.data_size, me->disk) : std::nullopt;
                   why && !c.force) {
            std::cerr << "hactl: " << *why << "\n";
            rc = kFailed;
        } else {
            replication::create_md(mfd, layout, name);
            std::cout << "replica " << name << ": metadata written on " << (internal ? me->disk + " (internal)" : me->meta_disk)
                      << "; device size " << layout.data_size << " bytes (" << human(double(layout.data_size)) << ")\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "hactl: create-md " << name << ": " << e.what() << "\n";
        rc = kFailed;
    }
    if (mfd != fd) ::close(mfd);
    ::close(fd);
    return rc;
}

// duet-replicad next to hactl (a build tree), in ../sbin (an installation), or on PATH.
std::string replicad_path() {
    if (const char* p = std::getenv("DUET_REPLICAD"); p && *p) return p;
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (auto cand : {self.parent_path() / "duet-replicad", self.parent_path().parent_path() / "sbin" / "duet-replicad"})
            if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    return "duet-replicad";
}

int up(const Common& c) {
    if (c.positional.size() != 1) {
        std::cerr << "hactl: replica up needs one replica name\n";
        return kUsageError;
    }
    const std::string& name = c.positional[0];
    if (answers(name)) {
        std::cout << "replica " << name << ": engine already running\n";
        return kOk;
    }
    std::vector<std::string> argv{replicad_path(), "--replica", name, "--run-dir", run_dir()};
    if (c.source.toml_path) argv.insert(argv.end(), {"-c", *c.source.toml_path});
    else argv.insert(argv.end(), {"--ha-dir", *c.source.ha_dir});
    if (c.node) argv.insert(argv.end(), {"--node", *c.node});
    pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> av;
        for (auto& s : argv) av.push_back(s.data());
        av.push_back(nullptr);
        ::execvp(av[0], av.data());
        std::cerr << "hactl: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
        ::_exit(127);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);  // duet-replicad returns once its socket answers (or it failed)
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        std::cout << "replica " << name << ": engine started\n";
        return kOk;
    }
    std::cerr << "hactl: the engine of replica " << name << " did not start (see above)\n";
    return kFailed;
}

void print_status(const Json& s) {
    auto str = [](const Json& v) { return v.is_null() ? std::string("Unknown") : v.get<std::string>(); };
    std::cout << s.value("replica", "?") << ": " << s.value("role", "?") << "/" << str(s["peer_role"]) << "  "
              << s.value("disk", "?") << "/" << (s["peer_disk"].is_null() ? std::string("DUnknown") : str(s["peer_disk"]))
              << "  " << s.value("connection", "?") << "  protocol " << s.value("protocol", "?")
              << (s.value("encrypted", false) ? " (encrypted)" : "") << "\n";
    std::cout << "    device " << s.value("device", "?");
    if (!s["loop"].is_null()) std::cout << " -> " << s["loop"].get<std::string>();
    std::cout << ", " << human(s.value("size", 0.0)) << " on " << s.value("backing", "?") << "; peer "
              << s.value("peer", "?") << " at " << s.value("peer_address", "?") << "\n";
    const auto& k = s["counters"];
    std::cout << "    sent " << human(k.value("sent", 0.0)) << "  received " << human(k.value("received", 0.0))
              << "  written " << human(k.value("written", 0.0)) << "  read " << human(k.value("read", 0.0))
              << "  out of sync " << human(k.value("out_of_sync", 0.0)) << "  al " << k.value("al_transactions", 0) << "\n";
    if (!s["sync"].is_null()) {
        const auto& y = s["sync"];
        double total = y.value("total", 0.0), left = y.value("left", 0.0);
        double pct = total > 0 ? 100.0 * (total - left) / total : 0;
        int bar = static_cast<int>(pct / 5);
        std::cout << "    [" << std::string(bar, '=') << ">" << std::string(20 - bar, '.') << "] "
                  << (y.value("role", "") == "source" ? "sync'ed to peer: " : "sync'ed from peer: ");
        char buf[128];
        std::snprintf(buf, sizeof buf, "%.1f%% (%s left of %s)", pct, human(left).c_str(), human(total).c_str());
        std::cout << buf << "\n";
        std::cout << "    speed " << human(y.value("rate", 0.0)) << "/s";
        if (!y["eta_s"].is_null()) {
            uint64_t e = y["eta_s"].get<uint64_t>();
            std::snprintf(buf, sizeof buf, "  finish %llu:%02llu:%02llu", static_cast<unsigned long long>(e / 3600),
                          static_cast<unsigned long long>(e / 60 % 60), static_cast<unsigned long long>(e % 60));
            std::cout << buf;
        }
        std::cout << "\n";
    }
    if (!s["last_error"].is_null()) std::cout << "    last event: " << s["last_error"].get<std::string>() << "\n";
}

int call(const std::string& name, const std::string& command, Json args, Json& result) {
    Client c(socket_of(name), "the engine of replica " + name);
    if (int rc = c.connect()) return rc;
    return c.call(command, std::move(args), result);
}

std::vector<std::string> engine_names() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(run_dir(), ec))
        if (e.path().extension() == ".sock") names.push_back(e.path().stem());
    std::sort(names.begin(), names.end());
    return names;
}

int status(const Common& c) {
    std::vector<std::string> names = c.positional;
    if (names.empty()) {
        names = engine_names();
        if (names.empty()) {
            if (c.json) std::cout << "[]\n";
            else std::cout << "no replica engine is running on this node\n";
            return kOk;
        }
    }
    Json all = Json::array();
    int worst = kOk;
    for (const auto& n : names) {
        Json r;
        if (int rc = call(n, "status", Json::object(), r)) {
            worst = rc;
            continue;
        }
        if (c.json) all.push_back(r);
        else print_status(r);
    }
    if (c.json) std::cout << (c.positional.size() == 1 && !all.empty() ? all[0] : all).dump(2) << "\n";
    return worst;
}

}  // namespace

Json replica_statuses() {
    Json all = Json::array();
    for (const auto& n : engine_names()) {
        if (!answers(n)) continue;  // a stale socket of a stopped engine
        Client c(socket_of(n), "the engine of replica " + n);
        Json r;
        // Quietly: a summary line says what could not be read.
        std::streambuf* saved = std::cerr.rdbuf(nullptr);
        int rc = c.connect();
        if (rc == kOk) rc = c.call("status", Json::object(), r);
        std::cerr.rdbuf(saved);
        if (rc == kOk) all.push_back(r);
        else all.push_back(Json{{"replica", n}, {"error", "engine did not answer"}});
    }
    return all;
}

void print_replica_summary(const Json& statuses) {
    if (statuses.empty()) return;
    std::cout << "\n" << "REPLICA   ROLE                 DISK                  CONNECTION  OUT OF SYNC  DEVICE\n";
    for (const auto& s : statuses) {
        auto col = [](std::string v, size_t w) {
            if (v.size() < w) v.append(w - v.size(), ' ');
            return v + " ";
        };
        if (s.contains("error")) {
            std::cout << col(s.value("replica", "?"), 9) << s["error"].get<std::string>() << "\n";
            continue;
        }
        auto str = [](const Json& v, const char* unknown) { return v.is_null() ? std::string(unknown) : v.get<std::string>(); };
        std::string sync;
        if (!s["sync"].is_null()) {
            const auto& y = s["sync"];
            double total = y.value("total", 0.0), left = y.value("left", 0.0);
            char b[64];
            std::snprintf(b, sizeof b, " (%s %.0f%%)", y.value("role", "") == "source" ? "sync to peer" : "sync from peer",
                          total > 0 ? 100.0 * (total - left) / total : 0.0);
            sync = b;
        }
        std::cout << col(s.value("replica", "?"), 9) << col(s.value("role", "?") + "/" + str(s["peer_role"], "Unknown"), 20)
                  << col(s.value("disk", "?") + "/" + str(s["peer_disk"], "DUnknown"), 21) << col(s.value("connection", "?"), 11)
                  << col(human(s["counters"].value("out_of_sync", 0.0)), 12) << s.value("device", "?") << sync << "\n";
    }
}

std::vector<std::string> replica_sockets() {
    std::vector<std::string> v;
    for (const auto& n : engine_names())
        if (answers(n)) v.push_back(socket_of(n));
    return v;
}

int replica_main(const std::vector<std::string>& args) {
    if (args.size() < 2) {
        std::cerr << kReplicaUsage;
        return kUsageError;
    }
    const std::string& sub = args[1];
    Common c;
    if (int rc = parse(args, 2, c)) return rc;
    if (sub == "create-md") return create_md(c);
    if (sub == "up") return up(c);
    if (sub == "status") return status(c);
    if (c.positional.size() != 1) {
        std::cerr << "hactl: replica " << sub << " needs one replica name\n" << kReplicaUsage;
        return kUsageError;
    }
    const std::string& name = c.positional[0];
    Json r;
    if (sub == "events") {
        Client cl(socket_of(name), "the engine of replica " + name);
        if (int rc = cl.connect()) return rc;
        if (int rc = cl.call("events", Json::object(), r)) return rc;
        while (auto l = cl.line()) {
            std::string err;
            auto e = proto::control::decode_event(*l, err);
            if (!e) {
                std::cerr << "hactl: bad event: " << err << "\n";
                return kProtocol;
            }
            std::cout << e->event.dump() << std::endl;
        }
        return kNotRunning;
    }
    Json a = Json::object();
    std::string command = sub;
    if (sub == "primary") a = {{"force", c.force}, {"overwrite_data_of_peer", c.overwrite}, {"peer_dead", c.peer_dead}};
    else if (sub != "secondary" && sub != "connect" && sub != "disconnect" && sub != "down") {
        std::cerr << "hactl: replica: unknown command '" << sub << "'\n" << kReplicaUsage;
        return kUsageError;
    }
    if (int rc = call(name, command, a, r)) return rc;
    if (sub == "down") std::cout << "replica " << name << ": engine stopped\n";
    else if (r.contains("role")) print_status(r);
    return kOk;
}

}  // namespace duet::hactl
