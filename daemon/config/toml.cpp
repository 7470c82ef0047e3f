// duet.toml, the native configuration (schema: docs/configuration.md). Every key is checked: unknown
// keys and wrong types are errors naming the line, the key and what was expected.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>

namespace duet::config {

using namespace detail;

namespace {

constexpr size_t kSocketPathMax = 107;  // sun_path holds 108 bytes with the terminating NUL

const char* type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "nothing";
    }
}

int line_of(const toml::source_region& r) {
    return static_cast<int>(std::min<uint32_t>(r.begin.line, INT32_MAX));
}

class TomlReader {
public:
    TomlReader(const std::string& file, Config& cfg, Diagnostics& diag) : file_(file), cfg_(cfg), diag_(diag) {}

    void read(const toml::table& root) {
        for (auto&& [k, v] : root) {
            std::string key(k.str());
            Origin o = at(k, key);
            if (key == "cluster") cluster(o, v);
            else if (key == "nodes") nodes(o, v);
            else if (key == "auto_failback") {
                if (auto b = boolean(o, v)) cfg_.auto_failback = *b;
            } else if (key == "port") {
                if (auto p = port(o, v)) {
                    cfg_.udpport = *p;
                    cfg_.origins.udpport = o;
                }
            } else if (key == "state_dir") {
                if (auto s = path(o, v, SIZE_MAX)) cfg_.state_dir = *s;
            } else if (key == "haresources") haresources(o, v);
            else if (key == "timings") {
                if (auto t = table(o, v, "[timings]")) timings(*t);
            } else if (key == "auth") {
                if (auto t = table(o, v, "[auth]")) auth(o, *t);
            } else if (key == "control") {
                if (auto t = table(o, v, "[control]")) control(*t);
            } else if (key == "resources") {
                if (auto t = table(o, v, "[resources]")) resource_defaults(*t);
            } else if (key == "policy") {
                if (auto t = table(o, v, "[policy]")) policy(*t);
            } else if (key == "mail") {
                if (auto t = table(o, v, "[mail]")) mail(*t);
            } else if (key == "path") {
                if (auto a = array_of_tables(o, v, "path"))
                    for (auto&& e : *a) path_table(*e.as_table());
            } else if (key == "group") {
                if (auto a = array_of_tables(o, v, "group"))
                    for (auto&& e : *a) group_table(*e.as_table());
            } else if (key == "replica") {
                if (auto t = table(o, v, "[replica.NAME]")) replicas(*t);
            } else {
                unknown(o, key, "", {"cluster", "nodes", "auto_failback", "port", "state_dir", "haresources", "timings",
                                      "auth", "control", "resources", "policy", "mail", "path", "group", "replica"});
            }
        }
    }

private:
    template <typename Located>
    Origin at(const Located& n, std::string key) const {
        return Origin{file_, line_of(n.source()), std::move(key)};
    }

    void type_error(const Origin& o, const toml::node& v, const std::string& expected) {
        diag_.error(o, o.key, "expected " + expected + ", got " + type_name(v));
    }

    void unknown(const Origin& o, const std::string& key, const std::string& table,
                 const std::vector<std::string_view>& known) {
        std::string msg = "unknown key" + (table.empty() ? std::string() : " in " + table);
        std::string hint = suggest(key, known);
        if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
        msg += "; expected one of:";
        for (auto k : known) msg += " " + std::string(k);
        diag_.error(o, (table.empty() ? "" : table + " ") + key, msg);
    }

    const toml::table* table(const Origin& o, const toml::node& v, const std::string& name) {
        if (const auto* t = v.as_table()) return t;
        diag_.error(o, name, "expected a table " + name + ", got " + type_name(v));
        return nullptr;
    }

    const toml::array* array_of_tables(const Origin& o, const toml::node& v, const std::string& name) {
        const auto* a = v.as_array();
        if (a == nullptr || !a->is_array_of_tables()) {
            diag_.error(o, "[[" + name + "]]",
                        "expected [[" + name + "]] tables (an array of tables, one per " + name + "), got " + type_name(v) +
                            (v.is_table() ? " [" + name + "]" : ""));
            return nullptr;
        }
        return a;
    }

    std::optional<std::string> string(const Origin& o, const toml::node& v, const std::string& expected = "a string") {
        if (const auto* s = v.as_string()) return s->get();
        type_error(o, v, expected);
        return std::nullopt;
    }

