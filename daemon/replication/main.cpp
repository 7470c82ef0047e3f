// duet-replicad: the engine of one replicated disk. One process per replica and node, long-lived:
// it outlives duetd restarts (a mounted filesystem on the device keeps working), and is driven over
// its control socket by duetd, the replica agent and `hactl replica`.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "daemon/config/model.hpp"
#include "daemon/control/server.hpp"
#include "daemon/replication/engine.hpp"
#include "daemon/util/asio.hpp"
#include "daemon/util/log.hpp"

namespace fs = std::filesystem;
using namespace duet;
using Json = nlohmann::json;

namespace {

const char* kUsage = R"(usage: duet-replicad --replica NAME [options]
  -c, --config FILE    duet.toml (default /etc/duet/duet.toml, else /etc/ha.d with drbd.conf)
      --ha-dir DIR     Heartbeat-style directory (ha.cf, authkeys, haresources, drbd.conf)
      --node NAME      this node's name (default: uname -n)
      --run-dir DIR    control socket and FUSE mount points (default /run/duet/replica)
      --foreground     do not detach (default: detach once the control socket answers)
  -v, --verbose        debug logging
The control socket is RUN-DIR/NAME.sock; `hactl replica` speaks to it.
)";

[[noreturn]] void usage_error(const std::string& m) {
    std::cerr << "duet-replicad: " << m << "\n" << kUsage;
    std::exit(2);
}

struct Options {
    config::Source source;
    std::string replica;
    std::optional<std::string> node;
    std::string run_dir = "/run/duet/replica";
    bool foreground = false;
    bool verbose = false;
};

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "-c" || a == "--config") o.source.toml_path = value();
        else if (a == "--ha-dir") o.source.ha_dir = value();
        else if (a == "--replica") o.replica = value();
        else if (a == "--node") o.node = value();
        else if (a == "--run-dir") o.run_dir = value();
        else if (a == "--foreground") o.foreground = true;
        else if (a == "-v" || a == "--verbose") o.verbose = true;
        else if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            std::exit(0);
        } else usage_error("unknown option " + a);
    }
    if (o.replica.empty()) usage_error("--replica NAME is required");
    if (o.source.toml_path && o.source.ha_dir) usage_error("give either --config or --ha-dir, not both");
    if (!o.source.toml_path && !o.source.ha_dir) {
        if (fs::exists("/etc/duet/duet.toml")) o.source.toml_path = "/etc/duet/duet.toml";
        else o.source.ha_dir = "/etc/ha.d";
    }
    return o;
}

