// The effective configuration as duet.toml text, which parse_toml() reads back to the same model.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

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
        o += "resources = [";
        for (size_t i = 0; i < g.resources.size(); ++i) o += (i ? ", " : "") + str(g.resources[i].str());
        o += "]\n";
    }
    return o;
}

}  // namespace duet::config
