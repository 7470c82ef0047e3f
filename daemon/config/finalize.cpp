// Checks that span settings and files, and the defaults that depend on other settings.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace duet::config {

using namespace detail;

namespace {

constexpr Millis kMaxTiming{24 * 3600 * 1000};
constexpr size_t kClusterNameMax = 255;

class Finalizer {
public:
    Finalizer(Config& cfg, Diagnostics& diag) : cfg_(cfg), diag_(diag), toml_(cfg.syntax == Syntax::Toml) {}

    void run() {
        nodes();
        cluster();
        paths();
        timings();
        auth();
        groups();
        local_paths();
    }

private:
    // `o` if it was set, else the main file under the name `key` has in this syntax.
    Origin where(const Origin& o, const std::string& toml_key, const std::string& hb_key) const {
        if (o.set()) return o;
        Origin m = cfg_.origins.main;
        m.key = toml_ ? toml_key : hb_key;
        return m;
    }

    Origin node_origin(size_t i) const {
        if (i < cfg_.origins.nodes.size()) return cfg_.origins.nodes[i];
        return where(Origin{}, "nodes", "node");
    }

    void nodes() {
        for (auto& n : cfg_.nodes) n = lower(n);  // names are case-insensitive, as in Heartbeat
        std::vector<size_t> distinct;  // indices of first occurrences
        std::map<std::string, size_t> first;
        for (size_t i = 0; i < cfg_.nodes.size(); ++i) {
            Origin o = node_origin(i);
            const std::string& n = cfg_.nodes[i];
            if (!valid_node_name(n)) {
                diag_.error(o, o.key, "expected a node name as `uname -n` prints it (letters, digits, '.', '-', '_'; at most 64), got " + quote(n));
                continue;
            }
            auto [it, fresh] = first.emplace(n, i);
            if (!fresh) {
                diag_.error(o, o.key, "node '" + n + "' is declared twice (also at " + node_origin(it->second).str() + ")");
                continue;
            }
            distinct.push_back(i);
        }
        auto listing = [&] {  // the first three
            std::string s;
            for (size_t k = 0; k < distinct.size() && k < 3; ++k)
                s += (s.empty() ? "" : ", ") + cfg_.nodes[distinct[k]] + " at " + node_origin(distinct[k]).str();
            return s;
        };
        if (distinct.size() > 2) {
            Origin o = node_origin(distinct[2]);
            diag_.error(o, o.key, "a third node '" + cfg_.nodes[distinct[2]] + "': Duet clusters have exactly two nodes (declared: " + listing() + ")");
        } else if (distinct.size() < 2) {
            Origin o = distinct.empty() ? where(Origin{}, "nodes", "node") : node_origin(distinct[0]);
            std::string fix = toml_ ? "nodes = [\"alpha\", \"beta\"]" : "`node alpha` and `node beta`";
            diag_.error(o, o.key,
                        std::string("Duet needs exactly two nodes, ") +
                            (distinct.empty() ? "none is declared" : "only " + listing() + " is declared") + "; expected " + fix +
                            " (the names `uname -n` prints on each)");
        }
    }

    void cluster() {
        if (cfg_.cluster.empty()) {
            std::vector<std::string> names = cfg_.nodes;
            std::sort(names.begin(), names.end());
            names.erase(std::unique(names.begin(), names.end()), names.end());
            for (const auto& n : names) cfg_.cluster += (cfg_.cluster.empty() ? "" : "+") + n;
            return;
        }
        Origin o = where(cfg_.origins.cluster, "cluster", "cluster");
        if (auto bad = bad_text(cfg_.cluster))
            diag_.error(o, o.key, "the cluster name contains " + *bad);
        else if (cfg_.cluster.size() > kClusterNameMax)
            diag_.error(o, o.key, "the cluster name is " + std::to_string(cfg_.cluster.size()) + " bytes long; at most 255");
    }

    // "[[path]] group" in duet.toml, "mcast" in ha.cf.
    static std::string path_key(const Path& p, const std::string& field) {
        static const char* kinds[] = {"mcast", "bcast", "ucast"};
        const std::string& k = p.origin.key;
        if (k.empty()) return kinds[static_cast<int>(p.kind)];
        if (k.rfind("[[", 0) == 0) return k + " " + field;
        return k;
    }

    void path_error(const Path& p, const std::string& field, const std::string& msg) {
        Origin o = where(p.origin, "[[path]]", "");
        diag_.error(o, path_key(p, field), msg);
    }

