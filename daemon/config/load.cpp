// Reading the configuration files: the only I/O of the config readers. Files holding the secret
// must belong to root and be closed to group and others, as Heartbeat requires for authkeys.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

namespace duet::config {

using namespace detail;

namespace {

constexpr off_t kMaxFileSize = 1 << 20;

struct FileText {
    std::string text;
    struct stat st {};
};

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

std::string mode_str(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

// Reads a whole regular file. `missing_ok`: a file that does not exist is no error (nullopt).
// `referrer`: the setting that names the file (errors are reported there), or null.
std::optional<FileText> read_file(const std::string& path, Diagnostics& diag, bool missing_ok = false,
                                  const Origin* referrer = nullptr) {
    struct Reporter {
        Origin o;
        std::string prefix;
        Diagnostics& diag;
        void error(const std::string& msg) { diag.error(o, o.key, prefix + msg); }
    } report{referrer ? *referrer : Origin{path, 0, ""}, referrer ? quote(path) + ": " : "", diag};
    // O_NONBLOCK: a FIFO put in place of a configuration file must not hang the daemon.
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        int e = errno;
        if (!(missing_ok && e == ENOENT)) report.error(std::string("cannot open: ") + std::strerror(e));
        return std::nullopt;
    }
    FileText f;
    if (::fstat(fd.get(), &f.st) != 0) {
        report.error(std::string("cannot stat: ") + std::strerror(errno));
        return std::nullopt;
    }
    if (!S_ISREG(f.st.st_mode)) {
        report.error("not a regular file");
        return std::nullopt;
    }
    if (f.st.st_size > kMaxFileSize) {
        report.error("the file is " + std::to_string(f.st.st_size) + " bytes long; a configuration file is at most 1 MiB");
        return std::nullopt;
    }
    char buf[65536];
    while (true) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            report.error(std::string("cannot read: ") + std::strerror(errno));
            return std::nullopt;
        }
        if (n == 0) break;
        f.text.append(buf, static_cast<size_t>(n));
        if (f.text.size() > static_cast<size_t>(kMaxFileSize)) {
            report.error("the file is longer than 1 MiB; a configuration file is at most 1 MiB");
            return std::nullopt;
        }
    }
    return f;
}

// What is wrong with the owner and mode of a file holding a secret; empty when nothing.
std::string secret_file_problem(const struct stat& st) {
    std::string problem;
    if (st.st_uid != 0) problem = "is owned by uid " + std::to_string(st.st_uid) + ", not root";
    if ((st.st_mode & 077) != 0)
        problem += std::string(problem.empty() ? "has" : " and has") + " mode " + mode_str(st.st_mode) +
                   ", which lets group or others access it";
    return problem;
}

// A file holding a secret: refused unless root's and mode 0600 or stricter (Heartbeat's rule).
// `what` names the secret in the message.
std::optional<FileText> read_secret_file(const std::string& path, Diagnostics& diag, const Origin* referrer = nullptr,
                                         const std::string& what = "the cluster's secret key") {
    auto f = read_file(path, diag, false, referrer);
    if (!f) return std::nullopt;
    std::string problem = secret_file_problem(f->st);
    if (!problem.empty()) {
        Origin o = referrer ? *referrer : Origin{path, 0, ""};
        diag.error(o, o.key,
                   "refused: " + (referrer ? quote(path) : std::string("the file")) + " holds " + what + " and " +
                       problem + "; fix it with `chmod 600 " + path + "; chown root " + path + "`");
        return std::nullopt;
    }
    return f;
}

