// The small pieces of the model: messages, names, durations, comparison.
#include "daemon/config/model.hpp"

#include "daemon/config/text.hpp"

namespace duet::config {

std::string Diagnostic::str() const {
    std::string s = origin.str();
    if (!s.empty()) s += ": ";
    s += severity == Severity::Error ? "error: " : "warning: ";
    if (!directive.empty()) s += directive + ": ";
    s += message;
    return s;
}

void Diagnostics::warn(Origin o, std::string directive, std::string message) {
    items_.push_back(Diagnostic{Diagnostic::Severity::Warning, std::move(o), std::move(directive), std::move(message)});
}

void Diagnostics::error(Origin o, std::string directive, std::string message) {
    items_.push_back(Diagnostic{Diagnostic::Severity::Error, std::move(o), std::move(directive), std::move(message)});
}

bool Diagnostics::has_errors() const {
    for (const auto& d : items_)
        if (d.severity == Diagnostic::Severity::Error) return true;
    return false;
}

std::string Diagnostics::str() const {
    std::string s;
    for (const auto& d : items_) s += d.str() + "\n";
    return s;
}

namespace {
std::string host_port(const std::string& address, uint16_t port) {
    if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
    return address + ":" + std::to_string(port);
}
}  // namespace

std::string Path::name() const {
    switch (kind) {
    case PathKind::Mcast:
        return "mcast " + interface + " " + host_port(address, port);
    case PathKind::Bcast:
        return "bcast " + interface + ":" + std::to_string(port);
    case PathKind::Ucast:
        return "ucast " + (interface.empty() ? std::string() : interface + " ") + host_port(address, port);
    }
    return "?";
}

std::string Resource::str() const {
    std::string s = agent;
    for (const auto& a : args) s += "::" + a;
    return s;
}

std::optional<Millis> parse_duration(std::string_view text) {
    std::string_view s = detail::trim(text);
    size_t i = 0;
    uint64_t whole = 0;
    int whole_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (++whole_digits > 12) return std::nullopt;
        whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
        ++i;
    }
    // Fraction in units of 10^-9, truncated after nine digits (enough for rounding to 1 ms).
    uint64_t frac = 0;
    int frac_digits = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            if (frac_digits < 9) {
                frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
                ++frac_digits;
            }
            ++i;
            if (frac_digits == 9) {
                while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
            }
        }
        if (whole_digits == 0 && frac_digits == 0) return std::nullopt;
    } else if (whole_digits == 0) {
        return std::nullopt;
    }
    for (int k = frac_digits; k < 9; ++k) frac *= 10;
    std::string unit = detail::lower(detail::trim(s.substr(i)));
    // Rounded to the nearest millisecond, halves up (as Heartbeat's get_msec).
    int64_t ms;
    if (unit.empty() || unit == "s" || unit == "sec")
        ms = static_cast<int64_t>(whole * 1000 + frac / 1000000 + (frac % 1000000 >= 500000 ? 1 : 0));
    else if (unit == "ms" || unit == "msec")
        ms = static_cast<int64_t>(whole + (frac >= 500000000 ? 1 : 0));
    else if (unit == "us" || unit == "usec")
        ms = static_cast<int64_t>((whole + 500) / 1000);  // the fraction of a microsecond cannot change this
    else
        return std::nullopt;
    return Millis(ms);
}

std::string format_duration(Millis d) {
    auto n = d.count();
    if (n % 1000 == 0) return std::to_string(n / 1000) + "s";
    return std::to_string(n) + "ms";
}

std::optional<uint64_t> parse_rate(std::string_view text, uint64_t unit) {
    std::string_view s = detail::trim(text);
    if (s.empty() || unit == 0) return std::nullopt;
    uint64_t multiplier = unit;
    char last = s.back();
    if (last < '0' || last > '9') {
        switch (last) {
        case 'k': case 'K': multiplier = uint64_t(1) << 10; break;
        case 'm': case 'M': multiplier = uint64_t(1) << 20; break;
        case 'g': case 'G': multiplier = uint64_t(1) << 30; break;
        default: return std::nullopt;
        }
        s.remove_suffix(1);
    }
    auto n = detail::parse_uint(s, kMaxResyncRate);
    if (!n || *n == 0 || *n > kMaxResyncRate / multiplier) return std::nullopt;
    return *n * multiplier;
}

