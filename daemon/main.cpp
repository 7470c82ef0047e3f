// duetd: wires configuration, the heartbeat service, the control socket, systemd and signals.
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include <systemd/sd-daemon.h>

#include "daemon/cluster/manager.hpp"
#include "daemon/config/model.hpp"
#include "daemon/control/server.hpp"
#include "daemon/heartbeat/service.hpp"
#include "daemon/state/generation.hpp"
#include "daemon/util/asio.hpp"
#include "daemon/util/log.hpp"

namespace {

namespace asio = boost::asio;
using Json = nlohmann::json;
using namespace duet;

constexpr const char* kUsage = R"(usage: duetd [options]
  -c, --config FILE    duet.toml (default /etc/duet/duet.toml)
      --ha-dir DIR     read Heartbeat's ha.cf, authkeys and haresources from DIR instead
                       (default /etc/ha.d when /etc/duet/duet.toml does not exist)
      --node NAME      this node's name (default: uname -n)
      --socket PATH    control socket (overrides the configuration)
      --state-dir DIR  state directory (overrides the configuration)
      --agents-dir DIR Duet's resource agents (default )" DUET_AGENTS_DIR R"()
      --check-config   validate, print the effective configuration, and exit (1 on errors)
  -v, --verbose        debug logging
      --version        print the version
  -h, --help           this text
)";

struct Options {
    config::Source source;
    std::optional<std::string> node, socket, state_dir, agents_dir;
    bool check = false;
    bool verbose = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::cerr << "duetd: " << msg << "\n" << kUsage;
    std::exit(2);
}

Options parse_args(int argc, char** argv) {
    Options o;
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) usage_error(std::string(argv[i]) + " needs a value");
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-c" || a == "--config") o.source.toml_path = value(i);
        else if (a == "--ha-dir") o.source.ha_dir = value(i);
        else if (a == "--node") o.node = value(i);
        else if (a == "--socket") o.socket = value(i);
        else if (a == "--state-dir") o.state_dir = value(i);
        else if (a == "--agents-dir") o.agents_dir = value(i);
        else if (a == "--check-config") o.check = true;
        else if (a == "-v" || a == "--verbose") o.verbose = true;
        else if (a == "--version") {
            std::cout << "duetd " DUET_VERSION "\n";
            std::exit(0);
        } else if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            std::exit(0);
        } else usage_error("unknown option " + a);
    }
    if (o.source.toml_path && o.source.ha_dir) usage_error("give either --config or --ha-dir, not both");
    if (!o.source.toml_path && !o.source.ha_dir) {
        if (std::filesystem::exists("/etc/duet/duet.toml")) o.source.toml_path = "/etc/duet/duet.toml";
        else if (std::filesystem::exists("/etc/ha.d/ha.cf")) o.source.ha_dir = "/etc/ha.d";
        else o.source.toml_path = "/etc/duet/duet.toml";  // load() reports it missing
    }
    return o;
}

std::optional<config::Config> load(const Options& o, bool quiet_ok) {
    config::Diagnostics diag;
    config::Config cfg = config::load(o.source, diag);
    for (const auto& d : diag.items()) {
        if (d.severity == config::Diagnostic::Severity::Error) log::error(d.str());
        else if (!quiet_ok) log::warning(d.str());
    }
    if (diag.has_errors()) return std::nullopt;
    if (o.socket) cfg.socket_path = *o.socket;
    if (o.state_dir) cfg.state_dir = *o.state_dir;
    return cfg;
}

// Node names are case-insensitive, as in Heartbeat: the configuration stores them in lower case.
std::string node_name(const Options& o) {
    std::string name;
    if (o.node) {
        name = *o.node;
    } else {
        utsname u{};
        ::uname(&u);
        name = u.nodename;
    }
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
}

int check_config(const Options& o) {
    config::Diagnostics diag;
    config::Config cfg = config::load(o.source, diag);
    for (const auto& d : diag.items()) std::cerr << d.str() << "\n";
    if (diag.has_errors()) {
        std::cerr << "duetd: configuration has errors\n";
        return 1;
    }
    std::string self = node_name(o);
    if (std::find(cfg.nodes.begin(), cfg.nodes.end(), self) == cfg.nodes.end())
        std::cerr << "warning: this machine's node name '" << self << "' is not one of the configured nodes; "
                  << "on it, duetd needs --node NAME\n";
    std::cout << config::to_toml(cfg);
    return 0;
}

// Where resource agents are looked for (docs/resources.md): Duet's own, OCF's, Heartbeat's
// resource.d beside the configuration and in /etc/ha.d, then LSB init scripts.
resources::SearchPath search_path(const Options& o) {
    resources::SearchPath sp;
    sp.duet_dir = o.agents_dir.value_or(DUET_AGENTS_DIR);
    if (o.source.ha_dir) sp.heartbeat_dirs.push_back(*o.source.ha_dir + "/resource.d");
    if (o.source.toml_path) {
        auto dir = std::filesystem::path(*o.source.toml_path).parent_path();
        sp.heartbeat_dirs.push_back((dir / "resource.d").string());
    }
    if (std::find(sp.heartbeat_dirs.begin(), sp.heartbeat_dirs.end(), "/etc/ha.d/resource.d") == sp.heartbeat_dirs.end())
        sp.heartbeat_dirs.push_back("/etc/ha.d/resource.d");
    return sp;
}

