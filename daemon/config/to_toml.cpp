// The effective configuration as duet.toml text, which parse_toml() reads back to the same model.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <algorithm>

namespace duet::config {

using namespace detail;

namespace {

// A TOML basic string. Control characters are escaped; bytes that are not UTF-8 become U+FFFD
// (the readers never produce them).
std::string str(std::string_view s) {
    std::string out = "\"";
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (len > 1 && i + len <= s.size() && valid_utf8(s.substr(i, len))) {
                out.append(s.substr(i, len));
                i += len;
            } else {
                out += "\\uFFFD";
                ++i;
            }
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        default:
            if (c < 0x20 || c == 0x7F) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04X", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
        ++i;
    }
    return out + "\"";
}

const char* kind_name(PathKind k) {
    switch (k) {
    case PathKind::Mcast: return "mcast";
    case PathKind::Bcast: return "bcast";
    case PathKind::Ucast: return "ucast";
    }
    return "mcast";
}

// A key, bare when TOML allows it.
std::string key(std::string_view k) {
    bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    return bare ? std::string(k) : str(k);
}

std::string duration(Millis d) { return str(format_duration(d)); }

const char* on_stop_failure_name(Policy::OnStopFailure f) {
    return f == Policy::OnStopFailure::Reboot ? "reboot" : "block";
}

// True when the haresources text of `r` reads back to the same resource: no options, and
// arguments that '::' can separate.
bool fits_a_string(const Resource& r) {
    if (!r.params.empty() || r.start_timeout || r.stop_timeout || r.monitor_timeout || r.monitor_interval || r.monitor)
        return false;
    Diagnostics ignored;
    auto back = parse_resource(r.str(), Origin{}, ignored);
    return back && back->agent == r.agent && back->args == r.args;
}

// { agent = "Filesystem", args = [...], params = { ... }, start_timeout = "20s", ... }
std::string resource_table(const Resource& r) {
    std::string o = "{ agent = " + str(r.agent);
    if (!r.args.empty()) {
        o += ", args = [";
        for (size_t i = 0; i < r.args.size(); ++i) o += (i ? ", " : "") + str(r.args[i]);
        o += "]";
    }
    if (!r.params.empty()) {
        o += ", params = {";
        bool first = true;
        for (const auto& [k, v] : r.params) {
            o += std::string(first ? " " : ", ") + key(k) + " = " + str(v);
            first = false;
        }
        o += " }";
    }
    if (r.start_timeout) o += ", start_timeout = " + duration(*r.start_timeout);
    if (r.stop_timeout) o += ", stop_timeout = " + duration(*r.stop_timeout);
    if (r.monitor_timeout) o += ", monitor_timeout = " + duration(*r.monitor_timeout);
    if (r.monitor_interval) o += ", monitor_interval = " + duration(*r.monitor_interval);
    if (r.monitor) o += std::string(", monitor = ") + (*r.monitor ? "true" : "false");
    return o + " }";
}

}  // namespace

