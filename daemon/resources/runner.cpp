// The agent runner: child processes, calling conventions, timeouts, output, reaping.
#include "daemon/resources/runner.hpp"

#include "daemon/util/log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>

namespace duet::resources {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string_view to_string(Action a) {
    switch (a) {
    case Action::Start: return "start";
    case Action::Stop: return "stop";
    case Action::Monitor: return "monitor";
    case Action::MetaData: return "meta-data";
    case Action::ValidateAll: return "validate-all";
    }
    return "?";
}

std::string_view rc_name(int rc) {
    switch (rc) {
    case 0: return "success";
    case 1: return "generic error";
    case 2: return "invalid arguments";
    case 3: return "unimplemented";
    case 4: return "insufficient privileges";
    case 5: return "not installed";
    case 6: return "not configured";
    case 7: return "not running";
    case 8: return "running promoted";
    case 9: return "failed promoted";
    case 190: return "degraded";
    case 191: return "degraded promoted";
    default: return "unknown error";
    }
}

namespace {

std::string format_ms(milliseconds d) {
    if (d.count() < 10000) return std::to_string(d.count()) + " ms";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

// For log lines and summaries: control characters shown as \xNN.
std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char ch : s) {
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            out += buf;
        } else {
            out += static_cast<char>(ch);
        }
    }
    return out;
}

std::string last_line(std::string_view s) {
    size_t end = s.find_last_not_of(" \t\r\n");
    if (end == std::string_view::npos) return {};
    size_t begin = s.rfind('\n', end);
    begin = begin == std::string_view::npos ? 0 : begin + 1;
    std::string l = printable(s.substr(begin, end + 1 - begin));
    if (l.size() > 200) l = l.substr(0, 200) + "...";
    return l;
}

std::string describe_status(int st) {
    if (WIFEXITED(st)) return "exit code " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st)) return std::string("killed by signal ") + std::to_string(WTERMSIG(st)) + " (" + ::strsignal(WTERMSIG(st)) + ")";
    return "status " + std::to_string(st);
}

char lower(char ch) { return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch; }

// HA_RSCTMP (and its missing parents) as 0755 directories; warns once per directory it cannot make.
void ensure_rsctmp(const std::string& dir) {
    static std::set<std::string> warned;
    if (dir.empty() || dir[0] != '/') return;
    for (size_t pos = 1;; ++pos) {
        pos = dir.find('/', pos);
        std::string part = dir.substr(0, pos);
        if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
            if (warned.insert(dir).second)
                log::warning("cannot create " + part + " (HA_RSCTMP for agents): " + std::strerror(errno));
            return;
        }
        if (pos == std::string::npos) return;
    }
}

// A pipe whose ends are >= 3 (so that dup2 onto 0..2 in the child cannot clobber one another),
// close-on-exec, the read end non-blocking.
bool make_pipe(Fd& r, Fd& w, int& err) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        err = errno;
        return false;
    }
    Fd ends[2] = {Fd(fds[0]), Fd(fds[1])};
    for (auto& e : ends) {
        if (e.get() < 3) {
            int moved = ::fcntl(e.get(), F_DUPFD_CLOEXEC, 3);
            if (moved < 0) {
                err = errno;
                return false;
            }
            e.reset(moved);
        }
    }
    int fl = ::fcntl(ends[0].get(), F_GETFL);
    if (fl < 0 || ::fcntl(ends[0].get(), F_SETFL, fl | O_NONBLOCK) != 0) {
        err = errno;
        return false;
    }
    r = std::move(ends[0]);
    w = std::move(ends[1]);
    return true;
}