    // A string without control characters, not empty.
    std::optional<std::string> text(const Origin& o, const toml::node& v, const std::string& what) {
        auto s = string(o, v, what);
        if (!s) return std::nullopt;
        if (s->empty()) {
            diag_.error(o, o.key, "expected " + what + ", got an empty string");
            return std::nullopt;
        }
        if (auto bad = bad_text(*s)) {
            diag_.error(o, o.key, "expected " + what + ", got a string with " + *bad);
            return std::nullopt;
        }
        return s;
    }

    std::optional<std::string> path(const Origin& o, const toml::node& v, size_t max) {
        auto s = string(o, v, "an absolute path");
        if (!s) return std::nullopt;
        if (!absolute_path(*s)) {
            diag_.error(o, o.key, "expected an absolute path (starting with /), got " + quote(*s));
            return std::nullopt;
        }
        if (s->size() > max) {
            diag_.error(o, o.key, "the path is " + std::to_string(s->size()) + " bytes long; a Unix socket path holds at most " +
                                      std::to_string(max));
            return std::nullopt;
        }
        return s;
    }

    std::optional<bool> boolean(const Origin& o, const toml::node& v) {
        if (const auto* b = v.as_boolean()) return b->get();
        type_error(o, v, "true or false");
        return std::nullopt;
    }

    std::optional<int64_t> integer(const Origin& o, const toml::node& v, int64_t lo, int64_t hi, const std::string& what) {
        const auto* i = v.as_integer();
        if (i == nullptr) {
            type_error(o, v, what);
            return std::nullopt;
        }
        int64_t n = i->get();
        if (n < lo || n > hi) {
            diag_.error(o, o.key, "expected " + what + ", got " + std::to_string(n));
            return std::nullopt;
        }
        return n;
    }

    std::optional<uint16_t> port(const Origin& o, const toml::node& v) {
        auto n = integer(o, v, 1, 65535, "a UDP port from 1 to 65535");
        if (!n) return std::nullopt;
        return static_cast<uint16_t>(*n);
    }

    void cluster(const Origin& o, const toml::node& v) {
        auto s = text(o, v, "a cluster name");
        if (!s) return;
        cfg_.cluster = *s;
        cfg_.origins.cluster = o;
    }

    void nodes(const Origin& o, const toml::node& v) {
        const auto* a = v.as_array();
        if (a == nullptr) {
            type_error(o, v, "an array of two node names, such as [\"alpha\", \"beta\"]");
            return;
        }
        for (auto&& e : *a) {
            Origin eo = at(e, "nodes");
            const auto* s = e.as_string();
            if (s == nullptr) {
                type_error(eo, e, "a node name (a string)");
                continue;
            }
            if (!valid_node_name(s->get())) {
                diag_.error(eo, "nodes",
                            "expected a node name as `uname -n` prints it (letters, digits, '.', '-', '_'; at most 64), got " +
                                quote(s->get()));
                continue;
            }
            cfg_.nodes.push_back(lower(s->get()));
            cfg_.origins.nodes.push_back(eo);
        }
    }

    void haresources(const Origin& o, const toml::node& v) {
        const auto* a = v.as_array();
        if (a == nullptr) {
            type_error(o, v, "an array of haresources lines, such as [\"alpha 198.51.100.20 samba\"]");
            return;
        }
        for (auto&& e : *a) {
            Origin eo = at(e, "haresources");
            auto line = text(eo, e, "a haresources line (NODE RESOURCE...)");
            if (!line) continue;
            std::vector<Word> words;
            for (auto w : split_words(*line)) words.push_back(Word{w, eo.line});
            if (words.empty()) {
                diag_.error(eo, "haresources", "empty line: expected NODE RESOURCE [RESOURCE...]");
                continue;
            }
            parse_haresources_words(words, file_, "haresources", cfg_, diag_);
        }
    }

    void timings(const toml::table& t) {
        for (auto&& [k, v] : t) {
            std::string key(k.str());
            Origin o = at(k, "[timings] " + key);
            if (key == "keepalive") duration(o, v, cfg_.timings.keepalive, cfg_.origins.keepalive);
            else if (key == "warntime") duration(o, v, cfg_.timings.warntime, cfg_.origins.warntime);
            else if (key == "deadtime") duration(o, v, cfg_.timings.deadtime, cfg_.origins.deadtime);
            else if (key == "initdead") duration(o, v, cfg_.timings.initdead, cfg_.origins.initdead);
            else unknown(o, key, "[timings]", {"keepalive", "warntime", "deadtime", "initdead"});
        }
    }