    void paths() {
        if (cfg_.paths.empty()) {
            Origin o = where(Origin{}, "[[path]]", "");
            diag_.error(o, o.key,
                        toml_ ? "no heartbeat path: add at least one [[path]] table (type = \"mcast\", \"bcast\" or \"ucast\")"
                              : "no heartbeat path: add at least one mcast, bcast or ucast line (such as `mcast eth0 239.0.0.10 694 1 0`)");
        }
        bool port_error_reported = false;
        for (Path& p : cfg_.paths) {
            if (p.port == 0) {
                if (cfg_.udpport == 0) {
                    if (!port_error_reported) {
                        Origin o = where(cfg_.origins.udpport, "port", "udpport");
                        diag_.error(o, o.key, "expected a UDP port from 1 to 65535, got 0");
                        port_error_reported = true;
                    }
                } else {
                    p.port = cfg_.udpport;
                }
            }
            bool needs_if = p.kind != PathKind::Ucast;
            if (p.interface.empty()) {
                if (needs_if)
                    path_error(p, "interface", std::string(p.kind == PathKind::Mcast ? "an mcast" : "a bcast") +
                                                   " path needs a network interface (such as eth0)");
            } else if (!valid_interface(p.interface)) {
                path_error(p, "interface", "expected a network interface name (such as eth0; at most 15 of letters, digits, '_', '.', '-'), got " + quote(p.interface));
            }
            switch (p.kind) {
            case PathKind::Mcast:
                if (p.address.empty())
                    path_error(p, "group", "an mcast path needs a multicast group (such as 239.0.0.10 or ff02::694)");
                else if (ip_family(p.address) == IpFamily::None)
                    path_error(p, "group", "expected a multicast group address (IPv4 224.0.0.0/4 or IPv6 ff00::/8), got " + quote(p.address));
                else if (!is_multicast(p.address))
                    path_error(p, "group", quote(p.address) + " is not a multicast address: expected IPv4 224.0.0.0/4 (such as 239.0.0.10) or IPv6 ff00::/8");
                if (p.ttl < 1 || p.ttl > 255)
                    path_error(p, "ttl", "expected a TTL from 1 to 255, got " + std::to_string(p.ttl));
                break;
            case PathKind::Ucast:
                if (p.address.empty())
                    path_error(p, "address", "a ucast path needs the peer's IP address");
                else if (ip_family(p.address) == IpFamily::None)
                    path_error(p, "address", "expected an IP address, got " + quote(p.address) +
                                                 " (Duet does not resolve host names: DNS may be down exactly when failover matters)");
                else if (is_multicast(p.address))
                    path_error(p, "address", quote(p.address) + " is a multicast address; use an mcast path for it");
                else if (is_ipv6_link_local(p.address) && p.interface.empty())
                    path_error(p, "interface", "the link-local address " + quote(p.address) + " needs an interface");
                break;
            case PathKind::Bcast:
                break;
            }
        }
        // The same path twice would send every heartbeat twice and hide a dead link.
        std::map<std::string, size_t> seen;
        for (size_t i = 0; i < cfg_.paths.size(); ++i) {
            std::string name = cfg_.paths[i].name();
            auto [it, fresh] = seen.emplace(name, i);
            if (!fresh) path_error(cfg_.paths[i], "", "the same path as at " + cfg_.paths[it->second].origin.str() + " (" + name + ")");
        }
    }

    Origin timing_origin(const Origin& o, const char* name) const {
        return where(o, std::string("[timings] ") + name, name);
    }

    void timings() {
        Timings& t = cfg_.timings;
        Origins& og = cfg_.origins;
        // Defaults that follow deadtime, as in Heartbeat.
        if (!og.initdead.set()) t.initdead = std::max(t.initdead, 2 * t.deadtime);
        if (!og.warntime.set() && !(t.warntime > t.keepalive && t.warntime < t.deadtime)) t.warntime = t.deadtime / 2;

        struct Item {
            Millis value;
            const Origin& origin;
            const char* name;
        } items[] = {{t.keepalive, og.keepalive, "keepalive"},
                     {t.warntime, og.warntime, "warntime"},
                     {t.deadtime, og.deadtime, "deadtime"},
                     {t.initdead, og.initdead, "initdead"}};
        bool range_ok = true;
        for (const auto& it : items) {
            if (it.value.count() < 0 || it.value > kMaxTiming) {
                Origin o = timing_origin(it.origin, it.name);
                diag_.error(o, o.key, "expected a duration from 0 to 24h, got " + std::to_string(it.value.count()) + "ms");
                range_ok = false;
            }
        }
        if (!range_ok) return;
        auto fmt = [](Millis m) { return format_duration(m); };
        Origin ko = timing_origin(og.keepalive, "keepalive");
        Origin d_o = timing_origin(og.deadtime.set() ? og.deadtime : og.keepalive, og.deadtime.set() ? "deadtime" : "keepalive");
        if (t.keepalive.count() <= 0) {
            diag_.error(ko, ko.key, "keepalive must be greater than 0 (it is the interval between heartbeats; try 1 or 2 seconds)");
            return;
        }
        if (t.deadtime <= t.keepalive) {
            diag_.error(d_o, d_o.key,
                        "deadtime (" + fmt(t.deadtime) + ") must be greater than keepalive (" + fmt(t.keepalive) +
                            "), or the peer is declared dead between two heartbeats; try deadtime = " + fmt(t.keepalive * 10));
            return;
        }
        if (t.deadtime <= 2 * t.keepalive)
            diag_.warn(d_o, d_o.key,
                       "deadtime (" + fmt(t.deadtime) + ") is at most twice keepalive (" + fmt(t.keepalive) +
                           "): one lost heartbeat declares the peer dead (Heartbeat refused this); try deadtime = " +
                           fmt(t.keepalive * 5) + " or more");
        if (t.warntime >= t.deadtime || t.warntime <= t.keepalive) {
            Origin wo = timing_origin(og.warntime.set() ? og.warntime : og.deadtime, og.warntime.set() ? "warntime" : "deadtime");
            // Half of deadtime (Heartbeat's default), else halfway; in whole seconds when that still fits.
            Millis suggestion = t.deadtime / 2 > t.keepalive ? t.deadtime / 2 : (t.keepalive + t.deadtime) / 2;
            Millis whole = suggestion / 1000 * 1000;
            if (whole > t.keepalive) suggestion = whole;
            diag_.warn(wo, wo.key,
                       "warntime (" + fmt(t.warntime) + ") should lie between keepalive (" + fmt(t.keepalive) + ") and deadtime (" +
                           fmt(t.deadtime) + "), so that late heartbeats are reported before the peer is declared dead; try warntime = " +
                           fmt(suggestion));
        }
        Origin io = timing_origin(og.initdead.set() ? og.initdead : og.deadtime, og.initdead.set() ? "initdead" : "deadtime");
        if (t.initdead < t.deadtime)
            diag_.error(io, io.key,
                        "initdead (" + fmt(t.initdead) + ") must be at least deadtime (" + fmt(t.deadtime) +
                            "); try initdead = " + fmt(2 * t.deadtime));
        else if (t.initdead < 2 * t.deadtime)
            diag_.warn(io, io.key,
                       "initdead (" + fmt(t.initdead) + ") is less than twice deadtime (" + fmt(t.deadtime) +
                           "): at boot the network may come up late and the peer be declared dead; try initdead = " +
                           fmt(2 * t.deadtime));
    }