// Exit code -> OCF return code, per convention.
int normalise(Convention conv, Action act, int code, bool says_running, const std::string& instance) {
    switch (conv) {
    case Convention::Ocf:
        return code;
    case Convention::Heartbeat:
        if (act == Action::Monitor) return code == 0 && says_running ? ocf::kSuccess : ocf::kNotRunning;
        return code == 0 ? ocf::kSuccess : ocf::kErrGeneric;
    case Convention::Lsb:
        if (act == Action::Monitor) {
            switch (code) {
            case 0: return ocf::kSuccess;
            case 3: return ocf::kNotRunning;
            case 1:
                log::notice(instance + ": status 1: the program is dead but its pid file exists (counted as not running)");
                return ocf::kNotRunning;
            case 2:
                log::notice(instance + ": status 2: the program is dead but its lock file exists (counted as not running)");
                return ocf::kNotRunning;
            case 4:
                log::warning(instance + ": status 4: the init script cannot tell whether it is running (counted as an error)");
                return ocf::kErrGeneric;
            default:
                log::warning(instance + ": status exited with " + std::to_string(code) +
                             ", which is not an LSB status code (counted as an error)");
                return ocf::kErrGeneric;
            }
        }
        if (code == 0) return ocf::kSuccess;
        if (act == Action::Stop && code == 7) {
            log::info(instance + ": stop exited with 7 (program is not running): counted as stopped");
            return ocf::kSuccess;
        }
        if (code >= 1 && code <= 7) return code;  // LSB and OCF agree on 1..7 for start and stop
        return ocf::kErrGeneric;
    }
    return ocf::kErrGeneric;
}

}  // namespace

std::string Result::summary() const {
    std::string s;
    if (timed_out)
        s = "timed out after " + format_ms(elapsed) + " (rc " + std::to_string(rc) + ")";
    else
        s = std::string(rc_name(rc)) + " (rc " + std::to_string(rc) + ") in " + format_ms(elapsed);
    if (term_signal && !timed_out) s += ", killed by signal " + std::to_string(term_signal);
    std::string l = last_line(output);
    if (!l.empty()) s += ": " + l;
    return s;
}

// --- conventions -----------------------------------------------------------------------------

std::vector<std::string> command_line(const Agent& a, Action act) {
    if (a.convention == Convention::Ocf) return {a.path, std::string(to_string(act))};
    std::string verb;
    switch (act) {
    case Action::Start: verb = "start"; break;
    case Action::Stop: verb = "stop"; break;
    case Action::Monitor: verb = "status"; break;
    case Action::MetaData:
    case Action::ValidateAll: return {};
    }
    std::vector<std::string> argv{a.path};
    if (a.convention == Convention::Heartbeat) argv.insert(argv.end(), a.args.begin(), a.args.end());
    argv.push_back(verb);
    return argv;
}

std::vector<std::string> environment(const Agent& a, Action, milliseconds timeout, const std::string& instance,
                                     const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> vars;
    vars["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    vars["LC_ALL"] = "C";
    if (a.convention != Convention::Lsb) vars["HA_RSCTMP"] = kRscTmp;  // `extra` may name another
    for (const auto& [k, v] : extra) {
        if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos) {
            log::warning(instance + ": environment variable name " + printable(k) + " is not usable; not passed");
            continue;
        }
        vars[k] = v;
    }
    if (a.convention == Convention::Ocf) {
        vars["OCF_ROOT"] = a.ocf_root.empty() ? "/usr/lib/ocf" : a.ocf_root;
        vars["OCF_RA_VERSION_MAJOR"] = "1";
        vars["OCF_RA_VERSION_MINOR"] = "0";
        vars["OCF_RESOURCE_INSTANCE"] = instance;
        vars["OCF_RESOURCE_TYPE"] = a.type;
        vars["OCF_RESOURCE_PROVIDER"] = a.provider;
        for (const auto& [k, v] : a.params) vars["OCF_RESKEY_" + k] = v;
        vars["OCF_RESKEY_CRM_meta_timeout"] = std::to_string(timeout.count());
    }
    std::vector<std::string> env;
    env.reserve(vars.size());
    for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
    return env;
}

bool heartbeat_says_running(std::string_view text) {
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t eol = text.find('\n', pos);
        std::string_view line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        std::string prev, word;
        auto is_word = [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '\'';
        };
        for (size_t i = 0; i <= line.size(); ++i) {
            if (i < line.size() && is_word(line[i])) {
                word += lower(line[i]);
                continue;
            }
            if (word.empty()) continue;
            bool negated = prev == "not" || (prev.size() >= 3 && prev.compare(prev.size() - 3, 3, "n't") == 0);
            if ((word == "running" || word == "ok") && !negated) return true;
            prev = std::move(word);
            word.clear();
        }
        if (eol == std::string_view::npos) break;
        pos = eol + 1;
    }
    return false;
}

