// Agent lookup: from a configured resource to an executable, its convention and its parameters.
#include "daemon/resources/agent.hpp"

#include "daemon/resources/runner.hpp"
#include "daemon/util/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

namespace duet::resources {

namespace fs = std::filesystem;

std::string_view to_string(Convention c) {
    switch (c) {
    case Convention::Ocf: return "ocf";
    case Convention::Heartbeat: return "heartbeat";
    case Convention::Lsb: return "lsb";
    }
    return "?";
}

std::string Agent::str() const {
    std::string s;
    if (convention == Convention::Ocf)
        s = "ocf:" + provider + ":" + type;
    else
        s = std::string(to_string(convention));
    s += " " + path;
    if (convention == Convention::Ocf) {
        for (const auto& [k, v] : params) s += " " + k + "=" + v;
    } else {
        for (const auto& a : args) s += " " + a;
    }
    return s;
}

namespace {

std::string quote(std::string_view s) {
    std::string q = "'";
    for (unsigned char ch : s) {
        if (ch < 0x20 || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            q += buf;
        } else {
            q += static_cast<char>(ch);
        }
    }
    return q + "'";
}

// One component of an agent name: it becomes a file name.
bool valid_component(std::string_view s) {
    if (s.empty() || s.size() > 255 || s == "." || s == "..") return false;
    return std::all_of(s.begin(), s.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '.' || ch == '+' || ch == '-';
    });
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? std::string(sep) : std::string()) + v[i];
    return s;
}

std::string absolute(const std::string& p) {
    std::error_code ec;
    fs::path a = fs::absolute(p, ec);
    if (ec) return p;
    return a.lexically_normal().string();
}

// What is at a candidate path.
enum class Probe { Missing, Usable, Unusable };
Probe probe(const std::string& path, std::string& why) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            struct stat lst {};
            if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
                why = path + " is a symbolic link to nothing";
                return Probe::Unusable;
            }
            return Probe::Missing;
        }
        why = "cannot look at " + path + ": " + std::strerror(e);
        return Probe::Unusable;
    }
    if (!S_ISREG(st.st_mode)) {
        why = path + " is not a regular file";
        return Probe::Unusable;
    }
    if (::access(path.c_str(), X_OK) != 0) {
        why = path + " is not executable (chmod +x?)";
        return Probe::Unusable;
    }
    return Probe::Usable;
}

// OCF providers under OCF_ROOT/resource.d: "heartbeat" first, then alphabetical.
std::vector<std::string> providers(const std::string& ocf_root) {
    std::vector<std::string> out;
    std::error_code ec;
    fs::directory_iterator it(fs::path(ocf_root) / "resource.d", ec);
    if (ec) return out;
    for (const auto& e : it) {
        std::error_code ec2;
        if (e.is_directory(ec2)) out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
        if ((a == "heartbeat") != (b == "heartbeat")) return a == "heartbeat";
        return a < b;
    });
    return out;
}

// --- meta-data ---------------------------------------------------------------------------------

struct CacheEntry {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    struct timespec mtime {};
    std::vector<std::string> params;
};
std::mutex cache_mu;
std::map<std::string, CacheEntry> cache;

bool same_file(const struct stat& st, const CacheEntry& e) {
    return st.st_dev == e.dev && st.st_ino == e.ino && st.st_size == e.size && st.st_mtim.tv_sec == e.mtime.tv_sec &&
           st.st_mtim.tv_nsec == e.mtime.tv_nsec;
}