    void auth() {
        if (!cfg_.auth.secret.empty()) return;
        if (!cfg_.auth.key_file.empty()) {
            Origin o = where(cfg_.auth.origin, "[auth] key_file", "");
            diag_.error(o, o.key, "the key file " + quote(cfg_.auth.key_file) + " has not been read (it is read when the configuration is loaded)");
            return;
        }
        Origin o = where(Origin{}, "[auth]", "");
        if (!toml_) {
            o = cfg_.origins.main;
            o.key = "";
        }
        diag_.error(o, o.key,
                    std::string("no authentication key: Duet never sends unauthenticated heartbeats; ") +
                        (toml_ ? "set [auth] key = \"SECRET\" or key_file = \"/etc/duet/authkey\""
                               : "authkeys needs `auth 1` and `1 sha1 SECRET`"));
    }

    // "[[group]] home" or "haresources" in duet.toml; in the haresources file, the word concerned.
    std::string group_key(const Group& g, const std::string& field) const {
        const std::string& k = g.origin.key;
        if (toml_ && (k.empty() || k.rfind("[[group]]", 0) == 0)) return "[[group]] " + field;
        if (toml_) return k;
        if (field == "home") return k.empty() ? g.home_node : k;
        return g.name;
    }

    void groups() {
        std::string node_list;
        for (const auto& n : cfg_.nodes) node_list += (node_list.empty() ? "" : " and ") + n;
        std::map<std::string, size_t> names;
        for (size_t i = 0; i < cfg_.groups.size(); ++i) {
            Group& g = cfg_.groups[i];
            Origin o = where(g.origin, "[[group]]", "");
            if (g.resources.empty()) {
                diag_.error(o, group_key(g, "resources"), "a resource group needs at least one resource");
                continue;
            }
            if (g.name.empty()) g.name = g.resources.front().str();
            g.home_node = lower(g.home_node);
            if (std::find(cfg_.nodes.begin(), cfg_.nodes.end(), g.home_node) == cfg_.nodes.end())
                diag_.error(o, group_key(g, "home"),
                            "home node " + quote(g.home_node) + " is not a node of this cluster" +
                                (node_list.empty() ? std::string() : " (" + node_list + ")"));
            auto [it, fresh] = names.emplace(g.name, i);
            if (!fresh)
                diag_.error(o, group_key(g, "name"),
                            "a second group named " + quote(g.name) + " (the first is at " + cfg_.groups[it->second].origin.str() +
                                "); group names must be unique" + (toml_ ? "" : ": a group is named after its first resource"));
        }
    }

    void local_paths() {
        if (!absolute_path(cfg_.state_dir))
            diag_.error(where(Origin{}, "state_dir", ""), "state_dir", "expected an absolute path, got " + quote(cfg_.state_dir));
        if (!absolute_path(cfg_.socket_path))
            diag_.error(where(Origin{}, "[control] socket", ""), "[control] socket", "expected an absolute path, got " + quote(cfg_.socket_path));
    }

    Config& cfg_;
    Diagnostics& diag_;
    bool toml_;
};

}  // namespace

void finalize(Config& cfg, Diagnostics& diag) {
    Finalizer(cfg, diag).run();
}

}  // namespace duet::config