// --- Fd, Process -----------------------------------------------------------------------------

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
}

int Fd::release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
}

void Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

Process::Process(Process&& o) noexcept : pid_(o.pid_), reaped_(o.reaped_), out_(std::move(o.out_)), err_(std::move(o.err_)) {
    o.pid_ = -1;
    o.reaped_ = false;
}

Process& Process::operator=(Process&& o) noexcept {
    if (this != &o) {
        terminate();
        pid_ = o.pid_;
        reaped_ = o.reaped_;
        out_ = std::move(o.out_);
        err_ = std::move(o.err_);
        o.pid_ = -1;
        o.reaped_ = false;
    }
    return *this;
}

Process Process::spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, int& err,
                       std::string& error) {
    Process p;
    err = 0;
    if (argv.empty()) {
        err = EINVAL;
        error = "nothing to execute";
        return p;
    }
    Fd out_r, out_w, err_r, err_w;
    if (!make_pipe(out_r, out_w, err) || !make_pipe(err_r, err_w, err)) {
        error = "cannot create a pipe for " + argv[0] + ": " + std::strerror(err);
        return p;
    }

    struct Actions {
        posix_spawn_file_actions_t fa;
        Actions() { posix_spawn_file_actions_init(&fa); }
        ~Actions() { posix_spawn_file_actions_destroy(&fa); }
    } actions;
    struct Attr {
        posix_spawnattr_t at;
        Attr() { posix_spawnattr_init(&at); }
        ~Attr() { posix_spawnattr_destroy(&at); }
    } attr;

    int rc = posix_spawn_file_actions_adddup2(&actions.fa, out_w.get(), STDOUT_FILENO);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&actions.fa, err_w.get(), STDERR_FILENO);
    if (!rc) rc = posix_spawn_file_actions_addopen(&actions.fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&actions.fa, 3);
    if (!rc) rc = posix_spawn_file_actions_addchdir_np(&actions.fa, "/");
    sigset_t mask, defaults;
    sigemptyset(&mask);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr.at, &mask);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr.at, &defaults);
    if (!rc) rc = posix_spawnattr_setflags(&attr.at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc) {
        err = rc;
        error = "cannot prepare to execute " + argv[0] + ": " + std::strerror(rc);
        return p;
    }

    std::vector<char*> av, ev;
    for (const auto& s : argv) av.push_back(const_cast<char*>(s.c_str()));
    av.push_back(nullptr);
    for (const auto& s : env) ev.push_back(const_cast<char*>(s.c_str()));
    ev.push_back(nullptr);

    pid_t pid = -1;
    rc = ::posix_spawn(&pid, argv[0].c_str(), &actions.fa, &attr.at, av.data(), ev.data());
    if (rc) {
        err = rc;
        error = "cannot execute " + argv[0] + ": " + std::strerror(rc);
        return p;
    }
    p.pid_ = pid;
    p.out_ = std::move(out_r);
    p.err_ = std::move(err_r);
    return p;
}

void Process::kill_group() {
    if (!owns()) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);  // in case it left its process group
}

void Process::terminate() {
    if (!owns()) return;
    kill_group();
    auto deadline = steady_clock::now() + std::chrono::seconds(2);
    while (true) {
        int st = 0;
        pid_t w = ::waitpid(pid_, &st, WNOHANG);
        if (w == pid_ || (w < 0 && errno == ECHILD)) break;
        if (w < 0 && errno != EINTR) break;
        if (steady_clock::now() >= deadline) {
            log::warning("process " + std::to_string(pid_) + " did not exit within 2 s of SIGKILL; leaving it");
            break;
        }
        std::this_thread::sleep_for(milliseconds(5));
    }
    reaped_ = true;
}

// --- run_sync ---------------------------------------------------------------------------------