std::string join(const std::string& dir, const char* name) {
    if (!dir.empty() && dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

// A secret read from a file: trailing line breaks removed; nullopt (error at `o`) when empty.
std::optional<std::string> secret_text(std::string text, const std::string& path, const Origin& o, Diagnostics& diag,
                                       const std::string& what = "key") {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) {
        diag.error(o, o.key, "the " + what + " file " + quote(path) + " is empty");
        return std::nullopt;
    }
    return text;
}

// [replica.NAME] secret_file: read like [auth] key_file. False when one could not be read.
bool load_replica_secrets(Config& cfg, Diagnostics& diag) {
    bool ok = true;
    for (Replica& r : cfg.replicas) {
        if (r.secret_file.empty()) continue;
        Origin o = r.key_origins.count("secret_file") ? r.key_origins.at("secret_file") : r.origin;
        auto f = read_secret_file(r.secret_file, diag, &o, "replica " + r.name + "'s link secret");
        std::optional<std::string> secret;
        if (f) secret = secret_text(std::move(f->text), r.secret_file, o, diag, "secret");
        if (!secret) {
            ok = false;
            continue;
        }
        r.secret = std::move(*secret);
        cfg.sources.push_back(r.secret_file);
    }
    return ok;
}

// A warning at each secret written in a file that group or others may read (once per file).
void warn_open_secrets(const Config& cfg, const std::map<std::string, struct stat>& stats, Diagnostics& diag) {
    std::set<std::string> warned;
    for (const Replica& r : cfg.replicas) {
        auto k = r.key_origins.find("secret");
        if (k == r.key_origins.end() || r.secret.empty()) continue;
        const Origin& o = k->second;
        auto st = stats.find(o.file);
        if (st == stats.end() || warned.count(o.file)) continue;
        std::string problem = secret_file_problem(st->second);
        if (problem.empty()) continue;
        warned.insert(o.file);
        diag.warn(o, o.key,
                  "this file holds replica " + r.name + "'s link secret and " + problem +
                      ": anyone who reads it can connect as the peer; run `chmod 600 " + o.file + "; chown root " + o.file + "`");
    }
}

// Every file an include pattern names, with its status (for warn_open_secrets). A pattern with no
// wildcard names one file, which must exist; a wildcard pattern may match nothing (DRBD's
// drbd.d/*.res with no resource yet).
struct Included {
    IncludedFile file;
    struct stat st {};
};

class Glob {
public:
    Glob() = default;
    ~Glob() {
        if (used_) ::globfree(&g_);
    }
    Glob(const Glob&) = delete;
    Glob& operator=(const Glob&) = delete;
    int run(const std::string& pattern) {
        used_ = true;
        return ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g_);
    }
    const glob_t& get() const { return g_; }

private:
    glob_t g_{};
    bool used_ = false;
};

constexpr size_t kMaxIncludedFiles = 256;

std::vector<Included> included_files(const std::string& pattern, const Origin& at, Diagnostics& diag) {
    std::vector<Included> out;
    std::vector<std::string> paths;
    if (pattern.find_first_of("*?[") == std::string::npos) {
        paths.push_back(pattern);
    } else {
        Glob g;
        int rc = g.run(pattern);
        if (rc == GLOB_NOMATCH) return out;
        if (rc != 0) {
            diag.error(at, at.key,
                       quote(pattern) + ": " + (rc == GLOB_NOSPACE ? std::string("out of memory") : "cannot read its directory: " + std::string(std::strerror(errno))));
            return out;
        }
        for (size_t i = 0; i < g.get().gl_pathc; ++i) paths.emplace_back(g.get().gl_pathv[i]);
        if (paths.size() > kMaxIncludedFiles) {
            diag.error(at, at.key,
                       quote(pattern) + " matches " + std::to_string(paths.size()) + " files; at most " +
                           std::to_string(kMaxIncludedFiles) + " are read");
            return out;
        }
    }
    for (const auto& p : paths) {
        auto f = read_file(p, diag, false, &at);
        if (!f) continue;
        out.push_back(Included{IncludedFile{p, std::move(f->text)}, f->st});
    }
    return out;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

// drbd.conf next to ha.cf, else the fallback (/etc/drbd.conf). False when one exists but could
// not be read completely.
bool load_drbdconf(const Source& src, const std::string& dir, Config& cfg, Diagnostics& diag) {
    std::string path = join(dir, "drbd.conf");
    if (!exists(path)) {
        if (src.drbd_conf_fallback.empty() || !exists(src.drbd_conf_fallback)) return true;
        path = src.drbd_conf_fallback;
    }
    auto f = read_file(path, diag);
    if (!f) return false;
    std::map<std::string, struct stat> stats{{path, f->st}};
    bool complete = true;
    IncludeReader reader = [&](const std::string& pattern, const Origin& at, Diagnostics& d) {
        size_t before = d.items().size();
        std::vector<IncludedFile> files;
        for (auto& inc : included_files(pattern, at, d)) {
            stats[inc.file.path] = inc.st;
            files.push_back(std::move(inc.file));
        }
        if (d.items().size() != before) complete = false;
        return files;
    };
    parse_drbdconf(f->text, path, cfg, diag, reader);
    warn_open_secrets(cfg, stats, diag);
    return complete;
}

// False when a file could not be read (then finalize() would only add noise).
bool load_toml(const std::string& path, Config& cfg, Diagnostics& diag) {
    auto f = read_file(path, diag);
    if (!f) return false;
    size_t errors_before = diag.items().size();
    parse_toml(f->text, path, cfg, diag);
    bool parse_failed = false;
    for (size_t i = errors_before; i < diag.items().size(); ++i) {
        const Diagnostic& d = diag.items()[i];
        if (d.severity != Diagnostic::Severity::Error) continue;
        parse_failed = true;
        if (d.origin.column > 0) return false;  // a syntax error: nothing was read
    }
    if (!cfg.auth.key_file.empty()) {
        auto k = read_secret_file(cfg.auth.key_file, diag, &cfg.auth.origin);
        if (!k) return false;
        Origin o = cfg.auth.origin;
        o.key = "[auth] key_file";
        auto secret = secret_text(std::move(k->text), cfg.auth.key_file, o, diag);
        if (!secret) return false;
        cfg.auth.secret = std::move(*secret);
        cfg.sources.push_back(cfg.auth.key_file);
    } else if (!cfg.auth.secret.empty() && !parse_failed) {
        std::string problem = secret_file_problem(f->st);
        if (!problem.empty())
            diag.warn(cfg.auth.origin, "[auth] key",
                      "this file holds the cluster's secret key and " + problem + "; run `chmod 600 " + path + "; chown root " +
                          path + "`, or move the key to a key_file");
    }
    if (!load_replica_secrets(cfg, diag)) return false;
    if (!parse_failed) {
        std::string problem = secret_file_problem(f->st);
        for (const Replica& r : cfg.replicas) {
            auto k = r.key_origins.find("secret");
            if (problem.empty() || k == r.key_origins.end()) continue;
            diag.warn(k->second, k->second.key,
                      "this file holds replica " + r.name + "'s link secret and " + problem + "; run `chmod 600 " + path +
                          "; chown root " + path + "`, or move the secret to a secret_file");
            break;  // one warning says it for the whole file
        }
    }
    return true;
}

}  // namespace