std::string to_toml(const Config& cfg, bool show_secrets) {
    std::string o;
    o += "# Duet configuration as duetd reads it (duet.toml syntax).\n";
    if (!cfg.sources.empty()) {
        o += "# Read from:";
        for (const auto& s : cfg.sources) o += " " + quote(s).substr(1, quote(s).size() - 2);
        o += "\n";
    }
    if (!cfg.cluster.empty()) o += "cluster = " + str(cfg.cluster) + "\n";
    o += "nodes = [";
    for (size_t i = 0; i < cfg.nodes.size(); ++i) o += (i ? ", " : "") + str(cfg.nodes[i]);
    o += "]\n";
    o += std::string("auto_failback = ") + (cfg.auto_failback ? "true" : "false") + "\n";
    o += "port = " + std::to_string(cfg.udpport) + "\n";
    o += "state_dir = " + str(cfg.state_dir) + "\n";

    o += "\n[timings]\n";
    o += "keepalive = " + str(format_duration(cfg.timings.keepalive)) + "\n";
    o += "warntime = " + str(format_duration(cfg.timings.warntime)) + "\n";
    o += "deadtime = " + str(format_duration(cfg.timings.deadtime)) + "\n";
    o += "initdead = " + str(format_duration(cfg.timings.initdead)) + "\n";

    o += "\n[auth]\n";
    if (!cfg.auth.key_file.empty()) {
        o += "key_file = " + str(cfg.auth.key_file) + "\n";
    } else if (!cfg.auth.secret.empty()) {
        o += "key = " + str(show_secrets ? cfg.auth.secret : std::string("<hidden>")) + "\n";
        if (!cfg.auth.method.empty() && cfg.auth.method != "hmac-sha256")
            o += "# authkeys method " + cfg.auth.method + ": heartbeats are authenticated with HMAC-SHA256 under this key\n";
    } else {
        o += "# no key\n";
    }

    o += "\n[control]\n";
    o += "socket = " + str(cfg.socket_path) + "\n";
    o += "group = " + str(cfg.socket_group) + "\n";

    // Only what differs from the defaults, so that a printed Heartbeat configuration stays short.
    const ResourceDefaults rd0;
    const ResourceDefaults& rd = cfg.resource_defaults;
    std::string t;
    if (rd.start_timeout != rd0.start_timeout) t += "start_timeout = " + duration(rd.start_timeout) + "\n";
    if (rd.stop_timeout != rd0.stop_timeout) t += "stop_timeout = " + duration(rd.stop_timeout) + "\n";
    if (rd.monitor_timeout != rd0.monitor_timeout) t += "monitor_timeout = " + duration(rd.monitor_timeout) + "\n";
    if (rd.monitor_interval != rd0.monitor_interval) t += "monitor_interval = " + duration(rd.monitor_interval) + "\n";
    if (!t.empty()) o += "\n[resources]\n" + t;

    const Policy p0;
    const Policy& pol = cfg.policy;
    t.clear();
    if (pol.migration_threshold != p0.migration_threshold) t += "migration_threshold = " + std::to_string(pol.migration_threshold) + "\n";
    if (pol.on_stop_failure != p0.on_stop_failure)
        t += std::string("on_stop_failure = \"") + on_stop_failure_name(pol.on_stop_failure) + "\"\n";
    if (pol.stop_retries != p0.stop_retries) t += "stop_retries = " + std::to_string(pol.stop_retries) + "\n";
    if (pol.failure_timeout != p0.failure_timeout) t += "failure_timeout = " + duration(pol.failure_timeout) + "\n";
    if (!t.empty()) o += "\n[policy]\n" + t;

    const Mail m0;
    const Mail& mail = cfg.mail;
    t.clear();
    if (mail.relay != m0.relay) t += "relay = " + str(mail.relay) + "\n";
    if (mail.from != m0.from) t += "from = " + str(mail.from) + "\n";
    if (mail.starttls != m0.starttls) t += std::string("starttls = ") + (mail.starttls ? "true" : "false") + "\n";
    if (mail.tls_verify != m0.tls_verify) t += std::string("tls_verify = ") + (mail.tls_verify ? "true" : "false") + "\n";
    if (!t.empty()) o += "\n[mail]\n" + t;

    for (const auto& p : cfg.paths) {
        o += "\n[[path]]\n";
        o += std::string("type = \"") + kind_name(p.kind) + "\"\n";
        if (!p.interface.empty()) o += "interface = " + str(p.interface) + "\n";
        if (!p.address.empty()) o += std::string(p.kind == PathKind::Mcast ? "group" : "address") + " = " + str(p.address) + "\n";
        if (p.port != 0) o += "port = " + std::to_string(p.port) + "\n";
        if (p.kind == PathKind::Mcast) {
            o += "ttl = " + std::to_string(p.ttl) + "\n";
            o += std::string("loop = ") + (p.loop ? "true" : "false") + "\n";
        }
    }

    for (const auto& g : cfg.groups) {
        o += "\n[[group]]\n";
        if (!g.name.empty()) o += "name = " + str(g.name) + "\n";
        o += "home = " + str(g.home_node) + "\n";
        if (g.auto_failback) o += std::string("auto_failback = ") + (*g.auto_failback ? "true" : "false") + "\n";
        if (g.migration_threshold) o += "migration_threshold = " + std::to_string(*g.migration_threshold) + "\n";
        if (g.on_stop_failure) o += std::string("on_stop_failure = \"") + on_stop_failure_name(*g.on_stop_failure) + "\"\n";
        bool all_strings = std::all_of(g.resources.begin(), g.resources.end(), fits_a_string);
        if (all_strings) {
            o += "resources = [";
            for (size_t i = 0; i < g.resources.size(); ++i) o += (i ? ", " : "") + str(g.resources[i].str());
            o += "]\n";
        } else {
            o += "resources = [\n";
            for (const auto& r : g.resources) o += "    " + (fits_a_string(r) ? str(r.str()) : resource_table(r)) + ",\n";
            o += "]\n";
        }
    }

    for (const auto& r : cfg.replicas) {
        std::string table = "replica." + key(r.name);
        o += "\n[" + table + "]\n";
        o += "device = " + str(r.device) + "\n";
        o += std::string("protocol = \"") + r.protocol + "\"\n";
        if (!r.secret_file.empty())
            o += "secret_file = " + str(r.secret_file) + "\n";
        else if (!r.secret.empty() && !r.secret_from_auth)
            o += "secret = " + str(show_secrets ? r.secret : std::string("<hidden>")) + "\n";
        else
            o += "# no secret of its own: the link is authenticated with the [auth] key\n";
        o += std::string("encrypt = ") + (r.encrypt ? "true" : "false") + "\n";
        if (r.resync_rate != 0)
            o += "resync_rate = " + str(format_rate(r.resync_rate)) + "\n";
        else
            o += "# no resync_rate: resync is not throttled\n";
        if (!r.verify_alg.empty()) o += "verify = " + str(r.verify_alg) + "\n";
        o += "meta_disk = " + str(r.meta_disk) + "\n";
        for (const auto& n : r.nodes) {
            o += "\n[" + table + ".node." + key(n.node) + "]\n";
            o += "address = " + str(format_endpoint(n.address, n.port)) + "\n";
            o += "disk = " + str(n.disk) + "\n";
            if (!n.meta_disk.empty() && n.meta_disk != r.meta_disk) o += "meta_disk = " + str(n.meta_disk) + "\n";
        }
    }
    return o;
}

}  // namespace duet::config
