// Heartbeat's ha.cf, read verbatim: the directives Duet needs, warnings for those it does not
// implement, errors for words that are no Heartbeat directive at all.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <map>

namespace duet::config {

using namespace detail;

namespace {

// Heartbeat directives Duet ignores, and what it does instead.
const std::map<std::string_view, std::string_view>& ignored_directives() {
    static const std::map<std::string_view, std::string_view> m = {
        {"logfile", "Duet logs to stderr, which systemd passes to the journal (journalctl -u duetd)"},
        {"debugfile", "Duet logs to stderr, which systemd passes to the journal (journalctl -u duetd)"},
        {"logfacility", "Duet logs to stderr, which systemd passes to the journal (journalctl -u duetd)"},
        {"use_logd", "there is no logging daemon: Duet logs to the journal"},
        {"conn_logd_time", "there is no logging daemon: Duet logs to the journal"},
        {"debug", "start duetd with --verbose for debug logging"},
        {"crm", "Duet runs the haresources chain itself; it has no CRM"},
        {"pacemaker", "Duet runs the haresources chain itself; it does not start Pacemaker"},
        {"respawn", "Duet starts no helper programs; run them as systemd services"},
        {"env", "Duet starts no respawn clients"},
        {"apiauth", "the control socket is open to root and the group of [control] group (default haclient)"},
        {"ping", "Duet has no ping nodes; it watches its peer over the heartbeat paths"},
        {"ping_group", "Duet has no ping nodes; it watches its peer over the heartbeat paths"},
        {"hbaping", "Duet has no ping nodes; it watches its peer over the heartbeat paths"},
        {"deadping", "Duet has no ping nodes; it watches its peer over the heartbeat paths"},
        {"compression", "Duet's heartbeats are small and never compressed"},
        {"compression_threshold", "Duet's heartbeats are small and never compressed"},
        {"traditional_compression", "Duet's heartbeats are small and never compressed"},
        {"realtime", "set scheduling in duetd's systemd unit (CPUSchedulingPolicy=)"},
        {"rtprio", "set scheduling in duetd's systemd unit (CPUSchedulingPriority=)"},
        {"hopfudge", "Duet has two nodes and no relayed paths"},
        {"baud", "serial links are not supported; use a second network path (bcast or ucast on another interface)"},
        {"serial", "serial links are not supported; use a second network path (bcast or ucast on another interface)"},
        {"stonith", "Duet does not fence the peer: this line gives NO STONITH protection"},
        {"stonith_host", "Duet does not fence the peer: this line gives NO STONITH protection"},
        {"watchdog", "Duet does not drive a watchdog device; systemd's WatchdogSec= can supervise duetd"},
        {"coredumps", "core dumps are governed by systemd (LimitCORE=, systemd-coredump)"},
        {"coreroot", "core dumps are governed by systemd (LimitCORE=, systemd-coredump)"},
        {"uuidfrom", "Duet identifies nodes by the names of the two `node` lines"},
        {"autojoin", "Duet's members are fixed: the two `node` lines"},
        {"msgfmt", "Duet has its own authenticated packet format"},
        {"hbgenmethod", "Duet keeps its boot generation in its state directory"},
        {"max_rexmit_delay", "Duet does not retransmit heartbeats"},
        {"normalpoll", "not used by Duet"},
        {"use_apphbd", "not used by Duet"},
        {"log_badpack", "Duet counts bad packets and shows them in `hactl status`"},
        {"memreserve", "not used by Duet"},
        {"quorum_server", "Duet has no quorum server"},
        {"record_config_changes", "Duet has no CIB"},
        {"record_pengine_inputs", "Duet has no policy engine"},
        {"enable_config_writes", "Duet never writes its configuration"},
    };
    return m;
}

const std::vector<std::string_view>& supported_directives() {
    static const std::vector<std::string_view> v = {"keepalive", "deadtime", "warntime", "initdead", "udpport",
                                                    "mcast",     "mcast6",   "bcast",    "ucast",    "node",
                                                    "auto_failback", "nice_failback", "cluster"};
    return v;
}

std::optional<bool> parse_bool(std::string_view s) {
    std::string l = lower(s);
    if (l == "on" || l == "true" || l == "yes" || l == "y" || l == "1") return true;
    if (l == "off" || l == "false" || l == "no" || l == "n" || l == "0") return false;
    return std::nullopt;
}

class HacfReader {
public:
    HacfReader(const std::string& file, Config& cfg, Diagnostics& diag) : file_(file), cfg_(cfg), diag_(diag) {}