SyncResult run_sync(const std::vector<std::string>& argv, const std::vector<std::string>& env, milliseconds timeout,
                    size_t max_output) {
    SyncResult res;
    int e = 0;
    Process p = Process::spawn(argv, env, e, res.error);
    if (!p.owns()) return res;
    res.started = true;
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid(), 0)));

    // Reads what is there now; false at end of file (the descriptor is then closed).
    auto read_now = [&](Fd& fd, std::string& into) {
        char buf[4096];
        while (fd) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n > 0) {
                size_t keep = std::min(static_cast<size_t>(n), max_output - std::min(max_output, into.size()));
                into.append(buf, keep);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            fd.reset();
        }
    };

    const auto deadline = steady_clock::now() + timeout;
    int status = 0;
    while (true) {
        pid_t w = ::waitpid(p.pid(), &status, WNOHANG);
        if (w == p.pid()) {
            p.reaped();
            read_now(p.out(), res.out);  // what it wrote before exiting; not what it left behind may write
            read_now(p.err(), res.err);
            break;
        }
        auto now = steady_clock::now();
        if (now >= deadline) {
            res.timed_out = true;
            p.terminate();
            return res;
        }
        pollfd fds[3];
        nfds_t n = 0;
        if (p.out()) fds[n++] = pollfd{p.out().get(), POLLIN, 0};
        if (p.err()) fds[n++] = pollfd{p.err().get(), POLLIN, 0};
        if (pidfd) fds[n++] = pollfd{pidfd.get(), POLLIN, 0};
        auto left = std::chrono::duration_cast<milliseconds>(deadline - now).count() + 1;
        int wait_ms = static_cast<int>(std::min<long long>(left, pidfd ? 60000 : 20));
        if (::poll(fds, n, wait_ms) < 0 && errno != EINTR) {
            res.error = std::string("poll: ") + std::strerror(errno);
            return res;
        }
        read_now(p.out(), res.out);
        read_now(p.err(), res.err);
    }
    if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) res.term_signal = WTERMSIG(status);
    return res;
}

// --- Runner -----------------------------------------------------------------------------------

struct Runner::Child {
    explicit Child(asio::io_context& io) : out(io), err(io), timer(io) {}
    uint64_t seq = 0;
    Process proc;
    std::string instance;
    Action action = Action::Monitor;
    Convention convention = Convention::Ocf;
    steady_clock::time_point started;
    milliseconds timeout{0};
    asio::posix::stream_descriptor out, err;
    std::string out_partial, err_partial;
    asio::steady_timer timer;
    bool timed_out = false, exited = false, completed = false, detached = false;
    int status = 0;
    std::string tail;
    size_t logged = 0, dropped = 0, dropped_noted = 0;
    bool says_running = false;  // Heartbeat status: a stdout line said "running" or "OK"
    std::function<void(Result)> done;
    std::string what() const { return instance + ": " + std::string(to_string(action)); }
};

namespace {
constexpr size_t kMaxLine = 2048;      // longer lines are logged in pieces
constexpr size_t kMaxLingering = 32;   // completed actions whose output pipes are still held open
constexpr size_t kReadBurst = 64 * 1024;
constexpr size_t kDrainLimit = 1 << 20;
constexpr auto kKillGrace = std::chrono::seconds(2);
}  // namespace

Runner::Runner(asio::io_context& io) : io_(io), sigchld_(io), alive_(std::make_shared<bool>(true)) {
    if (instance_) throw std::logic_error("a resources::Runner already exists: it owns SIGCHLD for the whole process");
    sigchld_.add(SIGCHLD);
    // Asio installs its handler without SA_RESTART; agents exiting must not interrupt slow system
    // calls elsewhere in the daemon. Stopped children need no notice either.
    struct sigaction sa {};
    if (::sigaction(SIGCHLD, nullptr, &sa) == 0) {
        sa.sa_flags |= SA_RESTART | SA_NOCLDSTOP;
        ::sigaction(SIGCHLD, &sa, nullptr);
    }
    instance_ = this;
    wait_sigchld();
    // Children that exited before we listened for SIGCHLD.
    asio::post(io_, [this, alive = alive_] {
        if (*alive) reap();
    });
}