std::string format_rate(uint64_t b) {
    if (b != 0 && b % (uint64_t(1) << 30) == 0) return std::to_string(b >> 30) + "G";
    if (b != 0 && b % (uint64_t(1) << 20) == 0) return std::to_string(b >> 20) + "M";
    if (b != 0 && b % (uint64_t(1) << 10) == 0) return std::to_string(b >> 10) + "K";
    return std::to_string(b);
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& problem) {
    Endpoint e;
    std::string_view host = text, port;
    bool has_port = false;
    if (!text.empty() && text[0] == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos) {
            problem = "'[' without ']'";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') {
                problem = "expected ':PORT' after ']'";
                return std::nullopt;
            }
            port = rest.substr(1);
            has_port = true;
        }
        if (detail::ip_family(host) != detail::IpFamily::V6) {
            problem = detail::quote(host) + " between brackets is not an IPv6 address";
            return std::nullopt;
        }
    } else {
        size_t colon = text.find(':');
        if (colon != std::string_view::npos) {
            if (text.find(':', colon + 1) != std::string_view::npos) {
                problem = "an IPv6 address needs brackets, such as [2001:db8::1]:7788";
                return std::nullopt;
            }
            host = text.substr(0, colon);
            port = text.substr(colon + 1);
            has_port = true;
        }
    }
    if (host.empty()) {
        problem = "no address";
        return std::nullopt;
    }
    if (has_port) {
        auto p = detail::parse_uint(port, 65535);
        if (!p || *p == 0) {
            problem = "port " + detail::quote(port) + " is not a number from 1 to 65535";
            return std::nullopt;
        }
        e.port = static_cast<uint16_t>(*p);
    }
    e.address = std::string(host);
    return e;
}

std::string format_endpoint(const std::string& address, uint16_t port) { return host_port(address, port); }

bool same_settings(const Config& a, const Config& b) {
    if (a.cluster != b.cluster || a.nodes != b.nodes || a.udpport != b.udpport || a.auto_failback != b.auto_failback ||
        a.socket_path != b.socket_path || a.socket_group != b.socket_group || a.state_dir != b.state_dir)
        return false;
    if (a.timings.keepalive != b.timings.keepalive || a.timings.warntime != b.timings.warntime ||
        a.timings.deadtime != b.timings.deadtime || a.timings.initdead != b.timings.initdead)
        return false;
    if (a.auth.key_file != b.auth.key_file) return false;
    if (a.auth.key_file.empty() && a.auth.secret != b.auth.secret) return false;
    if (a.paths.size() != b.paths.size()) return false;
    for (size_t i = 0; i < a.paths.size(); ++i) {
        const Path& p = a.paths[i];
        const Path& q = b.paths[i];
        if (p.kind != q.kind || p.interface != q.interface || p.address != q.address || p.port != q.port) return false;
        if (p.kind == PathKind::Mcast && (p.ttl != q.ttl || p.loop != q.loop)) return false;
    }
    const ResourceDefaults& rd = a.resource_defaults;
    const ResourceDefaults& re = b.resource_defaults;
    if (rd.start_timeout != re.start_timeout || rd.stop_timeout != re.stop_timeout ||
        rd.monitor_timeout != re.monitor_timeout || rd.monitor_interval != re.monitor_interval)
        return false;
    const Policy& pa = a.policy;
    const Policy& pb = b.policy;
    if (pa.migration_threshold != pb.migration_threshold || pa.on_stop_failure != pb.on_stop_failure ||
        pa.stop_retries != pb.stop_retries || pa.failure_timeout != pb.failure_timeout)
        return false;
    if (a.mail.relay != b.mail.relay || a.mail.from != b.mail.from || a.mail.starttls != b.mail.starttls ||
        a.mail.tls_verify != b.mail.tls_verify)
        return false;
    if (a.groups.size() != b.groups.size()) return false;
    for (size_t i = 0; i < a.groups.size(); ++i) {
        const Group& g = a.groups[i];
        const Group& h = b.groups[i];
        if (g.name != h.name || g.home_node != h.home_node || g.resources.size() != h.resources.size() ||
            g.auto_failback != h.auto_failback || g.migration_threshold != h.migration_threshold ||
            g.on_stop_failure != h.on_stop_failure)
            return false;
        for (size_t j = 0; j < g.resources.size(); ++j) {
            const Resource& r = g.resources[j];
            const Resource& s = h.resources[j];
            if (r.agent != s.agent || r.args != s.args || r.params != s.params || r.start_timeout != s.start_timeout ||
                r.stop_timeout != s.stop_timeout || r.monitor_timeout != s.monitor_timeout ||
                r.monitor_interval != s.monitor_interval || r.monitor != s.monitor)
                return false;
        }
    }
    if (a.replicas.size() != b.replicas.size()) return false;
    for (size_t i = 0; i < a.replicas.size(); ++i) {
        const Replica& r = a.replicas[i];
        const Replica& s = b.replicas[i];
        if (r.name != s.name || r.device != s.device || r.protocol != s.protocol || r.secret_file != s.secret_file ||
            r.encrypt != s.encrypt || r.resync_rate != s.resync_rate || r.verify_alg != s.verify_alg ||
            r.meta_disk != s.meta_disk || r.nodes.size() != s.nodes.size())
            return false;
        // As for [auth]: with a secret file, its name is compared, not the secret read from it.
        if (r.secret_from_auth != s.secret_from_auth) return false;
        if (r.secret_file.empty() && r.secret != s.secret) return false;
        for (size_t j = 0; j < r.nodes.size(); ++j) {
            const ReplicaNode& n = r.nodes[j];
            const ReplicaNode& m = s.nodes[j];
            if (n.node != m.node || n.address != m.address || n.port != m.port || n.disk != m.disk ||
                n.meta_disk != m.meta_disk)
                return false;
        }
    }
    return true;
}

}  // namespace duet::config