cluster::PeerLiveness liveness_of(membership::PeerState s) {
    switch (s) {
        case membership::PeerState::Up: return cluster::PeerLiveness::Up;
        case membership::PeerState::Dead: return cluster::PeerLiveness::Dead;
        default: return cluster::PeerLiveness::Unknown;
    }
}

std::string timings_text(const config::Timings& t) {
    auto s = [](config::Millis m) { return std::to_string(m.count()) + "ms"; };
    return "keepalive " + s(t.keepalive) + ", warntime " + s(t.warntime) + ", deadtime " + s(t.deadtime) +
           ", initdead " + s(t.initdead);
}

// Starts the engine of every replica whose engine is not running yet. Engines outlive duetd (a
// mounted replicated filesystem must not notice a duetd restart), so a running one is left alone;
// duet-replicad detaches by itself once its control socket answers, and refuses to start twice.
void start_replica_engines(const config::Config& cfg, const Options& opt, const std::string& self) {
    if (cfg.replicas.empty()) return;
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    std::string replicad = "duet-replicad";
    if (!ec)
        for (auto cand : {exe.parent_path() / "duet-replicad", exe.parent_path().parent_path() / "sbin" / "duet-replicad"})
            if (::access(cand.c_str(), X_OK) == 0) {
                replicad = cand.string();
                break;
            }
    for (const auto& r : cfg.replicas) {
        std::vector<std::string> argv{replicad, "--replica", r.name, "--node", self};
        if (opt.source.toml_path) argv.insert(argv.end(), {"-c", *opt.source.toml_path});
        else if (opt.source.ha_dir) argv.insert(argv.end(), {"--ha-dir", *opt.source.ha_dir});
        pid_t pid = ::fork();
        if (pid == 0) {
            std::vector<char*> av;
            for (auto& a : argv) av.push_back(a.data());
            av.push_back(nullptr);
            ::execvp(av[0], av.data());
            std::fprintf(stderr, "duetd: cannot run %s: %s\n", av[0], std::strerror(errno));
            ::_exit(127);
        }
        if (pid < 0) log::error("replica " + r.name + ": cannot start its engine: " + std::strerror(errno));
        else log::info("replica " + r.name + ": starting its engine (" + replicad + "), unless it runs already");
    }
}

