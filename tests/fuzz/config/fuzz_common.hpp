// What every config fuzz target checks besides "no crash, no leak, no UB": a configuration that
// finalizes without errors prints (to_toml) as duet.toml text that reads back to the same settings.
#pragma once

#include "daemon/config/model.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace duet::config::fuzz {

inline void use_everything(const Config& cfg, const Diagnostics& diag) {
    // Format every message and name (they run on all inputs, valid or not).
    volatile size_t n = diag.str().size();
    for (const auto& p : cfg.paths) n = n + p.name().size();
    for (const auto& g : cfg.groups)
        for (const auto& r : g.resources) n = n + r.str().size();
    n = n + to_toml(cfg).size();
    (void)n;
}

inline void check_round_trip(const Config& cfg, const Diagnostics& diag) {
    use_everything(cfg, diag);
    if (diag.has_errors()) return;
    std::string text = to_toml(cfg, true);
    Config back;
    Diagnostics d;
    parse_toml(text, "printed.toml", back, d);
    if (!back.auth.key_file.empty()) back.auth.secret = cfg.auth.secret;  // as load() would read it
    finalize(back, d);
    if (d.has_errors() || !same_settings(cfg, back)) {
        std::fprintf(stderr, "round trip failed\n--- printed:\n%s\n--- read back:\n%s\n--- messages:\n%s", text.c_str(),
                     to_toml(back, true).c_str(), d.str().c_str());
        std::abort();
    }
}

// ha.cf and authkeys that are valid on their own, for the targets that fuzz another file.
inline const char* const kHacf =
    "keepalive 2\ndeadtime 10\nwarntime 6\ninitdead 60\nudpport 694\n"
    "mcast eth0 239.0.0.10 694 1 0\nauto_failback on\nnode serv1\nnode serv2\n";
inline const char* const kAuthkeys = "auth 1\n1 sha1 fuzz-secret\n";

}  // namespace duet::config::fuzz