Runner::~Runner() {
    *alive_ = false;
    boost::system::error_code ec;
    sigchld_.cancel(ec);
    size_t killed = 0;
    for (auto& [pid, c] : children_) {
        c->detached = true;
        c->timer.cancel();
        c->out.close(ec);
        c->err.close(ec);
        if (!c->completed) {
            ++killed;
            log::notice(c->what() + ": still running at shutdown; killing its process group (pid " + std::to_string(pid) + ")");
        }
        c->proc.kill_group();
    }
    for (auto& [pid, c] : children_) c->proc.terminate();
    for (auto& [seq, c] : lingering_) {
        c->detached = true;
        c->out.close(ec);
        c->err.close(ec);
    }
    if (instance_ == this) instance_ = nullptr;
}

size_t Runner::running() const {
    size_t n = 0;
    for (const auto& [pid, c] : children_)
        if (!c->completed) ++n;
    return n;
}

void Runner::post_result(std::function<void(Result)> done, Result r) {
    asio::post(io_, [alive = alive_, done = std::move(done), r = std::move(r)]() mutable {
        if (*alive && done) done(std::move(r));
    });
}

void Runner::run(const Agent& a, Action act, milliseconds timeout, const std::string& instance,
                 std::map<std::string, std::string> env, std::function<void(Result)> done) {
    if (timeout.count() <= 0) throw std::invalid_argument("resources::Runner::run: the timeout must be positive");
    const std::string what = instance + ": " + std::string(to_string(act));
    auto argv = command_line(a, act);
    if (argv.empty()) {
        Result r;
        r.rc = ocf::kErrUnimplemented;
        r.output = std::string(kRunnerNote) + std::string(to_string(act)) + " is not an action of " +
                   std::string(to_string(a.convention)) + " agents\n";
        post_result(std::move(done), std::move(r));
        return;
    }
    if (a.convention != Convention::Lsb) {
        auto it = env.find("HA_RSCTMP");
        ensure_rsctmp(it != env.end() ? it->second : std::string(kRscTmp));
    }
    int e = 0;
    std::string error;
    Process p = Process::spawn(argv, environment(a, act, timeout, instance, env), e, error);
    if (!p.owns()) {
        log::error(what + ": " + error);
        Result r;
        bool missing = e == ENOENT || e == ENOTDIR || e == EACCES || e == ENOEXEC || e == ELOOP || e == EISDIR;
        r.rc = missing ? ocf::kErrInstalled : ocf::kErrGeneric;
        r.output = std::string(kRunnerNote) + error + "\n";
        post_result(std::move(done), std::move(r));
        return;
    }
    auto c = std::make_shared<Child>(io_);
    c->seq = next_seq_++;
    c->instance = instance;
    c->action = act;
    c->convention = a.convention;
    c->started = steady_clock::now();
    c->timeout = timeout;
    c->done = std::move(done);
    const pid_t pid = p.pid();
    c->out.assign(p.out().get());
    p.out().release();
    c->err.assign(p.err().get());
    p.err().release();
    c->proc = std::move(p);
    children_[pid] = c;

    std::string cmd;
    for (const auto& s : argv) cmd += (cmd.empty() ? "" : " ") + s;
    log::debug(what + ": running " + cmd + " (pid " + std::to_string(pid) + ", timeout " + format_ms(timeout) + ")");

    c->timer.expires_after(timeout);
    c->timer.async_wait([this, c](const boost::system::error_code& ec) {
        if (ec || c->detached) return;
        on_timeout(c);
    });
    read(c, false);
    read(c, true);
}

void Runner::wait_sigchld() {
    sigchld_.async_wait([this, alive = alive_](const boost::system::error_code& ec, int) {
        if (ec || !*alive) return;
        reap();
        wait_sigchld();
    });
}