bool answers(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (fd < 0 || path.size() >= sizeof a.sun_path) {
        if (fd >= 0) ::close(fd);
        return false;
    }
    std::memcpy(a.sun_path, path.c_str(), path.size());
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse_args(argc, argv);
    log::init("duet-replicad[" + opt.replica + "]", opt.verbose);

    config::Diagnostics diag;
    config::Config cfg = config::load(opt.source, diag);
    for (const auto& d : diag.items())
        if (d.severity == config::Diagnostic::Severity::Error) std::cerr << d.str() << "\n";
    if (diag.has_errors()) return 1;
    std::string self;
    if (opt.node) self = lower(*opt.node);
    else {
        utsname u{};
        ::uname(&u);
        self = lower(u.nodename);
    }
    if (cfg.nodes.size() != 2 || (cfg.nodes[0] != self && cfg.nodes[1] != self)) {
        std::cerr << "duet-replicad: this node's name '" << self << "' is not one of the configured nodes; use --node NAME\n";
        return 1;
    }
    const config::Replica* rep = nullptr;
    for (const auto& r : cfg.replicas)
        if (r.name == opt.replica) rep = &r;
    if (!rep) {
        std::cerr << "duet-replicad: no replica '" << opt.replica << "' in the configuration ("
                  << (cfg.sources.empty() ? std::string("?") : cfg.sources.front()) << ")\n";
        return 1;
    }
    replication::EngineConfig ec;
    ec.cluster = cfg.cluster;
    ec.node = self;
    ec.peer_node = cfg.nodes[0] == self ? cfg.nodes[1] : cfg.nodes[0];
    ec.replica = *rep;
    ec.run_dir = opt.run_dir;

    std::error_code ec_dir;
    fs::create_directories(opt.run_dir, ec_dir);
    ::chmod(opt.run_dir.c_str(), 0755);
    std::string sock = opt.run_dir + "/" + opt.replica + ".sock";

    if (answers(sock)) {
        std::cerr << "duet-replicad: the engine of replica " << opt.replica << " is already running (" << sock << ")\n";
        return 0;
    }

    // Detach: the parent waits for a byte on this pipe (the socket answers) or for its closing (failure).
    int ready[2] = {-1, -1};
    if (!opt.foreground) {
        if (::pipe(ready) != 0) {
            std::perror("duet-replicad: pipe");
            return 1;
        }
        pid_t pid = ::fork();
        if (pid < 0) {
            std::perror("duet-replicad: fork");
            return 1;
        }
        if (pid > 0) {
            ::close(ready[1]);
            char c = 0;
            ssize_t n = ::read(ready[0], &c, 1);
            return n == 1 ? 0 : 1;  // the child printed why it failed on our shared stderr
        }
        ::close(ready[0]);
        ::setsid();
    }

    // The engine's own mount namespace, private: its FUSE mount lives there only, and no mount of
    // the filesystem on its device ever does. Otherwise, when the engine is the last process of a
    // mount namespace that holds that filesystem (a container or a lab node losing power), its
    // exit would unmount the filesystem, which flushes through the device to the FUSE server being
    // torn down: the exit waits on itself forever, and the kernel never aborts the connection.
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        log::warning(std::string("cannot give the engine a private mount namespace: ") + std::strerror(errno) +
                     "; if it dies while a filesystem on its device is mounted in its namespace, that unmount may hang");

    // The socket first: it refuses when another engine of this replica answers on it, before we
    // touch the metadata that engine owns.
    boost::asio::io_context io;
    std::unique_ptr<control::Server> server;
    try {
        server = std::make_unique<control::Server>(io, sock, cfg.socket_group);
    } catch (const std::exception& e) {
        std::cerr << "duet-replicad: " << e.what() << "\n";
        return 1;
    }
    std::unique_ptr<replication::Engine> engine;
    try {
        engine = std::make_unique<replication::Engine>(ec);
    } catch (const std::exception& e) {
        std::cerr << "duet-replicad: replica " << opt.replica << ": " << e.what() << "\n";
        log::error(std::string("cannot start: ") + e.what());
        return 1;
    }
    auto& eng = *engine;
    // Commands that may take time (creating the device, waiting for the peer) run on their own
    // thread; the answer goes back through the io_context, which owns the connection.
    auto async = [&io](std::function<Json()> work, control::Server::Reply reply) {
        std::thread([&io, work = std::move(work), reply = std::move(reply)]() mutable {
            Json r = work();
            boost::asio::post(io, [r = std::move(r), reply = std::move(reply)] {
                if (r.contains("error")) reply(false, r["error"]);
                else reply(true, r);
            });
        }).detach();
    };
    auto outcome = [&eng](std::string err) -> Json {
        if (!err.empty()) return Json{{"error", err}};
        return eng.status();
    };
    server->handle("status", [&eng](const Json&, control::Server::Reply reply) { reply(true, eng.status()); });
    server->handle("primary", [&](const Json& a, control::Server::Reply reply) {
        bool force = a.value("force", false), overwrite = a.value("overwrite_data_of_peer", false);
        bool peer_dead = a.value("peer_dead", false);
        async([&eng, outcome, force, overwrite, peer_dead] { return outcome(eng.promote(force, overwrite, peer_dead)); },
              std::move(reply));
    });
    server->handle("secondary", [&](const Json&, control::Server::Reply reply) {
        async([&eng, outcome] { return outcome(eng.demote()); }, std::move(reply));
    });
    server->handle("connect", [&](const Json&, control::Server::Reply reply) { reply(true, Json{{"ok", eng.connect().empty()}}); });
    server->handle("disconnect", [&](const Json&, control::Server::Reply reply) {
        async([&eng, outcome] { return outcome(eng.disconnect()); }, std::move(reply));
    });
    bool stop_requested = false;
    server->handle("down", [&](const Json&, control::Server::Reply reply) {
        async([&eng, &io, &stop_requested] {
            std::string err = eng.stop();
            if (!err.empty()) return Json{{"error", err}};
            boost::asio::post(io, [&] { stop_requested = true; });
            return Json{{"stopped", true}};
        }, std::move(reply));
    });
    eng.on_event([&io, &server](const Json& ev) {
        boost::asio::post(io, [&server, ev] { server->publish(ev); });
    });

    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](const boost::system::error_code& e, int sig) {
            if (e) return;
            log::notice(std::string("signal ") + strsignal(sig) + ": stopping");
            std::thread([&eng, &io, &stop_requested] {
                std::string err = eng.stop();
                if (!err.empty()) {
                    log::error("not stopping: " + err);
                    return;
                }
                boost::asio::post(io, [&] { stop_requested = true; });
            }).detach();
            wait_signal();
        });
    };
    wait_signal();
    ::signal(SIGPIPE, SIG_IGN);

    engine->start();
    log::notice("replica " + opt.replica + " engine started on node " + self + "; control socket " + sock);
    if (ready[1] >= 0) {
        // Detached: the caller's terminal or pipe is not ours to keep (a `$(hactl replica up)` would
        // wait for it forever). Log to the journal when it is our stderr, else to RUN-DIR/NAME.log.
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            if (!log::to_journal()) {
                std::string logf = opt.run_dir + "/" + opt.replica + ".log";
                int lf = ::open(logf.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
                ::dup2(lf >= 0 ? lf : null, 2);
                if (lf >= 0) ::close(lf);
            }
            ::close(null);
        }
        char c = 1;
        (void)!::write(ready[1], &c, 1);
        ::close(ready[1]);
    }
    while (!stop_requested) {
        io.run_for(std::chrono::milliseconds(200));
        if (io.stopped()) io.restart();
    }
    server.reset();
    engine.reset();
    log::notice("replica " + opt.replica + " engine stopped");
    return 0;
}