std::string last_line(const std::string& s) {
    size_t end = s.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return {};
    size_t begin = s.rfind('\n', end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::string l = s.substr(begin, end + 1 - begin);
    if (l.size() > 200) l = l.substr(0, 200) + "...";
    return l;
}

std::optional<std::vector<std::string>> metadata_params(const Agent& a, const SearchPath& sp, std::string& error) {
    struct stat st {};
    if (::stat(a.path.c_str(), &st) != 0) {
        error = "cannot look at " + a.path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    {
        std::lock_guard lock(cache_mu);
        auto it = cache.find(a.path);
        if (it != cache.end() && same_file(st, it->second)) return it->second.params;
    }
    auto timeout = sp.metadata_timeout;
    std::vector<std::string> argv = command_line(a, Action::MetaData);
    SyncResult r = run_sync(argv, environment(a, Action::MetaData, timeout, a.type, {}), timeout);
    const std::string what = "`" + a.path + " meta-data`";
    if (!r.started) {
        error = r.error;
        return std::nullopt;
    }
    if (r.timed_out) {
        error = what + " did not finish within " + std::to_string(timeout.count()) + " ms (killed)";
        return std::nullopt;
    }
    if (r.exit_code != 0) {
        std::string how = r.exit_code >= 0 ? "exited with " + std::to_string(r.exit_code)
                                           : "was killed by signal " + std::to_string(r.term_signal);
        std::string tail = last_line(r.err.empty() ? r.out : r.err);
        error = what + " " + how + (tail.empty() ? "" : ": " + tail);
        return std::nullopt;
    }
    std::string perr;
    auto names = parameter_names(r.out, perr);
    if (!names) {
        error = what + " printed unusable meta-data: " + perr;
        return std::nullopt;
    }
    if (r.out.find("<resource-agent") == std::string::npos) {
        error = what + " printed no <resource-agent> meta-data";
        return std::nullopt;
    }
    std::lock_guard lock(cache_mu);
    cache[a.path] = CacheEntry{st.st_dev, st.st_ino, st.st_size, st.st_mtim, *names};
    return names;
}

// --- XML scan ----------------------------------------------------------------------------------

bool name_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == ':' || ch == '.' || ch == '-' || static_cast<unsigned char>(ch) >= 0x80;
}
bool space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

// The five predefined entities and numeric character references (ASCII only: names are ASCII).
std::optional<std::string> decode_entities(std::string_view v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '&') {
            out += v[i];
            continue;
        }
        size_t semi = v.find(';', i);
        if (semi == std::string_view::npos) return std::nullopt;
        std::string_view ent = v.substr(i + 1, semi - i - 1);
        if (ent == "amp") out += '&';
        else if (ent == "lt") out += '<';
        else if (ent == "gt") out += '>';
        else if (ent == "quot") out += '"';
        else if (ent == "apos") out += '\'';
        else if (ent.size() >= 2 && ent[0] == '#') {
            bool hex = ent[1] == 'x' || ent[1] == 'X';
            std::string digits(ent.substr(hex ? 2 : 1));
            if (digits.empty() || digits.size() > 6) return std::nullopt;
            char* end = nullptr;
            long c = std::strtol(digits.c_str(), &end, hex ? 16 : 10);
            if (*end != '\0' || c <= 0 || c > 0x7f) return std::nullopt;
            out += static_cast<char>(c);
        } else {
            return std::nullopt;
        }
        i = semi;
    }
    return out;
}

}  // namespace

