// Private helpers shared by the configuration readers.
#include "daemon/config/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace duet::config::detail {

namespace {

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool all_of_chars(std::string_view s, std::string_view extra) {
    return std::all_of(s.begin(), s.end(), [&](char c) { return is_alnum(c) || extra.find(c) != std::string_view::npos; });
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
            // A swap of two neighbours ("keepalvie") counts as one edit.
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev[j - 1]);
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

// Heartbeat's IPaddr argument form: address[/prefix[/interface[/broadcast]]], any part after the
// address may be empty. Interface labels such as eth0:1 are allowed, "::" is not (it separates
// arguments).
std::optional<std::string> ipaddr_form_problem(std::string_view word) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true) {
        size_t slash = word.find('/', start);
        parts.push_back(word.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    if (parts.size() > 4) return "expected address[/prefix[/interface[/broadcast]]], got more than four '/'-separated parts";
    IpFamily fam = ip_family(parts[0]);
    if (parts.size() > 1 && !parts[1].empty()) {
        auto prefix = parse_uint(parts[1], fam == IpFamily::V4 ? 32 : 128);
        if (!prefix) return "prefix length " + quote(parts[1]) + " is not a number from 0 to " + (fam == IpFamily::V4 ? "32" : "128");
    }
    if (parts.size() > 2 && !parts[2].empty()) {
        if (!all_of_chars(parts[2], "_.:-") || parts[2].find("::") != std::string_view::npos || parts[2].size() > 31)
            return "interface " + quote(parts[2]) + " is not an interface name (such as eth0 or eth0:1)";
    }
    if (parts.size() > 3 && !parts[3].empty()) {
        if (fam != IpFamily::V4 || ip_family(parts[3]) != IpFamily::V4)
            return "broadcast " + quote(parts[3]) + " is not an IPv4 address";
    }
    return std::nullopt;
}

// An IPv6 address that starts with a hex digit ("2001:db8::20", not "::1"): so that "::"
// right after an agent name, or doubled, still separates (empty) arguments.
bool ipv6_argument(std::string_view s) {
    if (s.empty() || !std::isxdigit(static_cast<unsigned char>(s[0]))) return false;
    return ip_family(s) == IpFamily::V6;
}

}  // namespace

std::vector<Line> split_lines(std::string_view text) {
    std::vector<Line> lines;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    int number = 0;
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(Line{++number, line});
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }
    return lines;
}

std::vector<std::string_view> split_words(std::string_view s, std::string_view delims) {
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < s.size()) {
        i = s.find_first_not_of(delims, i);
        if (i == std::string_view::npos) break;
        size_t end = s.find_first_of(delims, i);
        if (end == std::string_view::npos) end = s.size();
        words.push_back(s.substr(i, end - i));
        i = end;
    }
    return words;
}

std::string_view trim(std::string_view s) {
    constexpr std::string_view ws = " \t\f\v\r\n";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    size_t e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size(), i = 0;
    auto cont = [&](size_t k) { return i + k < n && (p[i + k] & 0xC0) == 0x80; };
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) { ++i; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (!cont(1)) return false;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (!cont(1) || !cont(2)) return false;
            if (c == 0xE0 && p[i + 1] < 0xA0) return false;  // overlong
            if (c == 0xED && p[i + 1] > 0x9F) return false;  // surrogate
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (!cont(1) || !cont(2) || !cont(3)) return false;
            if (c == 0xF0 && p[i + 1] < 0x90) return false;  // overlong
            if (c == 0xF4 && p[i + 1] > 0x8F) return false;  // above U+10FFFF
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

std::optional<std::string> bad_text(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == 0) return std::string("a NUL byte");
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            char buf[40];
            std::snprintf(buf, sizeof buf, "control character 0x%02X", c);
            return std::string(buf);
        }
    }
    if (!valid_utf8(s)) return std::string("invalid UTF-8");
    return std::nullopt;
}

std::string quote(std::string_view s) {
    std::string out = "'";
    size_t shown = 0;
    for (char ch : s) {
        if (shown++ == 80) {
            out += "...";
            break;
        }
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F || c == '\\' || c == '\'') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    out += "'";
    return out;
}

std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max) {
    if (s.empty() || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > max) return std::nullopt;
    return v;
}

IpFamily ip_family(std::string_view s) {
    if (s.empty() || s.size() > 45 || s.find('\0') != std::string_view::npos) return IpFamily::None;
    std::string z(s);
    unsigned char buf[16];
    if (inet_pton(AF_INET, z.c_str(), buf) == 1) return IpFamily::V4;
    if (inet_pton(AF_INET6, z.c_str(), buf) == 1) return IpFamily::V6;
    return IpFamily::None;
}

std::string canonical_ip(std::string_view s) {
    if (s.empty() || s.size() > 45 || s.find('\0') != std::string_view::npos) return {};
    std::string z(s);
    unsigned char buf[16];
    char out[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, z.c_str(), buf) == 1 && inet_ntop(AF_INET, buf, out, sizeof out)) return out;
    if (inet_pton(AF_INET6, z.c_str(), buf) == 1 && inet_ntop(AF_INET6, buf, out, sizeof out)) return out;
    return {};
}

bool is_multicast(std::string_view s) {
    std::string z(s);
    unsigned char buf[16];
    if (s.find('\0') != std::string_view::npos) return false;
    if (inet_pton(AF_INET, z.c_str(), buf) == 1) return (buf[0] & 0xF0) == 0xE0;
    if (inet_pton(AF_INET6, z.c_str(), buf) == 1) return buf[0] == 0xFF;
    return false;
}

