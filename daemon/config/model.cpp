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
    return true;
}

}  // namespace duet::config