std::optional<std::vector<std::string>> parameter_names(std::string_view xml, std::string& error) {
    std::vector<std::string> names;
    std::set<std::string> seen;
    int in_parameters = 0;  // depth of open <parameters> elements
    size_t line = 1, counted = 0;
    auto at = [&](size_t pos) {
        line += static_cast<size_t>(std::count(xml.begin() + static_cast<long>(counted), xml.begin() + static_cast<long>(pos), '\n'));
        counted = pos;
        return "line " + std::to_string(line) + ": ";
    };
    auto skip_to = [&](size_t from, std::string_view end, const char* what, size_t& pos) {
        size_t e = xml.find(end, from);
        if (e == std::string_view::npos) {
            error = at(from) + "unterminated " + what;
            return false;
        }
        pos = e + end.size();
        return true;
    };
    size_t i = 0;
    while ((i = xml.find('<', i)) != std::string_view::npos) {
        std::string_view rest = xml.substr(i);
        if (rest.substr(0, 4) == "<!--") {
            if (!skip_to(i + 4, "-->", "comment", i)) return std::nullopt;
            continue;
        }
        if (rest.substr(0, 9) == "<![CDATA[") {
            if (!skip_to(i + 9, "]]>", "CDATA section", i)) return std::nullopt;
            continue;
        }
        if (rest.substr(0, 2) == "<?") {
            if (!skip_to(i + 2, "?>", "processing instruction", i)) return std::nullopt;
            continue;
        }
        if (rest.substr(0, 2) == "<!") {  // DOCTYPE, possibly with an internal subset in [...]
            int brackets = 0;
            char quote_ch = 0;
            size_t j = i + 2;
            for (; j < xml.size(); ++j) {
                char ch = xml[j];
                if (quote_ch) {
                    if (ch == quote_ch) quote_ch = 0;
                } else if (ch == '"' || ch == '\'') {
                    quote_ch = ch;
                } else if (ch == '[') {
                    ++brackets;
                } else if (ch == ']') {
                    --brackets;
                } else if (ch == '>' && brackets <= 0) {
                    break;
                }
            }
            if (j >= xml.size()) {
                error = at(i) + "unterminated declaration";
                return std::nullopt;
            }
            i = j + 1;
            continue;
        }
        bool closing = rest.size() > 1 && rest[1] == '/';
        size_t j = i + (closing ? 2 : 1);
        size_t name_begin = j;
        while (j < xml.size() && name_char(xml[j])) ++j;
        std::string_view tag = xml.substr(name_begin, j - name_begin);
        if (tag.empty()) {
            error = at(i) + "'<' that starts no tag (write &lt; in text)";
            return std::nullopt;
        }
        // Attributes up to '>' (quoted values may contain '>').
        std::map<std::string, std::string, std::less<>> attrs;
        bool self_closing = false;
        while (true) {
            while (j < xml.size() && space(xml[j])) ++j;
            if (j >= xml.size()) {
                error = at(i) + "unterminated <" + std::string(tag) + "> tag";
                return std::nullopt;
            }
            if (xml[j] == '>') {
                ++j;
                break;
            }
            if (xml[j] == '/' && j + 1 < xml.size() && xml[j + 1] == '>') {
                self_closing = true;
                j += 2;
                break;
            }
            size_t an = j;
            while (j < xml.size() && name_char(xml[j])) ++j;
            std::string_view aname = xml.substr(an, j - an);
            while (j < xml.size() && space(xml[j])) ++j;
            if (aname.empty() || closing || j >= xml.size() || xml[j] != '=') {
                error = at(i) + "malformed <" + std::string(closing ? "/" : "") + std::string(tag) + "> tag";
                return std::nullopt;
            }
            ++j;
            while (j < xml.size() && space(xml[j])) ++j;
            if (j >= xml.size() || (xml[j] != '"' && xml[j] != '\'')) {
                error = at(i) + "attribute " + std::string(aname) + " of <" + std::string(tag) + "> has no quoted value";
                return std::nullopt;
            }
            char q = xml[j];
            size_t vend = xml.find(q, j + 1);
            if (vend == std::string_view::npos) {
                error = at(i) + "unterminated value of attribute " + std::string(aname);
                return std::nullopt;
            }
            auto value = decode_entities(xml.substr(j + 1, vend - j - 1));
            if (!value) {
                error = at(i) + "bad entity in attribute " + std::string(aname) + " of <" + std::string(tag) + ">";
                return std::nullopt;
            }
            attrs.emplace(std::string(aname), std::move(*value));
            j = vend + 1;
        }
        if (tag == "parameters") {
            if (closing) {
                if (in_parameters > 0) --in_parameters;
            } else if (!self_closing) {
                ++in_parameters;
            }
        } else if (tag == "parameter" && !closing && in_parameters > 0) {
            auto it = attrs.find("name");
            if (it == attrs.end()) {
                error = at(i) + "<parameter> without a name attribute";
                return std::nullopt;
            }
            const std::string& n = it->second;
            bool usable = !n.empty() && std::none_of(n.begin(), n.end(), [](char ch) {
                return ch == '=' || static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f;
            });
            if (!usable) {
                error = at(i) + "parameter name " + quote(n) + " cannot be passed as an environment variable";
                return std::nullopt;
            }
            if (seen.insert(n).second) names.push_back(n);
        }
        i = j;
    }
    return names;
}