Config load(const Source& src, Diagnostics& diag) {
    Config cfg;
    bool complete = true;  // every required file was read
    if (src.toml_path) {
        complete = load_toml(*src.toml_path, cfg, diag);
    } else if (src.ha_dir) {
        const std::string& dir = *src.ha_dir;
        std::string hacf = join(dir, "ha.cf"), authkeys = join(dir, "authkeys"), haresources = join(dir, "haresources");
        if (auto f = read_file(hacf, diag))
            parse_hacf(f->text, hacf, cfg, diag);
        else
            complete = false;
        if (auto f = read_secret_file(authkeys, diag))
            parse_authkeys(f->text, authkeys, cfg, diag);
        else
            complete = false;
        // haresources is optional: without it the cluster has no resource groups.
        if (auto f = read_file(haresources, diag, true)) parse_haresources(f->text, haresources, cfg, diag);
        // drbd.conf too: without it (here or the fallback), no replicas.
        if (!load_drbdconf(src, dir, cfg, diag)) complete = false;
    } else {
        diag.error(Origin{}, "", "no configuration to read: neither a duet.toml nor a Heartbeat directory (ha.cf, authkeys) was given");
        return cfg;
    }
    // Without its main files, the cross-file checks would only add noise.
    if (complete) finalize(cfg, diag);
    return cfg;
}

std::vector<IncludedFile> read_included_files(const std::string& pattern, const Origin& at, Diagnostics& diag) {
    std::vector<IncludedFile> out;
    for (auto& inc : included_files(pattern, at, diag)) out.push_back(std::move(inc.file));
    return out;
}

std::optional<std::string> import_to_toml(const Source& src, Diagnostics& diag) {
    Config cfg = load(src, diag);
    if (diag.has_errors()) return std::nullopt;
    std::string text = to_toml(cfg, true);
    // Read back as load() would, with the secrets of key files as they were read.
    Config back;
    Diagnostics d;
    parse_toml(text, "the converted duet.toml", back, d);
    if (!back.auth.key_file.empty()) back.auth.secret = cfg.auth.secret;
    for (Replica& r : back.replicas)
        for (const Replica& orig : cfg.replicas)
            if (orig.name == r.name && !r.secret_file.empty()) r.secret = orig.secret;
    finalize(back, d);
    if (d.has_errors() || !same_settings(cfg, back)) {
        std::string why = d.has_errors() ? ": " + d.items().front().str() : std::string(": the settings differ");
        for (const auto& item : d.items())
            if (item.severity == Diagnostic::Severity::Error) {
                why = ": " + item.str();
                break;
            }
        diag.error(Origin{}, "",
                   "the converted duet.toml does not read back to the same settings" + why +
                       " (a bug in Duet: please report it with the files)");
        return std::nullopt;
    }
    return "# Converted by hactl import. It holds the secrets: keep it root's, mode 0600.\n" + text;
}

}  // namespace duet::config
