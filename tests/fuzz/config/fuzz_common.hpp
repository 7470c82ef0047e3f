// What every config fuzz target checks besides "no crash, no leak, no UB": a configuration that
// finalizes without errors prints (to_toml) as duet.toml text that reads back to the same settings
// (same_settings compares every field, the chain's options included), and printing what was read
// back gives the same text again (so to_toml prints nothing that same_settings overlooks).
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
        for (const auto& r : g.resources) {
            n = n + r.str().size();
            for (const auto& [k, v] : r.params) n = n + k.size() + v.size();
        }
    n = n + to_toml(cfg).size();
    (void)n;
}

// Parses printed text and finalizes it; aborts, showing everything, when that gives an error.
inline Config read_back(const std::string& text, const std::string& secret) {
    Config back;
    Diagnostics d;
    parse_toml(text, "printed.toml", back, d);
    if (!back.auth.key_file.empty()) back.auth.secret = secret;  // as load() would read it
    finalize(back, d);
    if (d.has_errors()) {
        std::fprintf(stderr, "printed text does not read back\n--- printed:\n%s\n--- messages:\n%s", text.c_str(), d.str().c_str());
        std::abort();
    }
    return back;
}

inline void check_round_trip(const Config& cfg, const Diagnostics& diag) {
    use_everything(cfg, diag);
    if (diag.has_errors()) return;
    std::string text = to_toml(cfg, true);
    Config back = read_back(text, cfg.auth.secret);
    if (!same_settings(cfg, back)) {
        std::fprintf(stderr, "round trip failed\n--- printed:\n%s\n--- read back:\n%s", text.c_str(), to_toml(back, true).c_str());
        std::abort();
    }
    // A fixed point: the text printed from what was read back reads back to the same text.
    std::string again = to_toml(back, true);
    std::string third = to_toml(read_back(again, cfg.auth.secret), true);
    if (again != third) {
        std::fprintf(stderr, "printing is not stable\n--- once:\n%s\n--- twice:\n%s", again.c_str(), third.c_str());
        std::abort();
    }
}

// ha.cf and authkeys that are valid on their own, for the targets that fuzz another file.
inline const char* const kHacf =
    "keepalive 2\ndeadtime 10\nwarntime 6\ninitdead 60\nudpport 694\n"
    "mcast eth0 239.0.0.10 694 1 0\nauto_failback on\nnode serv1\nnode serv2\n";
inline const char* const kAuthkeys = "auth 1\n1 sha1 fuzz-secret\n";

}  // namespace duet::config::fuzz