    // Ranges are checked by finalize(), which knows what each duration is for.
    std::optional<Millis> duration(const Origin& o, const toml::node& v) {
        const std::string expected = "a duration: integer seconds, or a string such as \"2s\", \"500ms\" or \"1.5s\"";
        if (const auto* i = v.as_integer()) {
            int64_t n = i->get();
            if (n < 0 || n > 1000000000000) {
                diag_.error(o, o.key, "expected " + expected + ", got " + std::to_string(n));
                return std::nullopt;
            }
            return Millis(n * 1000);
        }
        if (const auto* s = v.as_string()) {
            auto d = parse_duration(s->get());
            if (!d) diag_.error(o, o.key, "expected " + expected + ", got " + quote(s->get()));
            return d;
        }
        type_error(o, v, expected);
        return std::nullopt;
    }

    void duration(const Origin& o, const toml::node& v, Millis& value, Origin& origin) {
        if (auto d = duration(o, v)) {
            value = *d;
            origin = o;
        }
    }

    // An integer that fits an int; finalize() checks the range that makes sense.
    std::optional<int> small_integer(const Origin& o, const toml::node& v, const std::string& what) {
        auto n = integer(o, v, INT32_MIN, INT32_MAX, what);
        if (!n) return std::nullopt;
        return static_cast<int>(*n);
    }

    std::optional<Policy::OnStopFailure> on_stop_failure(const Origin& o, const toml::node& v) {
        auto s = string(o, v, "\"block\" or \"reboot\"");
        if (!s) return std::nullopt;
        if (*s == "block") return Policy::OnStopFailure::Block;
        if (*s == "reboot") return Policy::OnStopFailure::Reboot;
        diag_.error(o, o.key, "expected \"block\" (keep the group stopped, never start it on the other node) or \"reboot\" "
                              "(reboot this node, as Heartbeat did), got " + quote(*s));
        return std::nullopt;
    }

