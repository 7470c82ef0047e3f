// Reading the configuration files: the only I/O of the config readers. Files holding the secret
// must belong to root and be closed to group and others, as Heartbeat requires for authkeys.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

// A file holding the shared key: refused unless root's and mode 0600 or stricter (Heartbeat's rule).
std::optional<FileText> read_secret_file(const std::string& path, Diagnostics& diag, const Origin* referrer = nullptr) {
    auto f = read_file(path, diag, false, referrer);
    if (!f) return std::nullopt;
    std::string problem = secret_file_problem(f->st);
    if (!problem.empty()) {
        Origin o = referrer ? *referrer : Origin{path, 0, ""};
        diag.error(o, o.key,
                   "refused: " + (referrer ? quote(path) : std::string("the file")) + " holds the cluster's secret key and " +
                       problem + "; fix it with `chmod 600 " + path + "; chown root " + path + "`");
        return std::nullopt;
    }
    return f;
}

std::string join(const std::string& dir, const char* name) {
    if (!dir.empty() && dir.back() == '/') return dir + name;
    return dir + "/" + name;
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
        std::string secret = std::move(k->text);
        while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
        if (secret.empty()) {
            diag.error(cfg.auth.origin, "[auth] key_file", "the key file " + quote(cfg.auth.key_file) + " is empty");
            return false;
        }
        cfg.auth.secret = std::move(secret);
        cfg.sources.push_back(cfg.auth.key_file);
    } else if (!cfg.auth.secret.empty() && !parse_failed) {
        std::string problem = secret_file_problem(f->st);
        if (!problem.empty())
            diag.warn(cfg.auth.origin, "[auth] key",
                      "this file holds the cluster's secret key and " + problem + "; run `chmod 600 " + path + "; chown root " +
                          path + "`, or move the key to a key_file");
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
    } else {
        diag.error(Origin{}, "", "no configuration to read: neither a duet.toml nor a Heartbeat directory (ha.cf, authkeys) was given");
        return cfg;
    }
    // Without its main files, the cross-file checks would only add noise.
    if (complete) finalize(cfg, diag);
    return cfg;
}

}  // namespace duet::config