bool is_ipv6_link_local(std::string_view s) {
    std::string z(s);
    unsigned char buf[16];
    if (s.find('\0') != std::string_view::npos) return false;
    return inet_pton(AF_INET6, z.c_str(), buf) == 1 && buf[0] == 0xFE && (buf[1] & 0xC0) == 0x80;
}

bool valid_node_name(std::string_view s) {
    return !s.empty() && s.size() <= kNodeNameMax && is_alnum(s[0]) && all_of_chars(s, "._-");
}

bool valid_interface(std::string_view s) {
    return !s.empty() && s.size() <= 15 && s != "." && s != ".." && all_of_chars(s, "_.-");
}

namespace {
bool valid_agent_word(std::string_view s) {
    return !s.empty() && s.size() <= 255 && (is_alnum(s[0]) || s[0] == '_') && all_of_chars(s, "_.+-");
}
}  // namespace

// An agent name, or an explicit OCF agent `ocf:PROVIDER:TYPE`.
bool valid_agent(std::string_view s) {
    if (s.rfind("ocf:", 0) == 0) {
        auto rest = s.substr(4);
        auto colon = rest.find(':');
        return colon != std::string_view::npos && valid_agent_word(rest.substr(0, colon)) &&
               valid_agent_word(rest.substr(colon + 1));
    }
    return valid_agent_word(s);
}

bool absolute_path(std::string_view s) {
    return !s.empty() && s[0] == '/' && !bad_text(s);
}

bool valid_param_name(std::string_view s) {
    return !s.empty() && !(s[0] >= '0' && s[0] <= '9') && all_of_chars(s, "_");
}

std::string suggest(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::string lw = lower(word);
    for (auto c : candidates)
        if (lw == c) return std::string(c);
    if (word.size() < 3 || word.size() > 26 || !all_of_chars(word, "_")) return {};
    std::string_view best;
    size_t best_d = 3;
    for (auto c : candidates) {
        // The distance is at least the difference in length.
        if (c.size() + best_d <= lw.size() || lw.size() + best_d <= c.size()) continue;
        size_t d = edit_distance(lw, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return std::string(best);
}

std::optional<Resource> parse_resource(std::string_view word, const Origin& origin, Diagnostics& diag) {
    auto fail = [&](const std::string& msg) -> std::optional<Resource> {
        diag.error(origin, origin.key, msg);
        return std::nullopt;
    };
    if (word.empty()) return fail("empty resource");
    if (auto bad = bad_text(word)) return fail("resource " + quote(word) + " contains " + *bad);

    std::string_view addr = word.substr(0, word.find('/'));
    if (ip_family(addr) == IpFamily::V4 || ipv6_argument(addr)) {
        if (auto problem = ipaddr_form_problem(word)) return fail("IP address resource " + quote(word) + ": " + *problem);
        Resource r;
        r.agent = "IPaddr";
        r.args.emplace_back(word);
        r.origin = origin;
        return r;
    }
    if (addr.find_first_not_of("0123456789.") == std::string_view::npos && addr.find('.') != std::string_view::npos &&
        addr.find_first_of("0123456789") != std::string_view::npos)
        return fail(quote(addr) + " is not a valid IPv4 address");

    size_t sep = word.find("::");
    std::string_view agent = word.substr(0, sep);
    if (agent.empty()) return fail("resource " + quote(word) + " has no agent name before '::'");
    if (!valid_agent(agent))
        return fail("resource " + quote(word) + ": expected an agent name (letters, digits, '_', '.', '+', '-') or an IP address, got " + quote(agent));
    Resource r;
    r.agent = std::string(agent);
    r.origin = origin;
    if (sep == std::string_view::npos) return r;

    std::string_view rest = word.substr(sep + 2);
    if (rest.empty()) return fail("resource " + quote(word) + " ends with '::' but has no argument after it");
    // An IPv6 address contains "::" itself: "IPaddr::2001:db8::20/64/eth0" is one argument.
    if (ipv6_argument(rest.substr(0, rest.find('/')))) {
        r.args.emplace_back(rest);
        return r;
    }
    int n = 0;
    while (true) {
        ++n;
        size_t next = rest.find("::");
        std::string_view arg = rest.substr(0, next);
        if (arg.empty())
            return fail("resource " + quote(word) + ": argument " + std::to_string(n) + " is empty (nothing between two '::')");
        r.args.emplace_back(arg);
        if (next == std::string_view::npos) break;
        rest = rest.substr(next + 2);
        if (rest.empty())
            return fail("resource " + quote(word) + " ends with '::' but has no argument after it");
    }
    return r;
}

void parse_haresources_words(const std::vector<Word>& words, const std::string& file, const std::string& toml_key,
                             Config& cfg, Diagnostics& diag) {
    if (words.empty()) return;
    const Word& home = words[0];
    Origin gorigin{file, home.line, toml_key.empty() ? std::string(home.text) : toml_key};
    if (!valid_node_name(home.text)) {
        diag.error(gorigin, gorigin.key,
                   "expected a node name (as in `uname -n`: letters, digits, '.', '-', '_', at most 64) before the resources, got " +
                       quote(home.text));
        return;
    }
    if (words.size() == 1) {
        diag.error(gorigin, gorigin.key, "no resources after the node name: expected `NODE RESOURCE [RESOURCE...]`");
        return;
    }
    Group g;
    g.home_node = lower(home.text);
    g.name = std::string(words[1].text);
    g.origin = gorigin;
    bool ok = true;
    for (size_t i = 1; i < words.size(); ++i) {
        Origin ro{file, words[i].line, toml_key.empty() ? std::string(words[i].text) : toml_key};
        auto r = parse_resource(words[i].text, ro, diag);
        if (!r) {
            ok = false;
            continue;
        }
        g.resources.push_back(std::move(*r));
    }
    if (ok) cfg.groups.push_back(std::move(g));
}

}  // namespace duet::config::detail
