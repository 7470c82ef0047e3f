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
constexpr int kMaxStopRetries = 100;

// Decodes one UTF-8 sequence at s[i] (valid UTF-8 assumed, else the byte); advances i.
char32_t next_code_point(std::string_view s, size_t& i) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (i + len > s.size()) len = 1;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += len;
    return cp;
}

// Spaces (ASCII and Unicode), controls (C0, DEL, C1) and invisible separators: what a name typed
// on a command line cannot hold.
bool blank_or_unprintable(char32_t c) {
    return c <= 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0x1680 || (c >= 0x2000 && c <= 0x200F) ||
           (c >= 0x2028 && c <= 0x202F) || c == 0x205F || c == 0x2060 || c == 0x3000 || c == 0xFEFF;
}

// What makes `name` unusable as `hactl cleanup NAME`; nullopt when nothing.
std::optional<std::string> group_name_problem(std::string_view name) {
    if (name.empty()) return std::string("it is empty");
    if (!valid_utf8(name)) return std::string("it is not valid UTF-8");
    if (name[0] == '-') return std::string("it starts with '-', which hactl would read as an option");
    size_t i = 0;
    while (i < name.size())
        if (blank_or_unprintable(next_code_point(name, i)))
            return std::string("it contains spaces or unprintable characters");
    return std::nullopt;
}

// The name with every run of spaces and unprintable characters replaced by one '_'.
std::string safe_group_name(std::string_view name) {
    std::string out;
    size_t i = 0;
    bool in_blank = false;
    while (i < name.size()) {
        size_t start = i;
        if (blank_or_unprintable(next_code_point(name, i))) {
            if (!in_blank) out += '_';
            in_blank = true;
        } else {
            out.append(name.substr(start, i - start));
            in_blank = false;
        }
    }
    return out;
}