int run(const Options& opt) {
    auto loaded = load(opt, false);
    if (!loaded) {
        log::error("not starting: the configuration has errors (see above; `duetd --check-config` shows them all)");
        return 1;
    }
    config::Config cfg = std::move(*loaded);
    const std::string self = node_name(opt);
    auto me = std::find(cfg.nodes.begin(), cfg.nodes.end(), self);
    if (me == cfg.nodes.end()) {
        log::error("this node's name '" + self + "' (" + (opt.node ? "--node" : "uname -n") +
                   ") is not one of the configured nodes (" + cfg.nodes[0] + ", " + cfg.nodes[1] + "); use --node NAME");
        return 1;
    }
    const std::string peer = cfg.nodes[me == cfg.nodes.begin() ? 1 : 0];

    // Resource agents started later must not become zombies of whoever is PID 1.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ::signal(SIGPIPE, SIG_IGN);

    uint64_t generation = state::next_generation(
        cfg.state_dir, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count()));

    asio::io_context io(1);
    control::Server server(io, cfg.socket_path, cfg.socket_group);
    auto notify_status = [](const std::string& s) { sd_notify(0, ("STATUS=" + s).c_str()); };

    std::unique_ptr<heartbeat::Service> hb;
    std::unique_ptr<cluster::Manager> groups;
    hb = std::make_unique<heartbeat::Service>(
        io, cfg, heartbeat::Identity{self, peer, cfg.cluster, generation, cfg.auth.secret},
        [&](const Json& ev) {
            server.publish(ev);
            if (hb) {
                notify_status(hb->summary());
                // The groups react to the peer's state once its event is out (path events of the
                // same instant come first and must not trigger a takeover before peer_dead is told).
                const auto type = ev.value("type", std::string());
                if (groups && type.rfind("peer_", 0) == 0) groups->on_peer(liveness_of(hb->membership().peer().state));
            }
        });
    cluster::Manager::Hooks hooks;
    hooks.event = [&](const Json& ev) { server.publish(ev); };
    hooks.send_now = [&] {
        if (hb) hb->send_now();
    };
    groups = std::make_unique<cluster::Manager>(io, cfg, self, peer, search_path(opt), hooks);
    start_replica_engines(cfg, opt, self);
    log::RateLimiter bad_report_log(60000);
    hb->set_payload(
        [&] {
            return std::vector<proto::Tlv>{proto::Tlv{proto::kTlvClusterState, proto::encode(groups->report())}};
        },
        [&](const proto::Heartbeat& beat) {
            for (const auto& t : beat.tlvs) {
                if (t.type != proto::kTlvClusterState) continue;
                std::string err;
                if (auto st = proto::decode_cluster_state(t.value, err)) {
                    groups->on_peer_report(*st, beat.generation, beat.sequence);
                } else {
                    uint64_t suppressed = 0;
                    if (bad_report_log.allow(err, 0, suppressed))
                        log::error("peer " + peer + " sent a cluster state this node cannot read: " + err);
                }
            }
        });

    const auto started = std::chrono::steady_clock::now();
    server.handle("status", [&](const Json&, const control::Server::Reply& reply) {
        auto up = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        const auto& t = cfg.timings;
        reply(true, Json{{"version", 1},
                         {"node", self},
                         {"cluster", cfg.cluster},
                         {"generation", generation},
                         {"uptime_ms", up.count()},
                         {"pid", ::getpid()},
                         {"timings", Json{{"keepalive_ms", t.keepalive.count()},
                                          {"warntime_ms", t.warntime.count()},
                                          {"deadtime_ms", t.deadtime.count()},
                                          {"initdead_ms", t.initdead.count()}}},
                         {"nodes", hb->nodes_json()},
                         {"rejected", hb->rejected_json()},
                         {"maintenance", groups->report().maintenance},
                         {"groups", groups->groups_json()}});
    });
    auto scope_of = [](const Json& args) { return cluster::parse_scope(args.value("scope", std::string("all"))); };
    server.handle("standby", [&](const Json& args, const control::Server::Reply& reply) {
        auto sc = scope_of(args);
        if (!sc) return reply(false, "scope must be all, local or foreign");
        groups->standby(*sc, args.value("wait", true), reply);
    });
    server.handle("takeover", [&](const Json& args, const control::Server::Reply& reply) {
        auto sc = scope_of(args);
        if (!sc) return reply(false, "scope must be all, local or foreign");
        groups->takeover(*sc, args.value("wait", true), reply);
    });
    server.handle("cleanup", [&](const Json& args, const control::Server::Reply& reply) {
        if (!args.contains("group") || !args["group"].is_string()) return reply(false, "cleanup needs a group name");
        groups->cleanup(args["group"].get<std::string>(), reply);
    });
    server.handle("maintenance", [&](const Json& args, const control::Server::Reply& reply) {
        if (!args.contains("on") || !args["on"].is_boolean()) return reply(false, "maintenance needs on: true or false");
        groups->maintenance(args["on"].get<bool>(), reply);
    });

    asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    bool stopping = false;
    std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            sd_notify(0, "RELOADING=1");
            log::notice("SIGHUP: reloading timings from the configuration");
            if (auto fresh = load(opt, true)) {
                bool restart_needed = fresh->nodes != cfg.nodes || fresh->auth.secret != cfg.auth.secret ||
                                      fresh->cluster != cfg.cluster || fresh->paths.size() != cfg.paths.size();
                for (size_t i = 0; !restart_needed && i < cfg.paths.size(); ++i)
                    restart_needed = fresh->paths[i].name() != cfg.paths[i].name();
                if (restart_needed)
                    log::warning("the configuration changed nodes, paths, cluster or key: those take effect only at "
                                 "the next restart; timings are applied now");
                cfg.timings = fresh->timings;
                hb->set_timings(cfg.timings);
                log::notice("timings now: " + timings_text(cfg.timings));
            } else {
                log::error("reload refused: the configuration has errors; keeping the running one");
            }
            sd_notify(0, "READY=1");
            signals.async_wait(on_signal);
            return;
        }
        if (stopping) return;
        stopping = true;
        log::notice(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                    ": releasing this node's groups, then leaving the cluster");
        sd_notify(0, "STOPPING=1");
        signals.async_wait(on_signal);
        groups->shutdown([&] {
            hb->leave();
            io.stop();
        });
    };
    signals.async_wait(on_signal);

    // systemd watchdog: ping at half the interval systemd expects.
    uint64_t wd_usec = 0;
    asio::steady_timer watchdog(io);
    std::function<void()> arm_watchdog = [&] {
        watchdog.expires_after(std::chrono::microseconds(wd_usec / 2));
        watchdog.async_wait([&](const boost::system::error_code& ec) {
            if (ec) return;
            sd_notify(0, "WATCHDOG=1");
            arm_watchdog();
        });
    };
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) arm_watchdog();

    groups->start();
    log::notice("duetd " DUET_VERSION " starting as node " + self + " (peer " + peer + "), cluster " + cfg.cluster +
                ", generation " + std::to_string(generation) + ", " + timings_text(cfg.timings) + ", control socket " +
                cfg.socket_path);
    sd_notify(0, "READY=1");
    notify_status(hb->summary());
    io.run();
    log::notice("duetd stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse_args(argc, argv);
    log::init("duetd", opt.verbose);
    if (opt.check) return check_config(opt);
    try {
        return run(opt);
    } catch (const std::exception& e) {
        log::error(std::string("fatal: ") + e.what());
        return 1;
    }
}