    void line(int number, std::string_view text) {
        Origin where{file_, number, ""};
        if (auto bad = bad_text(text)) {
            diag_.error(where, "", "the line contains " + *bad + "; ha.cf is a text file");
            return;
        }
        size_t hash = text.find('#');
        if (hash != std::string_view::npos) text = text.substr(0, hash);
        auto words = split_words(text);
        if (words.empty()) return;
        std::string directive(words[0]);
        std::vector<std::string_view> args(words.begin() + 1, words.end());
        std::string_view rest = text.substr(static_cast<size_t>(words[0].data() - text.data()) + words[0].size());
        Origin o{file_, number, directive};

        if (directive == "keepalive") timing(o, args, cfg_.timings.keepalive, cfg_.origins.keepalive);
        else if (directive == "deadtime") timing(o, args, cfg_.timings.deadtime, cfg_.origins.deadtime);
        else if (directive == "warntime") timing(o, args, cfg_.timings.warntime, cfg_.origins.warntime);
        else if (directive == "initdead") timing(o, args, cfg_.timings.initdead, cfg_.origins.initdead);
        else if (directive == "udpport") udpport(o, args);
        else if (directive == "node") node(o, rest);
        else if (directive == "mcast" || directive == "mcast6") mcast(o, args);
        else if (directive == "bcast") bcast(o, rest);
        else if (directive == "ucast") ucast(o, args);
        else if (directive == "auto_failback") auto_failback(o, args);
        else if (directive == "nice_failback") nice_failback(o, args);
        else if (directive == "cluster") cluster(o, args);
        else if (auto it = ignored_directives().find(directive); it != ignored_directives().end())
            diag_.warn(o, directive, "not supported by Duet, ignored: " + std::string(it->second));
        else
            unknown(o, directive);
    }

private:
    bool one_value(const Origin& o, const std::vector<std::string_view>& args, std::string_view what) {
        if (args.size() == 1) return true;
        if (args.empty())
            diag_.error(o, o.key, "expected " + std::string(what) + ", got nothing");
        else
            diag_.error(o, o.key, "expected one value (" + std::string(what) + "), got " + std::to_string(args.size()));
        return false;
    }

    void repeated(const Origin& o, const Origin& before) {
        if (before.set() && before.file == o.file)
            diag_.warn(o, o.key, "given again (also at " + before.str() + "); this later value is used");
    }

    void timing(const Origin& o, const std::vector<std::string_view>& args, Millis& value, Origin& origin) {
        if (!one_value(o, args, "a duration in seconds, such as 2, 1.5 or 500ms")) return;
        auto d = parse_duration(args[0]);
        if (!d) {
            diag_.error(o, o.key, "expected a duration in seconds, such as 2, 1.5 or 500ms, got " + quote(args[0]));
            return;
        }
        repeated(o, origin);
        value = *d;
        origin = o;
    }

    void udpport(const Origin& o, const std::vector<std::string_view>& args) {
        if (!one_value(o, args, "a UDP port from 1 to 65535")) return;
        auto p = parse_uint(args[0], 65535);
        if (!p || *p == 0) {
            diag_.error(o, o.key, "expected a UDP port from 1 to 65535, got " + quote(args[0]));
            return;
        }
        repeated(o, cfg_.origins.udpport);
        cfg_.udpport = static_cast<uint16_t>(*p);
        cfg_.origins.udpport = o;
    }

    void node(const Origin& o, std::string_view rest) {
        // Like Heartbeat, names may be separated by spaces or commas.
        auto names = split_words(rest, " \t\f\v,");
        if (names.empty()) {
            diag_.error(o, o.key, "expected one or more node names (as `uname -n` prints them), got nothing");
            return;
        }
        for (auto n : names) {
            if (!valid_node_name(n)) {
                diag_.error(o, o.key,
                            "expected a node name as `uname -n` prints it (letters, digits, '.', '-', '_'; at most 64), got " +
                                quote(n));
                continue;
            }
            cfg_.nodes.push_back(lower(n));
            cfg_.origins.nodes.push_back(o);
        }
    }

