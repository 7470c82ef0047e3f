// The agent runner: runs one action of one agent as a child process, asynchronously on the
// io_context, with a timeout, its output captured and logged, and its exit code normalised to
// OCF return codes whatever the agent's convention. The runner also reaps every child of the
// daemon (duetd is a child subreaper, so daemons started by agents come back to it when they
// exit). See docs/resources.md.
#pragma once

#include "daemon/resources/agent.hpp"
#include "daemon/util/asio.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace duet::resources {

enum class Action { Start, Stop, Monitor, MetaData, ValidateAll };
std::string_view to_string(Action a);  // "start", "stop", "monitor", "meta-data", "validate-all"

// OCF return codes.
namespace ocf {
inline constexpr int kSuccess = 0;
inline constexpr int kErrGeneric = 1;
inline constexpr int kErrArgs = 2;
inline constexpr int kErrUnimplemented = 3;
inline constexpr int kErrPerm = 4;
inline constexpr int kErrInstalled = 5;
inline constexpr int kErrConfigured = 6;
inline constexpr int kNotRunning = 7;
inline constexpr int kRunningPromoted = 8;
inline constexpr int kFailedPromoted = 9;
}  // namespace ocf
std::string_view rc_name(int rc);  // "success", "not running", ... ("rc 42" style names for others)

// The outcome of one action, normalised to OCF return codes.
struct Result {
    int rc = ocf::kErrGeneric;
    bool timed_out = false;
    std::chrono::milliseconds elapsed{0};
    std::string output;    // the last ~4 KiB of stdout and stderr, as they arrived
    int exit_code = -1;    // the agent's own exit code; -1 when it did not exit normally
    int term_signal = 0;   // the signal that ended it, if one did
    // "not running (rc 7) in 35 ms: smbd is not running"; "timed out after 2000 ms (rc 1)".
    std::string summary() const;
};

// Appended to the action's output when the runner itself has something to say (spawn failure,
// timeout, an unsupported action); the text after it is the runner's, not the agent's.
inline constexpr std::string_view kRunnerNote = "duetd: ";

// The command line of an action under the agent's convention; empty when the convention has no
// such action (meta-data and validate-all exist for OCF agents only).
std::vector<std::string> command_line(const Agent& a, Action act);

// The agent's whole environment ("NAME=value"): a fixed PATH, LC_ALL=C and (OCF and Heartbeat)
// HA_RSCTMP=kRscTmp, then `extra` (which may replace those), then the OCF variables, which it may
// not: OCF_ROOT, OCF_RA_VERSION_MAJOR/MINOR, OCF_RESOURCE_INSTANCE, OCF_RESOURCE_TYPE,
// OCF_RESOURCE_PROVIDER, OCF_RESKEY_<param> and OCF_RESKEY_CRM_meta_timeout. Nothing is inherited
// from duetd's own environment.
std::vector<std::string> environment(const Agent& a, Action act, std::chrono::milliseconds timeout,
                                     const std::string& instance, const std::map<std::string, std::string>& extra);

// Where agents keep their state between actions (HA_RSCTMP) unless `env` names another; the runner
// creates it (0755) when missing.
inline constexpr const char* kRscTmp = "/run/resource-agents";

// Heartbeat's status rule, as Duet applies it to stdout: true when a line contains the word
// "running" or "OK" (any case, as a whole word) not directly preceded by "not" or a "...n't" word.
bool heartbeat_says_running(std::string_view stdout_text);

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release();
    void reset(int fd = -1);
private:
    int fd_ = -1;
};

// A child process started in a session (and process group) of its own, stdin from /dev/null,
// stdout and stderr on two pipes, no other descriptor, working directory "/", default signal
// dispositions and an empty signal mask. Until reaped() is called the object owns the child:
// destroying it SIGKILLs the process group and reaps the child (waiting at most 2 s).
class Process {
public:
    Process() = default;
    Process(Process&& o) noexcept;
    Process& operator=(Process&& o) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process() { terminate(); }

    // argv[0] is the absolute path executed; env is the whole environment. On failure returns a
    // Process with no pid, and `err` (errno) and `error` (a sentence naming the path) are set.
    static Process spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, int& err,
                         std::string& error);

    pid_t pid() const { return pid_; }
    bool owns() const { return pid_ > 0 && !reaped_; }  // started and not yet reaped
    Fd& out() { return out_; }  // read ends of the child's stdout and stderr
    Fd& err() { return err_; }
    void kill_group();           // SIGKILL to the child's process group (if not yet reaped)
    void reaped() { reaped_ = true; }  // the caller collected the child's exit status
    void terminate();            // kill_group(), then reap the child, waiting at most 2 s
private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    Fd out_, err_;
};

// Runs argv synchronously, for start-up work such as meta-data: at most `timeout`, then the
// process group is killed. stdout and stderr are kept up to `max_output` bytes each.
struct SyncResult {
    bool started = false;
    std::string error;  // why it could not be started
    bool timed_out = false;
    int exit_code = -1;
    int term_signal = 0;
    std::string out, err;
};
SyncResult run_sync(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    std::chrono::milliseconds timeout, size_t max_output = 1 << 20);

// Runs agent actions on one io_context. There is at most one Runner per process: it owns SIGCHLD
// (every child of the process is reaped by it; a pid that is not one of its actions is an adopted
// orphan, reaped and logged at debug level). Constructing a second one throws std::logic_error.
class Runner {
public:
    explicit Runner(boost::asio::io_context& io);
    ~Runner();  // SIGKILLs the process group of every action still running and reaps it; their
                // callbacks are not called
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    // Starts `act` of `a` now. `done` is called exactly once, later, on the io thread (never from
    // within run()), unless the Runner is destroyed first. `instance` names the resource instance
    // (OCF_RESOURCE_INSTANCE, and the prefix of the agent's logged output: "IPaddr_198.51.100.20:
    // ..."); `env` adds variables (see environment()). `timeout` must be positive: when it
    // expires, the agent's whole process group is SIGKILLed and the action fails (rc 1,
    // timed_out). The action completes when the agent exits, even if processes it left behind
    // still hold its output pipes (their later output is still logged, within the line cap).
    void run(const Agent& a, Action act, std::chrono::milliseconds timeout, const std::string& instance,
             std::map<std::string, std::string> env, std::function<void(Result)> done);

    size_t running() const;                         // actions started and not completed
    uint64_t orphans_reaped() const { return orphans_; }  // adopted processes reaped so far

    static constexpr size_t kMaxLoggedLines = 200;  // output lines logged per action
    static constexpr size_t kOutputTail = 4096;     // bytes of output kept in Result::output

private:
    struct Child;
    void reap();
    void wait_sigchld();
    void on_timeout(const std::shared_ptr<Child>& c);
    void complete(const std::shared_ptr<Child>& c);
    void read(const std::shared_ptr<Child>& c, bool err);
    void feed(Child& c, bool err, const char* data, size_t n);
    void line(Child& c, bool err, std::string_view text);
    void drain(Child& c);
    void finish_pipe(const std::shared_ptr<Child>& c, bool err);
    void post_result(std::function<void(Result)> done, Result r);

    boost::asio::io_context& io_;
    boost::asio::signal_set sigchld_;
    std::shared_ptr<bool> alive_;
    std::map<pid_t, std::shared_ptr<Child>> children_;  // not yet reaped
    std::map<uint64_t, std::shared_ptr<Child>> lingering_;  // completed; output pipes still open
    uint64_t next_seq_ = 1;
    uint64_t orphans_ = 0;
    static inline Runner* instance_ = nullptr;
};

}  // namespace duet::resources