std::optional<Agent> resolve(const config::Resource& r, const SearchPath& sp, std::string& error) {
    const std::string where = (r.origin.set() ? r.origin.str() + ": " : std::string()) + "resource " + quote(r.str()) + ": ";
    auto fail = [&](const std::string& m) -> std::optional<Agent> {
        error = where + m;
        return std::nullopt;
    };

    Agent a;
    a.name = r.agent;
    a.args = r.args;
    std::string explicit_provider;
    if (r.agent.rfind("ocf:", 0) == 0) {
        std::string_view rest = std::string_view(r.agent).substr(4);
        size_t colon = rest.find(':');
        if (colon == std::string_view::npos || !valid_component(rest.substr(0, colon)) ||
            !valid_component(rest.substr(colon + 1)))
            return fail("expected an OCF agent as ocf:PROVIDER:TYPE (letters, digits, '_', '.', '+', '-'), got " +
                        quote(r.agent));
        explicit_provider = std::string(rest.substr(0, colon));
        a.type = std::string(rest.substr(colon + 1));
    } else if (r.agent.find(':') != std::string::npos) {
        return fail("unknown agent class in " + quote(r.agent) + ": name an agent, or an OCF agent as ocf:PROVIDER:TYPE");
    } else if (!valid_component(r.agent)) {
        return fail("agent name " + quote(r.agent) + " is not a file name (letters, digits, '_', '.', '+', '-')");
    } else {
        a.type = r.agent;
    }

    std::vector<std::string> searched;
    std::string why;
    // Looks at `path`; true when the search ends there (found, or an error).
    auto found = [&](const std::string& path, Convention conv, const std::string& provider) -> std::optional<bool> {
        searched.push_back(path);
        switch (probe(path, why)) {
        case Probe::Missing: return std::nullopt;
        case Probe::Unusable: return false;
        case Probe::Usable: break;
        }
        a.path = absolute(path);
        a.convention = conv;
        a.provider = provider;
        return true;
    };
    std::optional<bool> hit;
    auto not_found = [&] { return fail("agent " + quote(r.agent) + " not found; looked for " + join(searched, ", ")); };

    if (!explicit_provider.empty()) {
        if (explicit_provider == "duet" && !sp.duet_dir.empty())
            hit = found((fs::path(sp.duet_dir) / a.type).string(), Convention::Ocf, "duet");
        if (!hit)
            hit = found((fs::path(sp.ocf_root) / "resource.d" / explicit_provider / a.type).string(), Convention::Ocf,
                        explicit_provider);
        if (!hit) return not_found();
    } else {
        if (!sp.duet_dir.empty()) hit = found((fs::path(sp.duet_dir) / a.type).string(), Convention::Ocf, "duet");
        if (!hit) {
            std::vector<std::string> present;
            std::string first_why;
            std::optional<bool> first;
            Agent chosen;
            for (const auto& p : providers(sp.ocf_root)) {
                std::string path = (fs::path(sp.ocf_root) / "resource.d" / p / a.type).string();
                std::string w;
                Probe pr = probe(path, w);
                if (pr == Probe::Missing) continue;
                present.push_back("ocf:" + p + ":" + a.type);
                if (!first) {
                    first = pr == Probe::Usable;
                    first_why = w;
                    chosen.path = absolute(path);
                    chosen.provider = p;
                }
            }
            searched.push_back((fs::path(sp.ocf_root) / "resource.d" / "*" / a.type).string());
            if (first) {
                hit = first;
                why = first_why;
                a.path = chosen.path;
                a.provider = chosen.provider;
                a.convention = Convention::Ocf;
                if (present.size() > 1)
                    log::debug(r.agent + ": found as " + join(present, ", ") + "; using ocf:" + a.provider + ":" + a.type +
                               " (provider heartbeat first, then alphabetical)");
            }
        }
        for (size_t d = 0; !hit && d < sp.heartbeat_dirs.size(); ++d)
            hit = found((fs::path(sp.heartbeat_dirs[d]) / a.type).string(), Convention::Heartbeat, "");
        if (!hit && !sp.initd.empty()) hit = found((fs::path(sp.initd) / a.type).string(), Convention::Lsb, "");
        if (!hit) return not_found();
    }
    if (!*hit) return fail(why);

    switch (a.convention) {
    case Convention::Lsb:
        if (!r.args.empty() || !r.params.empty())
            return fail(a.path + " is an LSB init script, which takes no arguments or parameters");
        return a;
    case Convention::Heartbeat:
        if (!r.params.empty())
            return fail(a.path + " is a Heartbeat resource script, which takes positional arguments only (named "
                        "parameters need an OCF agent)");
        return a;
    case Convention::Ocf: break;
    }

    a.ocf_root = sp.ocf_root;
    if (r.args.empty() && r.params.empty()) return a;
    std::string merr;
    auto names = metadata_params(a, sp, merr);
    if (!names) return fail("cannot map its arguments to parameters: " + merr);
    if (r.args.size() > names->size()) {
        std::string list = names->empty() ? "none" : join(*names, ", ");
        return fail("ocf:" + a.provider + ":" + a.type + " takes " + std::to_string(names->size()) + " parameter" +
                    (names->size() == 1 ? "" : "s") + " (" + list + ") but " + std::to_string(r.args.size()) +
                    (r.args.size() == 1 ? " argument was given" : " arguments were given"));
    }
    for (size_t k = 0; k < r.args.size(); ++k) a.params[(*names)[k]] = r.args[k];
    for (const auto& [k, v] : r.params) {
        if (std::find(names->begin(), names->end(), k) == names->end())
            return fail("ocf:" + a.provider + ":" + a.type + " has no parameter " + quote(k) + " (its parameters: " +
                        (names->empty() ? std::string("none") : join(*names, ", ")) + ")");
        a.params[k] = v;
    }
    return a;
}

}  // namespace duet::resources
