// Heartbeat's authkeys: `auth N` selects key N among lines `N METHOD SECRET`. The selected secret
// keys Duet's HMAC-SHA256; the method is informative, except that crc (a checksum) is refused.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <map>
#include <set>

namespace duet::config {

using namespace detail;

namespace {

constexpr uint64_t kMaxKeyIndex = 15;  // Heartbeat's table of 16 keys

struct KeyLine {
    std::string method;
    std::string secret;
    Origin origin;
};

}  // namespace

void parse_authkeys(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag) {
    cfg.sources.push_back(file);
    std::optional<uint64_t> selected;
    Origin selected_at;
    std::map<uint64_t, KeyLine> keys;
    std::set<uint64_t> broken;  // defined, but with an error already reported
    std::map<uint64_t, Origin> defined_at;

    for (const auto& l : split_lines(text)) {
        Origin where{file, l.number, ""};
        if (auto bad = bad_text(l.text)) {
            diag.error(where, "", "the line contains " + *bad + "; authkeys is a text file");
            continue;
        }
        // Only whole lines are comments: a secret may contain '#'.
        std::string_view t = trim(l.text);
        if (t.empty() || t[0] == '#') continue;
        auto words = split_words(t);
        if (words[0] == "auth") {
            Origin o{file, l.number, "auth"};
            if (words.size() != 2) {
                diag.error(o, "auth", "expected `auth N` with one key number, got " + std::to_string(words.size() - 1) + " values");
                continue;
            }
            auto n = parse_uint(words[1], kMaxKeyIndex);
            if (!n) {
                diag.error(o, "auth", "expected a key number from 0 to 15, got " + quote(words[1]));
                continue;
            }
            if (selected) {
                diag.error(o, "auth", "a second `auth` line (the first is at " + selected_at.str() + "); keep one");
                continue;
            }
            selected = n;
            selected_at = o;
            continue;
        }
        auto n = parse_uint(words[0], kMaxKeyIndex);
        if (!n) {
            if (parse_uint(words[0], UINT64_MAX >> 1))
                diag.error(where, "key " + std::string(words[0]), "key numbers go from 0 to 15");
            else
                diag.error(where, "", "expected `auth N` or `N METHOD SECRET` (such as `1 sha1 SECRET`), got " + quote(words[0]));
            continue;
        }
        std::string directive = "key " + std::to_string(*n);
        Origin o{file, l.number, directive};
        if (auto it = defined_at.find(*n); it != defined_at.end()) {
            diag.error(o, directive, "key " + std::to_string(*n) + " is defined twice (first at " + it->second.str() + ")");
            continue;
        }
        defined_at[*n] = o;
        if (words.size() < 2) {
            diag.error(o, directive, "expected `" + std::to_string(*n) + " METHOD SECRET` (method sha1 or md5), got no method");
            broken.insert(*n);
            continue;
        }
        std::string method = lower(words[1]);
        // The secret is the rest of the line (it may contain spaces).
        size_t after_method = static_cast<size_t>(words[1].data() - t.data()) + words[1].size();
        std::string secret(trim(t.substr(after_method)));
        if (method != "sha1" && method != "md5" && method != "crc") {
            diag.error(o, directive, "unknown method " + quote(words[1]) + ": expected sha1 or md5");
            broken.insert(*n);
            continue;
        }
        if (method != "crc" && secret.empty()) {
            diag.error(o, directive, "empty secret: expected `" + std::to_string(*n) + " " + method + " SECRET`");
            broken.insert(*n);
            continue;
        }
        keys[*n] = KeyLine{method, secret, o};
    }

    if (!selected) {
        diag.error(Origin{file, 0, "auth"}, "auth",
                   "no `auth N` line: nothing selects the key to use (expected `auth 1` and `1 sha1 SECRET`)");
        return;
    }
    for (const auto& [n, k] : keys)
        if (k.method == "crc" && n != *selected)
            diag.warn(k.origin, k.origin.key, "method crc authenticates nothing; this key is not selected by `auth` and is ignored");
    auto it = keys.find(*selected);
    if (it == keys.end() && broken.count(*selected)) return;
    if (it == keys.end()) {
        diag.error(selected_at, "auth", "selects key " + std::to_string(*selected) + ", which is not defined in this file");
        return;
    }
    const KeyLine& k = it->second;
    if (k.method == "crc") {
        diag.error(k.origin, k.origin.key,
                   "method crc is refused: it is a checksum, not authentication, and anyone on the network could forge "
                   "heartbeats. Use `" + std::to_string(*selected) + " sha1 SECRET` with a long random secret on both nodes");
        return;
    }
    cfg.auth.method = k.method;
    cfg.auth.secret = k.secret;
    cfg.auth.origin = k.origin;
}

}  // namespace duet::config