    void mcast(const Origin& o, const std::vector<std::string_view>& args) {
        if (args.size() != 5) {
            diag_.error(o, o.key,
                        "expected five fields `" + o.key + " DEVICE GROUP PORT TTL LOOP` (such as `" + o.key +
                            (o.key == "mcast6" ? " eth0 ff02::694 694 1 0" : " eth0 239.0.0.10 694 1 0") + "`), got " +
                            std::to_string(args.size()));
            return;
        }
        Path p;
        p.kind = PathKind::Mcast;
        p.interface = std::string(args[0]);
        p.address = std::string(args[1]);
        p.origin = o;
        bool ok = true;
        if (o.key == "mcast6" && ip_family(args[1]) == IpFamily::V4) {
            diag_.error(o, o.key, "group " + quote(args[1]) + " is an IPv4 address; mcast6 takes an IPv6 group (or use mcast)");
            ok = false;
        }
        auto port = parse_uint(args[2], 65535);
        if (!port || *port == 0) {
            diag_.error(o, o.key, "PORT (third field): expected a UDP port from 1 to 65535, got " + quote(args[2]));
            ok = false;
        }
        auto ttl = parse_uint(args[3], 255);
        if (!ttl || *ttl == 0) {
            diag_.error(o, o.key, "TTL (fourth field): expected a number from 1 to 255, got " + quote(args[3]));
            ok = false;
        }
        if (args[4] != "0" && args[4] != "1") {
            diag_.error(o, o.key, "LOOP (fifth field): expected 0 or 1, got " + quote(args[4]));
            ok = false;
        }
        if (!ok) return;
        p.port = static_cast<uint16_t>(*port);
        p.ttl = static_cast<int>(*ttl);
        p.loop = args[4] == "1";
        cfg_.paths.push_back(std::move(p));
    }

    void bcast(const Origin& o, std::string_view rest) {
        auto devs = split_words(rest, " \t\f\v,");
        if (devs.empty()) {
            diag_.error(o, o.key, "expected one or more network interfaces (such as `bcast eth1`), got nothing");
            return;
        }
        for (auto d : devs) {
            Path p;
            p.kind = PathKind::Bcast;
            p.interface = std::string(d);
            p.port = 0;  // udpport, resolved in finalize()
            p.origin = o;
            cfg_.paths.push_back(std::move(p));
        }
    }

    void ucast(const Origin& o, const std::vector<std::string_view>& args) {
        if (args.size() != 2) {
            diag_.error(o, o.key,
                        "expected `ucast DEVICE PEER-ADDRESS` (such as `ucast eth0 198.51.100.2`), got " +
                            std::to_string(args.size()) + " field" + (args.size() == 1 ? "" : "s"));
            return;
        }
        Path p;
        p.kind = PathKind::Ucast;
        p.interface = std::string(args[0]);
        p.address = std::string(args[1]);
        p.port = 0;  // udpport, resolved in finalize()
        p.origin = o;
        cfg_.paths.push_back(std::move(p));
    }

    void auto_failback(const Origin& o, const std::vector<std::string_view>& args) {
        if (!one_value(o, args, "on, off or legacy")) return;
        if (lower(args[0]) == "legacy") {
            diag_.warn(o, o.key, "'legacy' is Heartbeat's deprecated mode; Duet treats it as 'on'");
            cfg_.auto_failback = true;
            return;
        }
        auto b = parse_bool(args[0]);
        if (!b) {
            diag_.error(o, o.key, "expected on, off or legacy, got " + quote(args[0]));
            return;
        }
        cfg_.auto_failback = *b;
    }

    void nice_failback(const Origin& o, const std::vector<std::string_view>& args) {
        if (!one_value(o, args, "on or off")) return;
        auto b = parse_bool(args[0]);
        if (!b) {
            diag_.error(o, o.key, "expected on or off, got " + quote(args[0]));
            return;
        }
        cfg_.auto_failback = !*b;
        diag_.warn(o, o.key,
                   std::string("obsolete since Heartbeat 1.2; read as `auto_failback ") + (*b ? "off" : "on") +
                       "`, write that instead");
    }

    void cluster(const Origin& o, const std::vector<std::string_view>& args) {
        if (!one_value(o, args, "a cluster name")) return;
        repeated(o, cfg_.origins.cluster);
        cfg_.cluster = std::string(args[0]);
        cfg_.origins.cluster = o;
    }

    void unknown(const Origin& o, const std::string& directive) {
        std::vector<std::string_view> known = supported_directives();
        for (const auto& [name, advice] : ignored_directives()) known.push_back(name);
        std::string msg = "unknown directive " + quote(directive);
        std::string hint = suggest(directive, known);
        if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
        msg += "; Heartbeat refuses it too";
        diag_.error(o, directive, msg);
    }

    const std::string& file_;
    Config& cfg_;
    Diagnostics& diag_;
};

}  // namespace

void parse_hacf(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag) {
    cfg.syntax = Syntax::Heartbeat;
    cfg.sources.push_back(file);
    cfg.origins.main = Origin{file, 0, ""};
    HacfReader reader(file, cfg, diag);
    for (const auto& l : split_lines(text)) reader.line(l.number, l.text);
}

}  // namespace duet::config