// "/data//x/" -> "/data/x": the same directory, written differently.
std::string normal_directory(std::string_view d) {
    std::string out;
    for (char c : d)
        if (!(c == '/' && !out.empty() && out.back() == '/')) out += c;
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

class Finalizer {
public:
    Finalizer(Config& cfg, Diagnostics& diag) : cfg_(cfg), diag_(diag), toml_(cfg.syntax == Syntax::Toml) {}

    void run() {
        nodes();
        cluster();
        paths();
        timings();
        auth();
        resource_defaults();
        policy();
        mail();
        groups();
        replicas();
        replica_resources();
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

    // A setting of [resources], [policy] or [mail]: where it was set, or the main file.
    Origin key_origin(const std::string& key) const {
        auto it = cfg_.origins.keys.find(key);
        return where(it == cfg_.origins.keys.end() ? Origin{} : it->second, key, "");
    }

    // A timeout or monitor interval (`name`): > 0 and at most 24h; an interval below 1s is warned
    // about. `what` names the resource in the message ("" for [resources]).
    void check_duration(Millis value, const Origin& o, const std::string& name, const std::string& what) {
        bool interval = name == "monitor_interval";
        if (value.count() <= 0)
            diag_.error(o, o.key,
                        what + name + " must be greater than 0" +
                            (interval ? " (to stop monitoring a resource, set monitor = false on it)" : ""));
        else if (value > kMaxTiming)
            diag_.error(o, o.key, what + "expected a duration of at most 24h (86400s), got " + format_duration(value));
        else if (interval && value < Millis(1000))
            diag_.warn(o, o.key,
                       what + name + " (" + format_duration(value) +
                           ") is below 1s: the agent's monitor would run more than once a second; try 1s or more");
    }

    void resource_defaults() {
        const ResourceDefaults& d = cfg_.resource_defaults;
        const std::pair<Millis, std::string> items[] = {{d.start_timeout, "start_timeout"},
                                                        {d.stop_timeout, "stop_timeout"},
                                                        {d.monitor_timeout, "monitor_timeout"},
                                                        {d.monitor_interval, "monitor_interval"}};
        for (const auto& [value, name] : items) {
            std::string key = "[resources] " + name;
            Origin o = key_origin(key);
            o.key = key;
            check_duration(value, o, name, "");
        }
    }

    void check_migration_threshold(int n, const Origin& o, const std::string& key) {
        if (n < 1)
            diag_.error(o, key,
                        "expected an integer >= 1 (failures on a node before the group moves to the peer), got " + std::to_string(n));
    }

    void policy() {
        const Policy& p = cfg_.policy;
        check_migration_threshold(p.migration_threshold, key_origin("[policy] migration_threshold"), "[policy] migration_threshold");
        if (p.stop_retries < 0 || p.stop_retries > kMaxStopRetries) {
            Origin o = key_origin("[policy] stop_retries");
            diag_.error(o, "[policy] stop_retries",
                        "expected an integer from 0 to " + std::to_string(kMaxStopRetries) + " (retries of a failed stop), got " +
                            std::to_string(p.stop_retries));
        }
        if (p.failure_timeout.count() < 0 || p.failure_timeout > kMaxTiming) {
            Origin o = key_origin("[policy] failure_timeout");
            diag_.error(o, "[policy] failure_timeout",
                        "expected a duration from 0 (failures never expire) to 24h (86400s), got " +
                            std::to_string(p.failure_timeout.count()) + "ms");
        }
    }

    // host, host:port, [IPv6], [IPv6]:port; nullopt when valid, else what is wrong.
    static std::optional<std::string> relay_problem(std::string_view r) {
        std::string_view host = r, port;
        if (!r.empty() && r[0] == '[') {
            size_t close = r.find(']');
            if (close == std::string_view::npos) return std::string("'[' without ']'");
            host = r.substr(1, close - 1);
            std::string_view rest = r.substr(close + 1);
            if (!rest.empty()) {
                if (rest[0] != ':') return std::string("expected ':PORT' after ']'");
                port = rest.substr(1);
                if (port.empty()) return std::string("no port after ':'");
            }
            if (ip_family(host) != IpFamily::V6) return quote(host) + " between brackets is not an IPv6 address";
        } else {
            size_t colon = r.find(':');
            if (colon != std::string_view::npos) {
                if (r.find(':', colon + 1) != std::string_view::npos)
                    return std::string("an IPv6 address needs brackets, such as [2001:db8::25]:25");
                host = r.substr(0, colon);
                port = r.substr(colon + 1);
                if (port.empty()) return std::string("no port after ':'");
            }
            bool chars_ok = !host.empty() && host[0] != '-' && host[0] != '.' &&
                            std::all_of(host.begin(), host.end(), [](char c) {
                                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                                       c == '-' || c == '_';
                            });
            if (!chars_ok) return quote(host) + " is not a host name or an IPv4 address";
        }
        if (!port.empty() && !parse_uint(port, 65535).value_or(0)) return "port " + quote(port) + " is not a number from 1 to 65535";
        return std::nullopt;
    }

    // A bare address local@domain, as SMTP's MAIL FROM takes it.
    static bool valid_mail_address(std::string_view a) {
        size_t at = a.find('@');
        if (at == std::string_view::npos || at == 0 || a.find('@', at + 1) != std::string_view::npos) return false;
        std::string_view local = a.substr(0, at), domain = a.substr(at + 1);
        bool local_ok = std::all_of(local.begin(), local.end(), [](char c) {
            auto u = static_cast<unsigned char>(c);
            return u > 0x20 && u < 0x7F && std::string_view("<>()[],;:\\\"").find(c) == std::string_view::npos;
        });
        bool domain_ok = !domain.empty() && domain.front() != '.' && domain.back() != '.' && domain.front() != '-' &&
                         domain.find("..") == std::string_view::npos &&
                         std::all_of(domain.begin(), domain.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
                         });
        return local_ok && domain_ok;
    }

    void mail() {
        const Mail& m = cfg_.mail;
        if (auto problem = relay_problem(m.relay)) {
            Origin o = key_origin("[mail] relay");
            diag_.error(o, "[mail] relay",
                        "expected an SMTP relay as HOST, HOST:PORT or [IPv6]:PORT (such as \"localhost:25\"), got " + quote(m.relay) +
                            ": " + *problem);
        }
        if (!m.from.empty() && !valid_mail_address(m.from)) {
            Origin o = key_origin("[mail] from");
            diag_.error(o, "[mail] from",
                        "expected a bare sender address such as \"duet@example.org\" (no name, no angle brackets), got " +
                            quote(m.from));
        }
        if (m.tls_verify && !m.starttls) {
            Origin o = key_origin("[mail] tls_verify");
            diag_.warn(o, "[mail] tls_verify",
                       "tls_verify = true has no effect with starttls = false: mail goes to the relay unencrypted");
        }
    }

    // "[[group]] home" or "haresources" in duet.toml; in the haresources file, the word concerned.
    std::string group_key(const Group& g, const std::string& field) const {
        const std::string& k = g.origin.key;
        if (toml_ && (k.empty() || k.rfind("[[group]]", 0) == 0)) return "[[group]] " + field;
        if (toml_) return k;
        if (field == "home") return k.empty() ? g.home_node : k;
        return g.name;
    }

    // Where a group option was set, and the key to name (the group's line when unknown).
    std::pair<Origin, std::string> group_option(const Group& g, const std::string& field) const {
        auto it = g.key_origins.find(field);
        if (it != g.key_origins.end()) return {it->second, it->second.key.empty() ? group_key(g, field) : it->second.key};
        return {where(g.origin, "[[group]]", ""), group_key(g, field)};
    }

    // Where a resource option was set, and the key to name.
    std::pair<Origin, std::string> resource_option(const Resource& r, const std::string& field) const {
        auto it = r.key_origins.find(field);
        if (it != r.key_origins.end()) return {it->second, it->second.key.empty() ? field : it->second.key};
        Origin o = where(r.origin, "[[group]] resources", "");
        return {o, o.key.empty() ? field : o.key + " " + field};
    }

    void group_name(Group& g) {
        auto problem = group_name_problem(g.name);
        if (!problem) return;
        bool chosen = g.key_origins.count("name") > 0;
        auto [o, key] = group_option(g, "name");
        if (!chosen && g.resources.front().origin.set()) o = g.resources.front().origin;  // where the name comes from
        std::string safe = safe_group_name(g.name);
        if (!chosen && !safe.empty() && safe[0] != '-' && !group_name_problem(safe)) {
            diag_.warn(o, key,
                       "the group's default name (its first resource, " + quote(g.name) + ") contains spaces; it is named " +
                           quote(safe) + " (for hactl)" + (toml_ ? "; set name = \"...\" to choose another" : ""));
            g.name = safe;
            return;
        }
        diag_.error(o, key,
                    "the group name " + quote(g.name) + " cannot be typed as `hactl cleanup NAME`: " + *problem +
                        "; expected printable characters without spaces" +
                        (!safe.empty() && safe[0] != '-' && !group_name_problem(safe) ? ", such as " + quote(safe) : std::string()));
    }

    void resource_options(const Resource& r) {
        std::string what = "resource " + quote(r.str()) + ": ";
        const std::pair<const std::optional<Millis>&, std::string> items[] = {{r.start_timeout, "start_timeout"},
                                                                               {r.stop_timeout, "stop_timeout"},
                                                                               {r.monitor_timeout, "monitor_timeout"},
                                                                               {r.monitor_interval, "monitor_interval"}};
        for (const auto& [value, name] : items) {
            if (!value) continue;
            auto [o, key] = resource_option(r, name);
            o.key = key;
            check_duration(*value, o, name, what);
        }
        if (r.monitor == false) {
            for (const auto& [value, name] : items) {
                if (!value || name.rfind("monitor_", 0) != 0) continue;
                auto [o, key] = resource_option(r, name);
                diag_.warn(o, key, what + name + " has no effect: monitor = false turns monitoring off");
            }
        }
        for (const auto& [name, value] : r.params) {
            auto [o, key] = resource_option(r, "params");
            if (!valid_param_name(name))
                diag_.error(o, key,
                            what + "expected a parameter name (letters, digits and '_', not starting with a digit), got " + quote(name));
            else if (auto bad = bad_text(value))
                diag_.error(o, key, what + "the value of " + name + " contains " + *bad);
        }
    }

    // What makes two resources obviously the same: an IP address, a mount point. Named parameters
    // override positional arguments, as when the agent runs.
    struct Identity {
        std::string kind;   // "address", "directory"; empty: nothing to compare
        std::string value;  // normalized
        Origin origin;      // where the value was written
    };
    Identity identity(const Resource& r) const {
        std::string param, kind;
        size_t arg = 0;
        if (r.agent == "IPaddr" || r.agent == "IPaddr2") {
            param = "ip", kind = "address", arg = 0;
        } else if (r.agent == "IPv6addr") {
            param = "ipv6addr", kind = "address", arg = 0;
        } else if (r.agent == "Filesystem") {
            param = "directory", kind = "directory", arg = 1;
        } else {
            return {};
        }
        std::string raw;
        std::string field;
        if (auto it = r.params.find(param); it != r.params.end()) {
            raw = it->second;
            field = "params";
        } else if (arg < r.args.size()) {
            raw = r.args[arg];
            field = "args";
        } else {
            return {};
        }
        std::string value;
        if (kind == "address") {
            std::string_view addr = std::string_view(raw).substr(0, raw.find('/'));
            value = canonical_ip(addr);
            if (value.empty()) value = std::string(addr);
        } else {
            value = normal_directory(raw);
        }
        if (value.empty()) return {};
        // The line of `args` or `params` in a table; else the resource's own (its word in haresources).
        auto it = r.key_origins.find(field);
        Origin o = it != r.key_origins.end() ? it->second : where(r.origin, "[[group]] resources", "");
        return {kind, value, o};
    }

    void groups() {
        std::string node_list;
        for (const auto& n : cfg_.nodes) node_list += (node_list.empty() ? "" : " and ") + n;
        std::map<std::string, size_t> names;
        struct Seen {
            size_t group;
            Origin origin;
        };
        std::map<std::pair<std::string, std::string>, Seen> seen;  // (kind, value) -> first resource
        for (size_t i = 0; i < cfg_.groups.size(); ++i) {
            Group& g = cfg_.groups[i];
            Origin o = where(g.origin, "[[group]]", "");
            if (g.resources.empty()) {
                diag_.error(o, group_key(g, "resources"), "a resource group needs at least one resource");
                continue;
            }
            if (g.name.empty()) g.name = g.resources.front().str();
            group_name(g);
            g.home_node = lower(g.home_node);
            if (std::find(cfg_.nodes.begin(), cfg_.nodes.end(), g.home_node) == cfg_.nodes.end())
                diag_.error(o, group_key(g, "home"),
                            "home node " + quote(g.home_node) + " is not a node of this cluster" +
                                (node_list.empty() ? std::string() : " (" + node_list + ")"));
            auto [it, fresh] = names.emplace(g.name, i);
            if (!fresh) {
                auto [no, nkey] = group_option(g, "name");
                diag_.error(no, nkey,
                            "a second group named " + quote(g.name) + " (the first is at " + cfg_.groups[it->second].origin.str() +
                                "); group names must be unique" +
                                (toml_ ? "; give one of them a name = \"...\"" : ": a group is named after its first resource"));
            }
            if (g.migration_threshold) {
                auto [mo, mkey] = group_option(g, "migration_threshold");
                check_migration_threshold(*g.migration_threshold, mo, mkey);
            }
            for (const Resource& r : g.resources) {
                Identity id = identity(r);
                resource_options(r);
                if (id.kind.empty()) continue;
                auto [first, new_one] = seen.emplace(std::make_pair(id.kind, id.value), Seen{i, id.origin});
                if (new_one) continue;
                const Seen& f = first->second;
                std::string shown = quote(id.value);
                if (f.group == i)
                    diag_.error(id.origin, id.origin.key,
                                "the " + id.kind + " " + shown + " appears twice in group " + quote(g.name) + " (also at " +
                                    f.origin.str() + ")");
                else
                    diag_.error(id.origin, id.origin.key,
                                "the " + id.kind + " " + shown + " is also in group " + quote(cfg_.groups[f.group].name) + " at " +
                                    f.origin.str() + ": two groups cannot share " +
                                    (id.kind == "address" ? "an address" : "a mount point") +
                                    " (the one would take it from the other)");
            }
        }
    }

    // ---- replicas ([replica.NAME] or drbd.conf resources)

    // A replica setting's origin (its key names the directive), else the replica's own.
    static Origin replica_option(const Replica& r, const std::string& field) {
        auto it = r.key_origins.find(field);
        return it != r.key_origins.end() ? it->second : r.origin;
    }

    static Origin node_option(const ReplicaNode& n, const std::string& field) {
        auto it = n.key_origins.find(field);
        return it != n.key_origins.end() ? it->second : n.origin;
    }

    // duet.toml names tables "[replica.r0]"; drbd.conf names statements ("resource r0", "on serv1").
    static bool from_toml(const Origin& o) { return !o.key.empty() && o.key[0] == '['; }

    static bool valid_replica_name(std::string_view s) {
        return !s.empty() && s.size() <= 64 && s[0] != '.' && s[0] != '-' &&
               std::all_of(s.begin(), s.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                          c == '-';
               });
    }

    void replica_node(Replica& r, ReplicaNode& n) {
        bool toml = from_toml(n.origin);
        if (n.address.empty()) {
            if (!n.key_origins.count("address"))
                diag_.error(n.origin, n.origin.key,
                            "no address for " + n.node + ": expected " +
                                (toml ? std::string("address = \"198.51.100.1:7788\"") : std::string("`address 198.51.100.1:7788;`")));
        } else {
            Origin o = node_option(n, "address");
            IpFamily fam = ip_family(n.address);
            if (fam == IpFamily::None)
                diag_.error(o, o.key,
                            "expected an IP address, got " + quote(n.address) +
                                " (Duet does not resolve host names: DNS may be down exactly when failover matters)");
            else if (is_multicast(n.address) || canonical_ip(n.address) == "0.0.0.0" || canonical_ip(n.address) == "::")
                diag_.error(o, o.key, quote(n.address) + " is not the address of a node (multicast or unspecified)");
            if (n.port == 0) diag_.error(o, o.key, "expected a TCP port from 1 to 65535, got 0");
        }
        if (n.disk.empty()) {
            if (!n.key_origins.count("disk"))
                diag_.error(n.origin, n.origin.key,
                            "no backing disk for " + n.node + ": expected " +
                                (toml ? std::string("disk = \"/dev/...\"")
                                      : std::string("`disk /dev/...;` in this on section or in the resource")));
        } else if (!absolute_path(n.disk)) {
            Origin o = node_option(n, "disk");
            diag_.error(o, o.key, "expected the absolute path of the backing disk, got " + quote(n.disk));
        }
        bool own_meta = !n.meta_disk.empty();  // else the replica's, checked with it
        if (!own_meta) n.meta_disk = r.meta_disk;
        Origin mo = own_meta ? node_option(n, "meta_disk") : replica_option(r, "meta_disk");
        if (own_meta && n.meta_disk != "internal" && !absolute_path(n.meta_disk))
            diag_.error(mo, mo.key, "expected internal or the absolute path of a metadata device, got " + quote(n.meta_disk));
        else if (n.meta_disk == n.disk)
            diag_.error(mo, mo.key,
                        "the metadata device is the backing disk itself (" + quote(n.disk) +
                            "); for metadata at the end of the disk, write internal");
    }

    void replicas() {
        std::sort(cfg_.replicas.begin(), cfg_.replicas.end(), [](const Replica& a, const Replica& b) { return a.name < b.name; });
        std::string node_list;
        for (const auto& n : cfg_.nodes) node_list += (node_list.empty() ? "" : " and ") + n;
        std::map<std::string, const Replica*> devices;
        std::map<std::pair<std::string, uint16_t>, Origin> endpoints;      // (address, port) -> where
        std::map<std::pair<std::string, std::string>, Origin> disks;      // (node, disk) -> where
        for (Replica& r : cfg_.replicas) {
            bool toml = from_toml(r.origin);
            if (!valid_replica_name(r.name))
                diag_.error(r.origin, r.origin.key,
                            "expected a replica name of letters, digits, '_', '.', '-' (at most 64, not starting with '.' or "
                            "'-'), got " + quote(r.name));
            if (r.device.empty() && !r.key_origins.count("device")) r.device = "/dev/duet/" + r.name;
            Origin dev = replica_option(r, "device");
            if (!r.device.empty() && !absolute_path(r.device)) {
                diag_.error(dev, dev.key, "expected the absolute path of the device, got " + quote(r.device));
            } else if (!r.device.empty()) {
                auto [it, fresh] = devices.emplace(r.device, &r);
                if (!fresh)
                    diag_.error(dev, dev.key,
                                "replicas " + it->second->name + " and " + r.name + " both use the device " + quote(r.device) +
                                    " (" + it->second->name + " at " + replica_option(*it->second, "device").str() + ")");
            }
            if (r.protocol != 'A' && r.protocol != 'B' && r.protocol != 'C') {
                Origin o = replica_option(r, "protocol");
                diag_.error(o, o.key, "expected protocol A, B or C, got " + quote(std::string(1, r.protocol)));
            }
            if (r.secret.empty() && !r.secret_file.empty()) {
                Origin o = replica_option(r, "secret_file");
                diag_.error(o, o.key, "the secret file " + quote(r.secret_file) + " has not been read (it is read when the configuration is loaded)");
            } else if (r.secret.empty() || r.secret_from_auth) {
                // No secret of its own: the cluster's (auth() reports it when there is none).
                r.secret = cfg_.auth.secret;
                r.secret_from_auth = true;
            } else if (auto bad = bad_text(r.secret)) {
                Origin o = replica_option(r, "secret");
                diag_.error(o, o.key, "the secret contains " + *bad);
            }
            if (!r.verify_alg.empty() &&
                std::none_of(std::begin(kVerifyAlgorithms), std::end(kVerifyAlgorithms), [&](const char* a) { return r.verify_alg == a; })) {
                Origin o = replica_option(r, "verify_alg");
                diag_.error(o, o.key, "unknown verify algorithm " + quote(r.verify_alg));
            }
            if (r.resync_rate > kMaxResyncRate) {
                Origin o = replica_option(r, "resync_rate");
                diag_.error(o, o.key, "the resync rate is above 1 TiB/s: leave it out for no limit");
            }
            if (r.meta_disk != "internal" && !absolute_path(r.meta_disk)) {
                Origin o = replica_option(r, "meta_disk");
                diag_.error(o, o.key, "expected internal or the absolute path of a metadata device, got " + quote(r.meta_disk));
            }
            // The nodes: the cluster's two, once each, in the cluster's order.
            std::map<std::string, const ReplicaNode*> seen;
            for (ReplicaNode& n : r.nodes) {
                n.node = lower(n.node);
                if (std::find(cfg_.nodes.begin(), cfg_.nodes.end(), n.node) == cfg_.nodes.end()) {
                    diag_.error(n.origin, n.origin.key,
                                quote(n.node) + " is not a node of this cluster" +
                                    (node_list.empty() ? std::string() : " (" + node_list + ")") +
                                    (toml ? std::string(": each [replica." + r.name + ".node.NODE] names a node of `nodes`")
                                          : std::string(": host names in `on` sections must be the node names of ha.cf (as "
                                                        "`uname -n` prints them)")));
                    continue;
                }
                auto [it, fresh] = seen.emplace(n.node, &n);
                if (!fresh) {
                    diag_.error(n.origin, n.origin.key, "node " + n.node + " appears twice (also at " + it->second->origin.str() + ")");
                    continue;
                }
                replica_node(r, n);
            }
            for (const auto& node : cfg_.nodes) {
                if (seen.count(node) || !valid_node_name(node)) continue;
                diag_.error(r.origin, r.origin.key,
                            "replica " + r.name + " has nothing for node " + node + ": expected " +
                                (toml ? "a table [replica." + r.name + ".node." + node + "] with address and disk"
                                      : "`on " + node + " { address ...; }` in resource " + r.name));
            }
            std::stable_sort(r.nodes.begin(), r.nodes.end(), [&](const ReplicaNode& a, const ReplicaNode& b) {
                auto pos = [&](const std::string& n) { return std::find(cfg_.nodes.begin(), cfg_.nodes.end(), n) - cfg_.nodes.begin(); };
                return pos(a.node) < pos(b.node);
            });
            // The same listening address twice, or two replicas on one disk, would mix two replicas' data.
            for (const ReplicaNode& n : r.nodes) {
                std::string ip = canonical_ip(n.address);
                if (!ip.empty()) {
                    Origin o = node_option(n, "address");
                    auto [it, fresh] = endpoints.emplace(std::make_pair(ip, n.port), o);
                    if (!fresh)
                        diag_.error(o, o.key,
                                    "the address " + format_endpoint(ip, n.port) + " is also used at " + it->second.str() +
                                        ": every node of every replica needs an address and port of its own");
                }
                if (!n.disk.empty()) {
                    Origin o = node_option(n, "disk");
                    auto [it, fresh] = disks.emplace(std::make_pair(n.node, n.disk), o);
                    if (!fresh)
                        diag_.error(o, o.key,
                                    "the disk " + quote(n.disk) + " of " + n.node + " is also used at " + it->second.str() +
                                        ": two replicas cannot share a backing disk");
                }
            }
        }
    }

    // haresources' replica::NAME and drbddisk::NAME name a replica; one group each. A filesystem on
    // a replica's device comes after the replica in its group (the device exists only on the Primary).
    void replica_resources() {
        std::map<std::string, const Replica*> by_name;
        std::map<std::string, const Replica*> by_device;
        std::string names;
        for (const Replica& r : cfg_.replicas) {
            by_name[r.name] = &r;
            by_device[r.device] = &r;
            names += (names.empty() ? "" : ", ") + r.name;
        }
        std::map<std::string, std::pair<const Group*, Origin>> used;  // replica -> the group promoting it
        for (const Group& g : cfg_.groups) {
            std::set<std::string> promoted;  // by earlier resources of this group
            for (const Resource& res : g.resources) {
                Origin o = where(res.origin, "[[group]] resources", "");
                if (o.key.empty()) o.key = res.str();
                if (res.agent == "replica" || res.agent == "drbddisk") {
                    if (res.args.empty()) {
                        if (res.params.empty())
                            diag_.error(o, o.key,
                                        res.agent + " needs the replica's name, such as " + res.agent + "::r0 (Duet promotes "
                                        "one replica per resource)");
                        continue;
                    }
                    const std::string& name = res.args[0];
                    if (!by_name.count(name)) {
                        diag_.error(o, o.key,
                                    "no replica is named " + quote(name) +
                                        (names.empty() ? std::string(": none is defined (add a drbd.conf next to ha.cf, or [replica.") + name +
                                                             "] to duet.toml)"
                                                       : " (defined: " + names + ")"));
                        continue;
                    }
                    auto [it, fresh] = used.emplace(name, std::make_pair(&g, o));
                    if (!fresh && it->second.first != &g)
                        diag_.error(o, o.key,
                                    "replica " + name + " is also in group " + quote(it->second.first->name) + " at " +
                                        it->second.second.str() + ": two groups cannot both promote one replica");
                    promoted.insert(name);
                } else if (res.agent == "Filesystem") {
                    std::string dev = res.params.count("device") ? res.params.at("device") : res.args.empty() ? "" : res.args[0];
                    auto it = by_device.find(dev);
                    if (dev.empty() || it == by_device.end() || promoted.count(it->second->name)) continue;
                    diag_.warn(o, o.key,
                               "the filesystem is on replica " + it->second->name + "'s device " + quote(dev) +
                                   ", which exists only where the replica is Primary, but no earlier resource of this group "
                                   "promotes it; put drbddisk::" + it->second->name + " (or replica::" + it->second->name +
                                   ") before it");
                }
            }
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