    // [resources]: the timeouts and monitor interval of resources that do not set their own.
    void resource_defaults(const toml::table& t) {
        ResourceDefaults& d = cfg_.resource_defaults;
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[resources] " + name);
            Millis* value = name == "start_timeout"      ? &d.start_timeout
                            : name == "stop_timeout"     ? &d.stop_timeout
                            : name == "monitor_timeout"  ? &d.monitor_timeout
                            : name == "monitor_interval" ? &d.monitor_interval
                                                         : nullptr;
            if (value == nullptr) {
                unknown(o, name, "[resources]", {"start_timeout", "stop_timeout", "monitor_timeout", "monitor_interval"});
                continue;
            }
            if (auto m = duration(o, v)) {
                *value = *m;
                cfg_.origins.keys[o.key] = o;
            }
        }
    }

    void policy(const toml::table& t) {
        Policy& p = cfg_.policy;
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[policy] " + name);
            if (name == "migration_threshold") {
                if (auto n = small_integer(o, v, "an integer >= 1 (failures on a node before the group moves to the peer)")) {
                    p.migration_threshold = *n;
                    cfg_.origins.keys[o.key] = o;
                }
            } else if (name == "on_stop_failure") {
                if (auto f = on_stop_failure(o, v)) {
                    p.on_stop_failure = *f;
                    cfg_.origins.keys[o.key] = o;
                }
            } else if (name == "stop_retries") {
                if (auto n = small_integer(o, v, "an integer from 0 to 100 (retries of a failed stop)")) {
                    p.stop_retries = *n;
                    cfg_.origins.keys[o.key] = o;
                }
            } else if (name == "failure_timeout") {
                if (auto d = duration(o, v)) {
                    p.failure_timeout = *d;
                    cfg_.origins.keys[o.key] = o;
                }
            } else {
                unknown(o, name, "[policy]", {"migration_threshold", "on_stop_failure", "stop_retries", "failure_timeout"});
            }
        }
    }

    void mail(const toml::table& t) {
        Mail& m = cfg_.mail;
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[mail] " + name);
            if (name == "relay") {
                if (auto s = text(o, v, "an SMTP relay, such as \"localhost:25\" or \"smtp.example.org\"")) {
                    m.relay = *s;
                    cfg_.origins.keys[o.key] = o;
                }
            } else if (name == "from") {
                if (auto s = text(o, v, "a sender address, such as \"duet@example.org\"")) {
                    m.from = *s;
                    cfg_.origins.keys[o.key] = o;
                }
            } else if (name == "starttls" || name == "tls_verify") {
                if (auto b = boolean(o, v)) {
                    (name == "starttls" ? m.starttls : m.tls_verify) = *b;
                    cfg_.origins.keys[o.key] = o;
                }
            } else {
                unknown(o, name, "[mail]", {"relay", "from", "starttls", "tls_verify"});
            }
        }
    }

    void auth(const Origin& table_origin, const toml::table& t) {
        std::optional<std::string> key, key_file;
        Origin key_origin, file_origin;
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[auth] " + name);
            if (name == "key") {
                key = text(o, v, "the shared secret (a non-empty string)");
                key_origin = o;
                if (!key) key = "";  // reported; do not also report a missing key
            } else if (name == "key_file") {
                key_file = path(o, v, SIZE_MAX);
                file_origin = o;
                if (!key_file) key_file = "";
            } else {
                unknown(o, name, "[auth]", {"key", "key_file"});
            }
        }
        if (key && key_file) {
            diag_.error(file_origin, "[auth]", "give key or key_file, not both (key is at " + key_origin.str() + ")");
            return;
        }
        if (!key && !key_file) {
            diag_.error(table_origin, "[auth]", "expected key = \"SECRET\" or key_file = \"/etc/duet/authkey\"");
            return;
        }
        cfg_.auth.method = "hmac-sha256";
        if (key && !key->empty()) {
            cfg_.auth.secret = *key;
            cfg_.auth.origin = key_origin;
        } else if (key_file && !key_file->empty()) {
            cfg_.auth.key_file = *key_file;
            cfg_.auth.origin = file_origin;
        }
    }

    void control(const toml::table& t) {
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[control] " + name);
            if (name == "socket") {
                if (auto s = path(o, v, kSocketPathMax)) cfg_.socket_path = *s;
            } else if (name == "group") {
                auto g = text(o, v, "a group name");
                if (!g) continue;
                if (g->size() > 32 || g->find_first_of(" \t:/,") != std::string::npos) {
                    diag_.error(o, o.key, "expected a group name (such as haclient), got " + quote(*g));
                    continue;
                }
                cfg_.socket_group = *g;
            } else {
                unknown(o, name, "[control]", {"socket", "group"});
            }
        }
    }

    void path_table(const toml::table& t) {
        Origin po = at(t, "[[path]]");
        Path p;
        p.port = 0;  // the top-level port, resolved in finalize()
        p.origin = po;
        const toml::node* type = t.get("type");
        if (type == nullptr) {
            diag_.error(po, "[[path]]", "missing type = \"mcast\", \"bcast\" or \"ucast\"");
            return;
        }
        auto kind = string(at(*type, "[[path]] type"), *type, "\"mcast\", \"bcast\" or \"ucast\"");
        if (!kind) return;
        if (*kind == "mcast") p.kind = PathKind::Mcast;
        else if (*kind == "bcast") p.kind = PathKind::Bcast;
        else if (*kind == "ucast") p.kind = PathKind::Ucast;
        else {
            diag_.error(at(*type, "[[path]] type"), "[[path]] type", "expected \"mcast\", \"bcast\" or \"ucast\", got " + quote(*kind));
            return;
        }
        bool ok = true;
        auto only = [&](const Origin& o, PathKind k, const char* what) {
            if (p.kind == k) return true;
            diag_.error(o, o.key, std::string("only ") + what + "; this path is " + *kind);
            ok = false;
            return false;
        };
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[[path]] " + name);
            if (name == "type") continue;
            if (name == "interface") {
                auto s = text(o, v, "a network interface name");
                if (s) p.interface = *s;
                else ok = false;
            } else if (name == "group") {
                if (!only(o, PathKind::Mcast, "mcast paths have a group (a ucast path names its peer with address)")) continue;
                auto s = text(o, v, "a multicast group address");
                if (s) p.address = *s;
                else ok = false;
            } else if (name == "address") {
                if (!only(o, PathKind::Ucast, "ucast paths have an address (an mcast path has a group)")) continue;
                auto s = text(o, v, "the peer's IP address");
                if (s) p.address = *s;
                else ok = false;
            } else if (name == "port") {
                auto n = port(o, v);
                if (n) p.port = *n;
                else ok = false;
            } else if (name == "ttl") {
                if (!only(o, PathKind::Mcast, "mcast paths have a ttl")) continue;
                auto n = integer(o, v, 1, 255, "a TTL (hop limit) from 1 to 255");
                if (n) p.ttl = static_cast<int>(*n);
                else ok = false;
            } else if (name == "loop") {
                if (!only(o, PathKind::Mcast, "mcast paths have loop")) continue;
                auto b = boolean(o, v);
                if (b) p.loop = *b;
                else ok = false;
            } else {
                unknown(o, name, "[[path]]", {"type", "interface", "group", "address", "port", "ttl", "loop"});
                ok = false;
            }
        }
        if (ok) cfg_.paths.push_back(std::move(p));
    }

    void group_table(const toml::table& t) {
        Origin go = at(t, "[[group]]");
        Group g;
        g.origin = go;
        bool ok = true, have_home = false, have_resources = false;
        std::string first_text;
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, "[[group]] " + name);
            if (name == "name") {
                auto s = text(o, v, "a group name");
                if (s) {
                    g.name = *s;
                    g.key_origins[name] = o;
                } else {
                    ok = false;
                }
            } else if (name == "home") {
                have_home = true;
                auto s = string(o, v, "the home node's name");
                if (!s) {
                    ok = false;
                } else if (!valid_node_name(*s)) {
                    diag_.error(o, o.key, "expected a node name, got " + quote(*s));
                    ok = false;
                } else {
                    g.home_node = lower(*s);
                    g.origin.line = o.line;  // finalize() names the home line
                    g.origin.key = "[[group]] home";
                }
            } else if (name == "auto_failback") {
                if (auto b = boolean(o, v)) {
                    g.auto_failback = *b;
                    g.key_origins[name] = o;
                } else {
                    ok = false;
                }
            } else if (name == "migration_threshold") {
                if (auto n = small_integer(o, v, "an integer >= 1 (failures on a node before the group moves to the peer)")) {
                    g.migration_threshold = *n;
                    g.key_origins[name] = o;
                } else {
                    ok = false;
                }
            } else if (name == "on_stop_failure") {
                if (auto f = on_stop_failure(o, v)) {
                    g.on_stop_failure = *f;
                    g.key_origins[name] = o;
                } else {
                    ok = false;
                }
            } else if (name == "resources") {
                have_resources = true;
                const auto* a = v.as_array();
                if (a == nullptr) {
                    type_error(o, v, "an array of resources, such as [\"IPaddr::198.51.100.20/24/eth0\", \"samba\"]");
                    ok = false;
                    continue;
                }
                if (a->empty()) {
                    diag_.error(o, o.key, "expected at least one resource, got an empty array");
                    ok = false;
                }
                for (auto&& e : *a) {
                    std::optional<Resource> r;
                    std::string text_form;
                    if (const auto* s = e.as_string()) {
                        r = parse_resource(s->get(), at(e, "[[group]] resources"), diag_);
                        text_form = s->get();
                    } else if (const auto* rt = e.as_table()) {
                        r = resource_table(*rt, rt->is_inline() ? "[[group]] resources" : "[[group.resources]]");
                        if (r) text_form = r->str();
                    } else {
                        type_error(at(e, "[[group]] resources"), e,
                                   "a resource: a string such as \"Filesystem::/dev/duet/r0::/data::ext4\", or a table such as "
                                   "{ agent = \"IPaddr\", args = [\"198.51.100.20/24/eth0\"] }");
                    }
                    if (!r) {
                        ok = false;
                        continue;
                    }
                    if (g.resources.empty()) first_text = text_form;
                    g.resources.push_back(std::move(*r));
                }
            } else {
                unknown(o, name, "[[group]]", {"name", "home", "auto_failback", "migration_threshold", "on_stop_failure", "resources"});
                ok = false;
            }
        }
        if (!have_home) {
            diag_.error(go, "[[group]]", "missing home = \"NODE\" (the node the group runs on by preference)");
            ok = false;
        }
        if (!have_resources) {
            diag_.error(go, "[[group]]", "missing resources = [...] (the ordered resource chain)");
            ok = false;
        }
        if (!ok) return;
        if (g.name.empty()) g.name = first_text;  // Heartbeat's convention: the first resource names the group
        cfg_.groups.push_back(std::move(g));
    }

    // A resource as a table: { agent = "IPaddr", args = [...], params = { ... }, start_timeout = "20s", ... }.
    // `where` is "[[group]] resources" for an inline table, "[[group.resources]]" for an array-of-tables element.
    std::optional<Resource> resource_table(const toml::table& t, const std::string& where) {
        Origin ro = at(t, where);
        Resource r;
        r.origin = ro;
        bool ok = true, have_agent = false;
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            Origin o = at(k, where + " " + name);
            if (name == "agent") {
                have_agent = true;
                auto s = string(o, v, "a resource agent's name (such as \"IPaddr\" or \"Filesystem\")");
                if (!s) {
                    ok = false;
                } else if (ip_family(s->substr(0, s->find('/'))) != IpFamily::None) {
                    diag_.error(o, o.key, "expected a resource agent's name, got the address " + quote(*s) +
                                              "; write agent = \"IPaddr\", args = [\"" + *s + "\"]");
                    ok = false;
                } else if (!valid_agent(*s)) {
                    diag_.error(o, o.key, "expected a resource agent's name (letters, digits, '_', '.', '+', '-'), got " + quote(*s));
                    ok = false;
                } else {
                    r.agent = *s;
                }
            } else if (name == "args") {
                const auto* a = v.as_array();
                if (a == nullptr) {
                    type_error(o, v, "an array of positional arguments (strings), such as [\"/dev/duet/r0\", \"/data\", \"ext4\"]");
                    ok = false;
                    continue;
                }
                int n = 0;
                for (auto&& e : *a) {
                    ++n;
                    Origin eo = at(e, o.key);
                    auto s = string(eo, e, "an argument (a string)");
                    if (!s) {
                        ok = false;
                    } else if (s->empty()) {
                        diag_.error(eo, eo.key, "argument " + std::to_string(n) + " is empty");
                        ok = false;
                    } else if (auto bad = bad_text(*s)) {
                        diag_.error(eo, eo.key, "argument " + std::to_string(n) + " contains " + *bad);
                        ok = false;
                    } else {
                        r.args.push_back(*s);
                    }
                }
                r.key_origins[name] = o;
            } else if (name == "params") {
                const auto* pt = v.as_table();
                if (pt == nullptr) {
                    type_error(o, v, "a table of OCF parameters, such as { nic = \"eth0\", cidr_netmask = 24 }");
                    ok = false;
                    continue;
                }
                for (auto&& [pk, pv] : *pt) {
                    std::string pname(pk.str());
                    Origin po = at(pk, o.key + " " + pname);
                    if (!valid_param_name(pname)) {
                        diag_.error(po, o.key,
                                    "expected a parameter name (letters, digits and '_', not starting with a digit: it becomes "
                                    "OCF_RESKEY_<name>), got " + quote(pname));
                        ok = false;
                        continue;
                    }
                    std::string value;
                    if (const auto* s = pv.as_string()) {
                        if (auto bad = bad_text(s->get())) {
                            diag_.error(po, po.key, "the value contains " + *bad);
                            ok = false;
                            continue;
                        }
                        value = s->get();
                    } else if (const auto* i = pv.as_integer()) {
                        value = std::to_string(i->get());
                    } else if (const auto* b = pv.as_boolean()) {
                        value = b->get() ? "true" : "false";
                    } else {
                        type_error(po, pv, "a parameter value: a string, an integer or a boolean");
                        ok = false;
                        continue;
                    }
                    r.params[pname] = std::move(value);
                }
                r.key_origins[name] = o;
            } else if (name == "start_timeout" || name == "stop_timeout" || name == "monitor_timeout" || name == "monitor_interval") {
                auto d = duration(o, v);
                if (!d) {
                    ok = false;
                    continue;
                }
                (name == "start_timeout"     ? r.start_timeout
                 : name == "stop_timeout"    ? r.stop_timeout
                 : name == "monitor_timeout" ? r.monitor_timeout
                                             : r.monitor_interval) = *d;
                r.key_origins[name] = o;
            } else if (name == "monitor") {
                auto b = boolean(o, v);
                if (!b) {
                    ok = false;
                    continue;
                }
                r.monitor = *b;
                r.key_origins[name] = o;
            } else {
                unknown(o, name, where,
                        {"agent", "args", "params", "start_timeout", "stop_timeout", "monitor_timeout", "monitor_interval", "monitor"});
                ok = false;
            }
        }
        if (!have_agent) {
            diag_.error(ro, where, "missing agent = \"NAME\" (the resource agent, such as \"IPaddr\" or \"Filesystem\")");
            ok = false;
        }
        if (!ok) return std::nullopt;
        return r;
    }

    // [replica.NAME] tables, each with [replica.NAME.node.NODE] tables. A key that is written is
    // recorded in key_origins even when its value is refused, so that finalize() does not also
    // call it missing.
    void replicas(const toml::table& t) {
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            std::string where = "[replica." + name + "]";
            const auto* rt = v.as_table();
            if (rt == nullptr) {
                diag_.error(at(k, where), where,
                            std::string("expected a table [replica.NAME] (one per replicated disk), got ") + type_name(v));
                continue;
            }
            replica_table(name, *rt, where);
        }
    }

    void replica_table(const std::string& name, const toml::table& t, const std::string& where) {
        Replica r;
        r.name = name;
        r.origin = at(t, where);
        for (auto&& [k, v] : t) {
            std::string key(k.str());
            Origin o = at(k, where + " " + key);
            auto record = [&](const char* field) { r.key_origins[field] = o; };
            if (key == "device") {
                record("device");
                if (auto s = path(o, v, SIZE_MAX)) r.device = *s;
            } else if (key == "protocol") {
                record("protocol");
                auto s = string(o, v, "\"A\", \"B\" or \"C\"");
                if (!s) continue;
                if (*s == "A" || *s == "B" || *s == "C" || *s == "a" || *s == "b" || *s == "c")
                    r.protocol = static_cast<char>(std::toupper(static_cast<unsigned char>((*s)[0])));
                else
                    diag_.error(o, o.key,
                                "expected \"A\" (a write completes on the local disk), \"B\" (and in the peer's memory) or "
                                "\"C\" (and on the peer's disk: no acknowledged write is lost), got " + quote(*s));
            } else if (key == "secret") {
                record("secret");
                if (auto s = text(o, v, "the replication link's shared secret")) r.secret = *s;
            } else if (key == "secret_file") {
                record("secret_file");
                if (auto s = path(o, v, SIZE_MAX)) r.secret_file = *s;
            } else if (key == "encrypt") {
                record("encrypt");
                if (auto b = boolean(o, v)) r.encrypt = *b;
            } else if (key == "resync_rate") {
                record("resync_rate");
                const std::string expected =
                    "a rate in bytes per second: an integer, or a string with a K, M or G suffix (powers of 1024) such as "
                    "\"100M\"; at most 1 TiB/s (leave resync_rate out for no limit)";
                if (const auto* i = v.as_integer()) {
                    if (i->get() <= 0 || static_cast<uint64_t>(i->get()) > kMaxResyncRate)
                        diag_.error(o, o.key, "expected " + expected + ", got " + std::to_string(i->get()));
                    else
                        r.resync_rate = static_cast<uint64_t>(i->get());
                } else if (const auto* s = v.as_string()) {
                    if (auto rate = parse_rate(s->get(), 1)) r.resync_rate = *rate;
                    else diag_.error(o, o.key, "expected " + expected + ", got " + quote(s->get()));
                } else {
                    type_error(o, v, expected);
                }
            } else if (key == "verify") {
                record("verify_alg");
                auto s = string(o, v, "a digest name such as \"sha256\"");
                if (!s) continue;
                bool known = false;
                for (const char* alg : kVerifyAlgorithms) known = known || *s == alg;
                if (known) r.verify_alg = *s;
                else diag_.error(o, o.key, "expected one of " + verify_list() + ", got " + quote(*s));
            } else if (key == "meta_disk") {
                record("meta_disk");
                if (auto m = meta_disk(o, v)) r.meta_disk = *m;
            } else if (key == "node") {
                const auto* nt = v.as_table();
                if (nt == nullptr) {
                    diag_.error(o, where + " node",
                                std::string("expected [") + where.substr(1, where.size() - 2) +
                                    ".node.NODE] tables (one per node), got " + type_name(v));
                    continue;
                }
                for (auto&& [nk, nv] : *nt) replica_node(r, std::string(nk.str()), at(nk, ""), nv, where);
            } else {
                unknown(o, key, where,
                        {"device", "protocol", "secret", "secret_file", "encrypt", "resync_rate", "verify", "meta_disk", "node"});
            }
        }
        if (!r.secret.empty() && !r.secret_file.empty()) {
            const Origin& o = r.key_origins["secret_file"];
            diag_.error(o, o.key, "give either secret or secret_file, not both (secret is at " + r.key_origins["secret"].str() + ")");
        }
        cfg_.replicas.push_back(std::move(r));
    }

    void replica_node(Replica& r, const std::string& node, Origin o, const toml::node& v, const std::string& replica_where) {
        std::string where = "[" + replica_where.substr(1, replica_where.size() - 2) + ".node." + node + "]";
        o.key = where;
        const auto* t = v.as_table();
        if (t == nullptr) {
            diag_.error(o, where, std::string("expected a table ") + where + " (the node's address and disk), got " + type_name(v));
            return;
        }
        if (!valid_node_name(node)) {
            diag_.error(o, where, "expected a node name (as in nodes), got " + quote(node));
            return;
        }
        ReplicaNode n;
        n.node = lower(node);
        n.origin = at(*t, where);
        for (auto&& [k, val] : *t) {
            std::string key(k.str());
            Origin ko = at(k, where + " " + key);
            if (key == "address") {
                n.key_origins["address"] = ko;
                auto s = string(ko, val, "an address such as \"198.51.100.1:7788\" or \"[2001:db8::1]:7788\"");
                if (!s) continue;
                std::string problem;
                if (auto e = parse_endpoint(*s, problem)) {
                    n.address = e->address;
                    n.port = e->port;
                } else {
                    diag_.error(ko, ko.key,
                                "expected ADDRESS[:PORT] such as \"198.51.100.1:7788\" or \"[2001:db8::1]:7788\" (port " +
                                    std::to_string(kReplicaPort) + " when absent), got " + quote(*s) + ": " + problem);
                }
            } else if (key == "disk") {
                n.key_origins["disk"] = ko;
                if (auto s = path(ko, val, SIZE_MAX)) n.disk = *s;
            } else if (key == "meta_disk") {
                n.key_origins["meta_disk"] = ko;
                if (auto m = meta_disk(ko, val)) n.meta_disk = *m;
            } else {
                unknown(ko, key, where, {"address", "disk", "meta_disk"});
            }
        }
        r.nodes.push_back(std::move(n));
    }

    std::optional<std::string> meta_disk(const Origin& o, const toml::node& v) {
        auto s = string(o, v, "\"internal\" or the absolute path of a metadata device");
        if (!s) return std::nullopt;
        if (*s == "internal" || absolute_path(*s)) return s;
        diag_.error(o, o.key, "expected \"internal\" (metadata at the end of the disk) or the absolute path of a metadata device, got " +
                                  quote(*s));
        return std::nullopt;
    }

    static std::string verify_list() {
        std::string s;
        for (const char* alg : kVerifyAlgorithms) s += std::string(s.empty() ? "" : ", ") + "\"" + alg + "\"";
        return s;
    }

    const std::string& file_;
    Config& cfg_;
    Diagnostics& diag_;
};

}  // namespace

void parse_toml(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag) {
    cfg.syntax = Syntax::Toml;
    cfg.sources.push_back(file);
    cfg.origins.main = Origin{file, 0, ""};
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        const auto& b = e.source().begin;
        Origin o{file, static_cast<int>(std::min<uint32_t>(b.line, INT32_MAX)), "", static_cast<int>(std::min<uint32_t>(b.column, INT32_MAX))};
        diag.error(o, "", "TOML syntax: " + std::string(e.description()));
        return;
    }
    // The table iterates in key order; report in line order.
    Diagnostics local;
    TomlReader(file, cfg, local).read(root);
    std::vector<Diagnostic> items = local.items();
    std::stable_sort(items.begin(), items.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.origin.line < b.origin.line; });
    for (auto& d : items) {
        if (d.severity == Diagnostic::Severity::Error)
            diag.error(std::move(d.origin), std::move(d.directive), std::move(d.message));
        else
            diag.warn(std::move(d.origin), std::move(d.directive), std::move(d.message));
    }
}

}  // namespace duet::config