void Runner::reap() {
    while (true) {
        int st = 0;
        pid_t pid = ::waitpid(-1, &st, WNOHANG);
        if (pid == 0) return;
        if (pid < 0) {
            if (errno == EINTR) continue;
            return;  // ECHILD: no children at all
        }
        auto it = children_.find(pid);
        if (it == children_.end()) {
            ++orphans_;
            log::debug("reaped adopted process " + std::to_string(pid) + " (" + describe_status(st) + ")");
            continue;
        }
        auto c = it->second;
        children_.erase(it);
        c->proc.reaped();
        c->exited = true;
        c->status = st;
        if (c->completed) {
            log::info(c->what() + ": process " + std::to_string(pid) + " finally exited (" + describe_status(st) + ")");
            continue;
        }
        complete(c);
    }
}

void Runner::on_timeout(const std::shared_ptr<Child>& c) {
    if (c->completed || c->exited) return;
    c->timed_out = true;
    c->proc.kill_group();
    log::warning(c->what() + ": timed out after " + format_ms(c->timeout) + "; killed its process group (pid " +
                 std::to_string(c->proc.pid()) + ")");
    // Completes when the kill is reaped; a process stuck in the kernel may not die at once.
    c->timer.expires_after(kKillGrace);
    c->timer.async_wait([this, c](const boost::system::error_code& ec) {
        if (ec || c->detached || c->completed) return;
        log::error(c->what() + ": process " + std::to_string(c->proc.pid()) + " has not exited " + format_ms(kKillGrace) +
                   " after SIGKILL (stuck in the kernel?); reporting the action as failed now");
        complete(c);
    });
}

void Runner::read(const std::shared_ptr<Child>& c, bool err) {
    auto& sd = err ? c->err : c->out;
    if (!sd.is_open()) return;
    sd.async_wait(asio::posix::descriptor_base::wait_read, [this, c, err](const boost::system::error_code& ec) {
        if (c->detached || ec == asio::error::operation_aborted) return;
        auto& sd = err ? c->err : c->out;
        if (!sd.is_open()) return;
        size_t total = 0;
        char buf[4096];
        while (total < kReadBurst) {
            ssize_t n = ::read(sd.native_handle(), buf, sizeof buf);
            if (n > 0) {
                feed(*c, err, buf, static_cast<size_t>(n));
                total += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) break;
            if (n < 0) log::warning(c->what() + ": reading its output: " + std::strerror(errno));
            finish_pipe(c, err);
            return;
        }
        read(c, err);
    });
}

void Runner::drain(Child& c) {
    for (bool err : {false, true}) {
        auto& sd = err ? c.err : c.out;
        size_t total = 0;
        char buf[4096];
        while (sd.is_open() && total < kDrainLimit) {
            ssize_t n = ::read(sd.native_handle(), buf, sizeof buf);
            if (n > 0) {
                feed(c, err, buf, static_cast<size_t>(n));
                total += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) break;
            auto& partial = err ? c.err_partial : c.out_partial;
            if (!partial.empty()) line(c, err, partial);
            partial.clear();
            boost::system::error_code ec;
            sd.close(ec);
        }
    }
}

void Runner::finish_pipe(const std::shared_ptr<Child>& c, bool err) {
    auto& partial = err ? c->err_partial : c->out_partial;
    if (!partial.empty()) line(*c, err, partial);
    partial.clear();
    boost::system::error_code ec;
    (err ? c->err : c->out).close(ec);
    if (c->completed && !c->out.is_open() && !c->err.is_open()) {
        if (c->dropped > c->dropped_noted)
            log::info(c->instance + ": " + std::to_string(c->dropped - c->dropped_noted) +
                      " more lines of output not logged (at most " + std::to_string(kMaxLoggedLines) + " per action)");
        lingering_.erase(c->seq);
    }
}

void Runner::feed(Child& c, bool err, const char* data, size_t n) {
    if (!c.completed) {
        c.tail.append(data, n);
        if (c.tail.size() > 2 * kOutputTail) c.tail.erase(0, c.tail.size() - kOutputTail);
    }
    auto& partial = err ? c.err_partial : c.out_partial;
    std::string_view in(data, n);
    while (!in.empty()) {
        size_t nl = in.find('\n');
        size_t take = nl == std::string_view::npos ? in.size() : nl;
        size_t room = kMaxLine - partial.size();
        if (take >= room) {  // a very long line: log it in pieces
            partial.append(in.substr(0, room));
            line(c, err, partial);
            partial.clear();
            in.remove_prefix(room);
            continue;
        }
        partial.append(in.substr(0, take));
        if (nl == std::string_view::npos) break;
        line(c, err, partial);
        partial.clear();
        in.remove_prefix(nl + 1);
    }
}

void Runner::line(Child& c, bool err, std::string_view text) {
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (!err && !c.completed && c.convention == Convention::Heartbeat && c.action == Action::Monitor &&
        heartbeat_says_running(text))
        c.says_running = true;
    if (text.find_first_not_of(" \t") == std::string_view::npos) return;
    if (c.logged >= kMaxLoggedLines) {
        ++c.dropped;
        return;
    }
    ++c.logged;
    log::info(c.instance + ": " + printable(text), {{"DUET_RESOURCE", c.instance},
                                                     {"DUET_ACTION", std::string(to_string(c.action))},
                                                     {"DUET_STREAM", err ? "stderr" : "stdout"}});
}

void Runner::complete(const std::shared_ptr<Child>& c) {
    if (c->completed) return;
    drain(*c);  // what it wrote before it exited is in the pipes now
    for (bool err : {false, true}) {  // a last line without a newline
        auto& partial = err ? c->err_partial : c->out_partial;
        if (!partial.empty()) line(*c, err, partial);
        partial.clear();
    }
    c->completed = true;
    c->timer.cancel();

    Result r;
    r.elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - c->started);
    if (c->exited && WIFEXITED(c->status)) r.exit_code = WEXITSTATUS(c->status);
    if (c->exited && WIFSIGNALED(c->status)) r.term_signal = WTERMSIG(c->status);
    if (c->timed_out) {
        r.rc = ocf::kErrGeneric;
        r.timed_out = true;
    } else if (r.exit_code < 0) {
        r.rc = ocf::kErrGeneric;
    } else {
        r.rc = normalise(c->convention, c->action, r.exit_code, c->says_running, c->instance);
    }
    r.output = c->tail.size() > kOutputTail ? c->tail.substr(c->tail.size() - kOutputTail) : c->tail;
    if (c->tail.size() > kOutputTail) {  // drop the cut line at the front
        size_t nl = r.output.find('\n');
        if (nl != std::string::npos && nl + 1 < r.output.size()) r.output.erase(0, nl + 1);
    }
    c->tail.clear();
    c->tail.shrink_to_fit();

    if (c->dropped > 0) {
        log::info(c->instance + ": " + std::to_string(c->dropped) + " more lines of output not logged (at most " +
                  std::to_string(kMaxLoggedLines) + " per action)");
        c->dropped_noted = c->dropped;
    }
    std::string how = c->exited ? describe_status(c->status) : "not reaped";
    log::debug(c->what() + ": " + r.summary() + " [" + how + "]");

    boost::system::error_code ec;
    if (c->timed_out || !c->exited) {
        c->out.close(ec);
        c->err.close(ec);
    } else if (c->out.is_open() || c->err.is_open()) {
        // Something it started still holds its stdout or stderr: keep reading (and logging) until
        // that closes, so that a daemon writing there is not killed by SIGPIPE.
        log::debug(c->what() + ": processes it left behind still hold its output; logging it as it comes");
        lingering_[c->seq] = c;
        if (lingering_.size() > kMaxLingering) {
            auto oldest = lingering_.begin()->second;
            log::notice(oldest->instance + ": no longer reading the output still held by processes its " +
                        std::string(to_string(oldest->action)) + " left behind (more than " +
                        std::to_string(kMaxLingering) + " such pipes); they will get EPIPE if they write");
            oldest->detached = true;
            oldest->out.close(ec);
            oldest->err.close(ec);
            lingering_.erase(lingering_.begin());
        }
    }
    post_result(std::move(c->done), std::move(r));
}

}  // namespace duet::resources
