// The agent runner with real processes: conventions, exit-code mapping, timeouts and process
// groups, daemonising agents, output capture, orphans, concurrency.
#include "daemon/resources/runner.hpp"

#include "daemon/util/log.hpp"
#include "tests/unit/resources/helpers.hpp"

#include <sys/prctl.h>

#include <gtest/gtest.h>

#include <optional>

namespace duet::resources {
namespace {

using namespace duet::resources::test;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
namespace asio = boost::asio;

// Like duetd: a child subreaper (daemons started by agents come back to us), SIGPIPE ignored,
// debug logging on.
class DaemonLikeProcess : public ::testing::Environment {
public:
    void SetUp() override {
        ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        ::signal(SIGPIPE, SIG_IGN);
        log::init("test_resources", true);
    }
};
[[maybe_unused]] ::testing::Environment* const daemon_like = ::testing::AddGlobalTestEnvironment(new DaemonLikeProcess);

class RunnerTest : public ::testing::Test {
protected:
    asio::io_context io;
    std::optional<Runner> runner;
    TempDir dir;
    std::vector<pid_t> to_kill;  // processes agents left behind, killed in TearDown

    void SetUp() override { runner.emplace(io); }
    void TearDown() override {
        runner.reset();
        for (pid_t p : to_kill) kill_pid(p);
    }

    Agent agent(const std::string& path, Convention conv) {
        Agent a;
        a.path = path;
        a.name = a.type = std::filesystem::path(path).filename().string();
        a.convention = conv;
        if (conv == Convention::Ocf) {
            a.provider = "duet";
            a.ocf_root = "/usr/lib/ocf";
        }
        return a;
    }
    Agent script(const std::string& name, const std::string& body, Convention conv = Convention::Ocf) {
        write_script(dir / name, body);
        return agent(dir / name, conv);
    }

    Result run(const Agent& a, Action act, milliseconds timeout = milliseconds(10000), const std::string& instance = "inst",
               std::map<std::string, std::string> env = {}) {
        struct Got {
            std::optional<Result> r;
            int calls = 0;
        };
        auto got = std::make_shared<Got>();  // outlives this call if the action never completes
        runner->run(a, act, timeout, instance, std::move(env), [got](Result x) {
            ++got->calls;
            got->r = std::move(x);
        });
        EXPECT_EQ(got->calls, 0) << "done was called from within run()";
        pump_until([&] { return got->r.has_value(); });
        EXPECT_TRUE(got->r) << "the action did not complete";
        EXPECT_EQ(got->calls, 1);
        return got->r.value_or(Result{});
    }

    template <class Pred>
    bool pump_until(Pred pred, milliseconds limit = milliseconds(60000)) {
        auto end = steady_clock::now() + limit;
        while (!pred() && steady_clock::now() < end) {
            io.restart();
            io.run_one_for(milliseconds(50));
        }
        return pred();
    }
    void pump_for(milliseconds d) {
        auto end = steady_clock::now() + d;
        while (steady_clock::now() < end) {
            io.restart();
            io.run_one_for(milliseconds(20));
        }
    }
};

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text))
        if (l == line) return true;
    return false;
}

TEST_F(RunnerTest, OcfCommandLineEnvironmentAndProcessSetup) {
    const std::string d = dir / "dump";
    const std::string sentinel = dir / "sentinel";
    int leak = ::open(sentinel.c_str(), O_CREAT | O_RDWR, 0600);  // no O_CLOEXEC: the runner must close it anyway
    ASSERT_GE(leak, 0);
    ::setenv("DUET_TEST_LEAK", "1", 1);
    Agent a = script("IPaddr",
                     "printf '%s\\n' \"$0\" \"$@\" > '" + d + ".argv'\n"
                     "env > '" + d + ".env'\n"
                     "pwd > '" + d + ".cwd'\n"
                     "readlink /proc/$$/fd/0 > '" + d + ".stdin'\n"
                     "for f in /proc/$$/fd/*; do readlink \"$f\"; done > '" + d + ".fds'\n"
                     "cat /proc/$$/stat > '" + d + ".stat'\n"
                     "grep SigIgn /proc/$$/status > '" + d + ".sig'\n"
                     "echo hello from the agent\n"
                     "echo a warning >&2\n");
    a.params = {{"ip", "198.51.100.20"}, {"cidr_netmask", "24"}};
    StderrCapture log(dir / "log");
    Result r = run(a, Action::Start, milliseconds(5000), "IPaddr_198.51.100.20", {{"DUET_GROUP", "web"}});
    log.restore();
    ::close(leak);
    ::unsetenv("DUET_TEST_LEAK");

    EXPECT_EQ(r.rc, 0) << r.summary();
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("hello from the agent\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("a warning\n"), std::string::npos) << r.output;
    EXPECT_EQ(lines_of(read_file(d + ".argv")), (std::vector<std::string>{a.path, "start"}));

    std::string env = read_file(d + ".env");
    for (auto want : {"OCF_ROOT=/usr/lib/ocf", "OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=0",
                      "OCF_RESOURCE_INSTANCE=IPaddr_198.51.100.20", "OCF_RESOURCE_TYPE=IPaddr", "OCF_RESOURCE_PROVIDER=duet",
                      "OCF_RESKEY_ip=198.51.100.20", "OCF_RESKEY_cidr_netmask=24", "OCF_RESKEY_CRM_meta_timeout=5000",
                      "HA_RSCTMP=/run/resource-agents", "DUET_GROUP=web", "LC_ALL=C",
                      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
        EXPECT_TRUE(has_line(env, want)) << want << " missing from:\n" << env;
    EXPECT_EQ(env.find("DUET_TEST_LEAK"), std::string::npos) << "duetd's own environment leaked:\n" << env;
    struct stat st {};
    ASSERT_EQ(::stat(kRscTmp, &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));

    EXPECT_EQ(read_file(d + ".cwd"), "/\n");
    EXPECT_EQ(read_file(d + ".stdin"), "/dev/null\n");
    std::string fds = read_file(d + ".fds");
    EXPECT_EQ(fds.find(sentinel), std::string::npos) << "an fd of duetd leaked into the agent:\n" << fds;

    // Its own session and process group.
    std::string stat_text = read_file(d + ".stat");
    auto agent_pid = std::stol(stat_text);
    std::istringstream in(stat_text.substr(stat_text.rfind(')') + 2));
    std::string state, ppid, pgrp, session;
    in >> state >> ppid >> pgrp >> session;
    EXPECT_EQ(std::stol(pgrp), agent_pid);
    EXPECT_EQ(std::stol(session), agent_pid);

    // Default signal dispositions: SIGPIPE is not ignored even though this process ignores it.
    std::string sig = read_file(d + ".sig");
    unsigned long long ignored = std::stoull(sig.substr(sig.find(':') + 1), nullptr, 16);
    EXPECT_EQ(ignored & (1ull << (SIGPIPE - 1)), 0u) << sig;

    std::string logged = log.text();
    EXPECT_NE(logged.find("IPaddr_198.51.100.20: hello from the agent\n"), std::string::npos) << logged;
    EXPECT_NE(logged.find("IPaddr_198.51.100.20: a warning\n"), std::string::npos) << logged;
}

TEST_F(RunnerTest, ExtraEnvironmentMayMoveHaRsctmpButNotChangeOcfVariables) {
    const std::string d = dir / "dump";
    Agent a = script("Thing", "env > '" + d + ".env'\n[ -d \"$HA_RSCTMP\" ] || exit 1\n");
    a.params = {{"ip", "198.51.100.20"}};
    const std::string state = dir / "node1/agents";
    Result r = run(a, Action::Start, milliseconds(5000), "Thing_1",
                   {{"HA_RSCTMP", state}, {"OCF_RESKEY_ip", "203.0.113.9"}, {"OCF_RESOURCE_INSTANCE", "other"}});
    EXPECT_EQ(r.rc, 0) << r.summary();
    std::string env = read_file(d + ".env");
    EXPECT_TRUE(has_line(env, "HA_RSCTMP=" + state)) << env;
    EXPECT_TRUE(has_line(env, "OCF_RESKEY_ip=198.51.100.20")) << env;
    EXPECT_TRUE(has_line(env, "OCF_RESOURCE_INSTANCE=Thing_1")) << env;
    struct stat st {};
    ASSERT_EQ(::stat(state.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(RunnerTest, HeartbeatCommandLine) {
    const std::string d = dir / "dump";
    Agent a = script("drbddisk",
                     "printf '%s\\n' \"$0\" \"$@\" > '" + d + ".argv'\n"
                     "env > '" + d + ".env'\n"
                     "echo running\n",
                     Convention::Heartbeat);
    a.args = {"r0", "with space"};
    EXPECT_EQ(run(a, Action::Start).rc, 0);
    EXPECT_EQ(lines_of(read_file(d + ".argv")), (std::vector<std::string>{a.path, "r0", "with space", "start"}));
    std::string env = read_file(d + ".env");
    EXPECT_EQ(env.find("OCF_"), std::string::npos) << env;
    EXPECT_TRUE(has_line(env, "HA_RSCTMP=/run/resource-agents")) << env;

    EXPECT_EQ(run(a, Action::Monitor).rc, 0);
    EXPECT_EQ(lines_of(read_file(d + ".argv")), (std::vector<std::string>{a.path, "r0", "with space", "status"}));
    EXPECT_EQ(run(a, Action::Stop).rc, 0);
    EXPECT_EQ(lines_of(read_file(d + ".argv")).back(), "stop");

    std::filesystem::remove(d + ".argv");
    for (Action act : {Action::MetaData, Action::ValidateAll}) {
        Result r = run(a, act);
        EXPECT_EQ(r.rc, ocf::kErrUnimplemented);
        EXPECT_NE(r.output.find("is not an action of heartbeat agents"), std::string::npos) << r.output;
    }
    EXPECT_FALSE(std::filesystem::exists(d + ".argv")) << "the script ran for an action it does not have";
}

TEST_F(RunnerTest, LsbCommandLine) {
    const std::string d = dir / "dump";
    Agent a = script("samba",
                     "printf '%s\\n' \"$0\" \"$@\" > '" + d + ".argv'\n"
                     "env > '" + d + ".env'\n",
                     Convention::Lsb);
    EXPECT_EQ(run(a, Action::Monitor).rc, 0);
    EXPECT_EQ(lines_of(read_file(d + ".argv")), (std::vector<std::string>{a.path, "status"}));
    EXPECT_EQ(run(a, Action::Stop).rc, 0);
    EXPECT_EQ(lines_of(read_file(d + ".argv")), (std::vector<std::string>{a.path, "stop"}));
    std::string env = read_file(d + ".env");
    EXPECT_EQ(env.find("OCF_"), std::string::npos) << env;
    EXPECT_EQ(env.find("HA_RSCTMP"), std::string::npos) << env;
    EXPECT_EQ(run(a, Action::MetaData).rc, ocf::kErrUnimplemented);
}

// The script prints $OUT on stdout, $ERR on stderr and exits with $CODE.
const char* kEcho = "[ -n \"$OUT\" ] && printf '%s\\n' \"$OUT\"\n[ -n \"$ERR\" ] && printf '%s\\n' \"$ERR\" >&2\nexit \"$CODE\"\n";

TEST_F(RunnerTest, HeartbeatStatusNeedsExitZeroAndRunningOrOk) {
    Agent a = script("hb", kEcho, Convention::Heartbeat);
    struct Case {
        const char* out;
        const char* err;
        int code;
        int rc;
    } cases[] = {
        {"running", "", 0, 0},
        {"smbd (pid 1234) is Running...", "", 0, 0},
        {"[ OK ]", "", 0, 0},
        {"status: ok", "", 0, 0},
        {"running (Primary)", "", 0, 0},
        {"stopped (Secondary)", "", 0, 7},
        {"", "", 0, 7},
        {"running", "", 3, 7},           // the exit code must say so too
        {"smbd is not running", "", 0, 7},
        {"smbd isn't running", "", 0, 7},
        {"broken", "", 0, 7},             // "ok" as a word only
        {"runningish", "", 0, 7},
        {"", "running", 0, 7},           // stdout only
        {"not running\nbut OK", "", 0, 0},  // any line may say it
    };
    for (const auto& c : cases) {
        Result r = run(a, Action::Monitor, milliseconds(5000), "hb",
                       {{"OUT", c.out}, {"ERR", c.err}, {"CODE", std::to_string(c.code)}});
        EXPECT_EQ(r.rc, c.rc) << "stdout '" << c.out << "' stderr '" << c.err << "' exit " << c.code << ": " << r.summary();
        EXPECT_EQ(r.exit_code, c.code);
    }
    for (Action act : {Action::Start, Action::Stop}) {
        EXPECT_EQ(run(a, act, milliseconds(5000), "hb", {{"CODE", "0"}}).rc, 0);
        EXPECT_EQ(run(a, act, milliseconds(5000), "hb", {{"CODE", "5"}}).rc, 1);
        EXPECT_EQ(run(a, act, milliseconds(5000), "hb", {{"CODE", "1"}}).rc, 1);
    }
}

TEST(HeartbeatSaysRunning, Words) {
    EXPECT_TRUE(heartbeat_says_running("foo is running"));
    EXPECT_TRUE(heartbeat_says_running("RUNNING"));
    EXPECT_TRUE(heartbeat_says_running("x\n[  OK  ]\n"));
    EXPECT_FALSE(heartbeat_says_running("foo is not running"));
    EXPECT_FALSE(heartbeat_says_running("NOT OK"));
    EXPECT_FALSE(heartbeat_says_running("it isn't running"));
    EXPECT_FALSE(heartbeat_says_running("token"));
    EXPECT_FALSE(heartbeat_says_running("stopped"));
    EXPECT_FALSE(heartbeat_says_running(""));
}

TEST_F(RunnerTest, LsbExitCodes) {
    Agent a = script("initscript", kEcho, Convention::Lsb);
    struct Case {
        Action act;
        int code;
        int rc;
    } cases[] = {
        {Action::Monitor, 0, 0}, {Action::Monitor, 3, 7}, {Action::Monitor, 1, 7}, {Action::Monitor, 2, 7},
        {Action::Monitor, 4, 1}, {Action::Monitor, 150, 1},
        {Action::Start, 0, 0},   {Action::Start, 1, 1},   {Action::Start, 5, 5},   {Action::Start, 6, 6},
        {Action::Start, 150, 1},
        {Action::Stop, 0, 0},    {Action::Stop, 7, 0},    {Action::Stop, 1, 1},    {Action::Stop, 4, 4},
    };
    for (const auto& c : cases) {
        Result r = run(a, c.act, milliseconds(5000), "lsb", {{"CODE", std::to_string(c.code)}});
        EXPECT_EQ(r.rc, c.rc) << to_string(c.act) << " exit " << c.code << ": " << r.summary();
    }
}

TEST_F(RunnerTest, OcfExitCodesPassThroughAndSignalsFail) {
    Agent a = script("ocfagent", kEcho);
    for (int code : {0, 1, 2, 5, 6, 7, 8, 9})
        EXPECT_EQ(run(a, Action::Monitor, milliseconds(5000), "ocf", {{"CODE", std::to_string(code)}}).rc, code);

    Agent killed = script("killed", "echo about to die\nkill -TERM $$\nsleep 5\n");
    Result r = run(killed, Action::Monitor);
    EXPECT_EQ(r.rc, ocf::kErrGeneric);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, -1);
    EXPECT_EQ(r.term_signal, SIGTERM);
    EXPECT_NE(r.summary().find("generic error (rc 1) in "), std::string::npos) << r.summary();
    EXPECT_NE(r.summary().find("killed by signal 15: about to die"), std::string::npos) << r.summary();
}

TEST_F(RunnerTest, TimeoutKillsTheWholeProcessGroup) {
    const std::string pids = dir / "pids";
    Agent a = script("slow", "sleep 1000 &\necho $! $$ > '" + pids + "'\necho started\nwait\n");
    const milliseconds timeout(600);
    auto begin = steady_clock::now();
    Result r = run(a, Action::Start, timeout, "slow");
    auto took = steady_clock::now() - begin;
    std::istringstream in(read_file(pids));
    pid_t sleeper = 0, agent_pid = 0;
    in >> sleeper >> agent_pid;
    ASSERT_GT(sleeper, 0);
    ASSERT_GT(agent_pid, 0);
    to_kill = {sleeper, agent_pid};

    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.rc, ocf::kErrGeneric);
    EXPECT_GE(r.elapsed, timeout);
    EXPECT_LT(took, 3 * timeout);
    EXPECT_EQ(r.term_signal, SIGKILL);
    EXPECT_NE(r.output.find("started"), std::string::npos);
    EXPECT_NE(r.summary().find("timed out after"), std::string::npos) << r.summary();
    EXPECT_FALSE(alive(agent_pid));
    EXPECT_TRUE(wait_until([&] { return !alive(sleeper); }, milliseconds(1000))) << "the grandchild survived the timeout";
    EXPECT_EQ(runner->running(), 0u);
}

TEST_F(RunnerTest, DaemonisingAgentCompletesAndItsDaemonKeepsRunning) {
    const std::string pidfile = dir / "daemon.pid";
    Agent a = script("daemonise",
                     "setsid sleep 1000 > /dev/null 2>&1 < /dev/null &\n"
                     "echo $! > '" + pidfile + "'\n"
                     "echo daemon started\n"
                     "exit 0\n");
    auto begin = steady_clock::now();
    Result r = run(a, Action::Start, milliseconds(20000), "daemon");
    auto took = steady_clock::now() - begin;
    pid_t daemon = read_pid(pidfile);
    ASSERT_GT(daemon, 0);
    to_kill.push_back(daemon);
    EXPECT_EQ(r.rc, 0) << r.summary();
    EXPECT_FALSE(r.timed_out);
    EXPECT_LT(took, milliseconds(5000)) << "did not complete promptly";
    EXPECT_EQ(r.output, "daemon started\n");
    pump_for(milliseconds(200));
    EXPECT_TRUE(alive(daemon));
    EXPECT_EQ(runner->running(), 0u);
}

TEST_F(RunnerTest, GrandchildHoldingThePipeDoesNotHoldTheAction) {
    const std::string pidfile = dir / "holder.pid";
    Agent a = script("holder",
                     "( sleep 0.4; echo late line from the holder; exec sleep 1000 ) &\n"
                     "echo $! > '" + pidfile + "'\n"
                     "echo agent done\n"
                     "exit 0\n");
    StderrCapture log(dir / "log");
    auto begin = steady_clock::now();
    Result r = run(a, Action::Start, milliseconds(20000), "holder");
    auto took = steady_clock::now() - begin;
    pid_t holder = read_pid(pidfile);
    ASSERT_GT(holder, 0);
    to_kill.push_back(holder);
    EXPECT_EQ(r.rc, 0) << r.summary();
    EXPECT_LT(took, milliseconds(5000));
    EXPECT_EQ(r.output, "agent done\n");
    EXPECT_EQ(runner->running(), 0u);
    // What it writes later is still read and logged, so it does not die of SIGPIPE.
    bool seen = pump_until([&] { return log.text().find("holder: late line from the holder\n") != std::string::npos; },
                           milliseconds(5000));
    log.restore();
    EXPECT_TRUE(seen) << log.text();
    EXPECT_TRUE(alive(holder));
}

TEST_F(RunnerTest, OutputIsCapturedAndItsLoggingCapped) {
    Agent a = script("chatty",
                     "echo first on stderr >&2\n"
                     "i=1; while [ $i -le 1000 ]; do echo \"line $i\"; i=$((i+1)); done\n");
    StderrCapture log(dir / "log");
    Result r = run(a, Action::Monitor, milliseconds(20000), "chatty");
    log.restore();
    EXPECT_EQ(r.rc, 0);
    EXPECT_LE(r.output.size(), Runner::kOutputTail);
    EXPECT_GT(r.output.size(), Runner::kOutputTail - 20);
    // stdout and stderr are two pipes: where the stderr line lands relative to them is not known.
    EXPECT_TRUE(r.output.rfind("line ", 0) == 0 || r.output.rfind("first on stderr\n", 0) == 0)
        << "the tail does not start on a line:\n" << r.output.substr(0, 40);
    EXPECT_NE(r.output.find("line 999\nline 1000\n"), std::string::npos);
    EXPECT_EQ(r.output.back(), '\n');
    std::string text = log.text();
    EXPECT_EQ(count(text, ": chatty: line ") + count(text, ": chatty: first on stderr\n"), Runner::kMaxLoggedLines) << text;
    EXPECT_NE(text.find("chatty: 801 more lines of output not logged (at most 200 per action)"), std::string::npos);
}

TEST_F(RunnerTest, OutputWrittenJustBeforeExitIsNotLost) {
    // More than a pipe holds, then a last line and exit: whatever order the exit and the pipe's
    // readiness are seen in, the result ends with the last line.
    Agent a = script("bulk", "head -c 3000000 /dev/zero | tr '\\0' '.'\necho\necho THE END\n");
    for (int i = 0; i < 5; ++i) {
        Result r = run(a, Action::Monitor, milliseconds(20000), "bulk");
        EXPECT_EQ(r.rc, 0);
        ASSERT_GE(r.output.size(), 8u);
        EXPECT_EQ(r.output.substr(r.output.size() - 8), "THE END\n") << "run " << i;
    }
}

TEST_F(RunnerTest, LongLinesAreLoggedInPieces) {
    Agent a = script("longline", "head -c 10000 /dev/zero | tr '\\0' x\n");
    StderrCapture log(dir / "log");
    Result r = run(a, Action::Monitor, milliseconds(20000), "longline");
    log.restore();
    EXPECT_EQ(r.rc, 0);
    EXPECT_EQ(r.output, std::string(Runner::kOutputTail, 'x'));
    EXPECT_EQ(count(log.text(), ": longline: x"), 5u);  // 4 x 2048 + 1808
}

TEST_F(RunnerTest, AdoptedOrphanIsReapedWithoutDisturbingActions) {
    Agent a = script("steady", "sleep 1\necho still mine\nexit 7\n");
    std::optional<Result> r;
    runner->run(a, Action::Monitor, milliseconds(10000), "steady", {}, [&](Result x) { r = std::move(x); });

    // A child of ours that is not an action, whose own child outlives it and is adopted by us.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        pid_t grandchild = ::fork();
        if (grandchild == 0) {
            ::usleep(300 * 1000);
            ::_exit(3);
        }
        (void)!::write(fds[1], &grandchild, sizeof grandchild);
        ::_exit(0);
    }
    ::close(fds[1]);
    pid_t orphan = 0;
    ASSERT_EQ(::read(fds[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
    ::close(fds[0]);
    to_kill = {orphan};
    // Adopted by this process (a subreaper) once its parent is gone.
    EXPECT_TRUE(wait_until([&] {
        auto f = proc_stat(orphan);
        return f && std::stol((*f)[1]) == ::getpid();
    }, milliseconds(2000)));

    const auto before = runner->orphans_reaped();
    EXPECT_TRUE(pump_until([&] { return !exists(orphan) && !exists(child); }, milliseconds(5000)))
        << "the orphan was not reaped";
    EXPECT_EQ(runner->orphans_reaped() - before, 2u);
    EXPECT_EQ(runner->running(), 1u);
    ASSERT_TRUE(pump_until([&] { return r.has_value(); }));
    EXPECT_EQ(r->rc, 7);
    EXPECT_EQ(r->output, "still mine\n");
}

TEST_F(RunnerTest, ManyConcurrentActions) {
    Agent a = script("many", "sleep 0.3\necho \"$OCF_RESOURCE_INSTANCE\"\nexit \"$CODE\"\n");
    constexpr int kN = 40;
    std::vector<std::optional<Result>> results(kN);
    std::vector<int> calls(kN, 0);
    auto begin = steady_clock::now();
    for (int i = 0; i < kN; ++i)
        runner->run(a, Action::Monitor, milliseconds(20000), "many" + std::to_string(i), {{"CODE", std::to_string(i % 8)}},
                    [&, i](Result r) {
                        ++calls[i];
                        results[i] = std::move(r);
                    });
    EXPECT_EQ(runner->running(), static_cast<size_t>(kN));
    ASSERT_TRUE(pump_until([&] {
        return std::all_of(results.begin(), results.end(), [](const auto& r) { return r.has_value(); });
    }));
    auto took = steady_clock::now() - begin;
    for (int i = 0; i < kN; ++i) {
        EXPECT_EQ(calls[i], 1);
        EXPECT_EQ(results[i]->rc, i % 8);
        EXPECT_EQ(results[i]->output, "many" + std::to_string(i) + "\n");
    }
    EXPECT_LT(took, milliseconds(kN * 300 / 2)) << "the actions did not run concurrently";
    EXPECT_EQ(runner->running(), 0u);
}

TEST_F(RunnerTest, SpawnFailuresAreReportedAsync) {
    bool called = false;
    Result got;
    runner->run(agent(dir / "missing", Convention::Ocf), Action::Start, milliseconds(1000), "missing", {},
                [&](Result r) {
                    called = true;
                    got = r;
                });
    EXPECT_FALSE(called);
    ASSERT_TRUE(pump_until([&] { return called; }));
    EXPECT_EQ(got.rc, ocf::kErrInstalled);
    EXPECT_NE(got.output.find("cannot execute " + (dir / "missing")), std::string::npos) << got.output;

    write_file(dir / "garbage", "no interpreter line\n", 0755);
    Result r = run(agent(dir / "garbage", Convention::Lsb), Action::Start);
    EXPECT_EQ(r.rc, ocf::kErrInstalled) << r.summary();
    EXPECT_NE(r.output.find("Exec format error"), std::string::npos) << r.output;

    EXPECT_THROW(runner->run(agent(dir / "garbage", Convention::Ocf), Action::Start, milliseconds(0), "x", {}, [](Result) {}),
                 std::invalid_argument);
}

TEST_F(RunnerTest, OnlyOneRunnerPerProcess) {
    asio::io_context other;
    EXPECT_THROW(Runner second(other), std::logic_error);
}

TEST_F(RunnerTest, DestroyingTheRunnerKillsAndReapsRunningActions) {
    const std::string pids = dir / "pids";
    Agent a = script("forever", "sleep 1000 &\necho $! $$ > '" + pids + "'\nwait\n");
    bool called = false;
    runner->run(a, Action::Start, milliseconds(60000), "forever", {}, [&](Result) { called = true; });
    ASSERT_TRUE(pump_until([&] { return read_file(pids).find('\n') != std::string::npos; }, milliseconds(5000)));
    std::istringstream in(read_file(pids));
    pid_t sleeper = 0, agent_pid = 0;
    in >> sleeper >> agent_pid;
    to_kill = {sleeper, agent_pid};
    runner.reset();
    EXPECT_FALSE(exists(agent_pid)) << "not reaped";
    EXPECT_TRUE(wait_until([&] { return !alive(sleeper); }, milliseconds(2000)));
    io.restart();
    io.poll();
    EXPECT_FALSE(called);
}

// The real thing when resource-agents is installed: Dummy through its whole life cycle.
TEST_F(RunnerTest, RealResourceAgentsDummy) {
    if (::access("/usr/lib/ocf/resource.d/heartbeat/Dummy", X_OK) != 0)
        GTEST_SKIP() << "resource-agents is not installed (no /usr/lib/ocf/resource.d/heartbeat/Dummy)";
    config::Resource res;
    res.agent = "ocf:heartbeat:Dummy";
    res.args = {dir / "dummy.state"};
    std::string error;
    auto a = resolve(res, SearchPath{}, error);
    ASSERT_TRUE(a) << error;
    EXPECT_EQ(run(*a, Action::Monitor, milliseconds(20000), "Dummy_1").rc, ocf::kNotRunning);
    EXPECT_EQ(run(*a, Action::Start, milliseconds(20000), "Dummy_1").rc, ocf::kSuccess);
    EXPECT_TRUE(std::filesystem::exists(dir / "dummy.state"));
    EXPECT_EQ(run(*a, Action::Monitor, milliseconds(20000), "Dummy_1").rc, ocf::kSuccess);
    EXPECT_EQ(run(*a, Action::ValidateAll, milliseconds(20000), "Dummy_1").rc, ocf::kSuccess);
    EXPECT_EQ(run(*a, Action::Stop, milliseconds(20000), "Dummy_1").rc, ocf::kSuccess);
    EXPECT_EQ(run(*a, Action::Monitor, milliseconds(20000), "Dummy_1").rc, ocf::kNotRunning);
    Result md = run(*a, Action::MetaData, milliseconds(20000), "Dummy_1");
    EXPECT_EQ(md.rc, 0);
    EXPECT_NE(md.output.find("resource-agent"), std::string::npos);
}

}  // namespace
}  // namespace duet::resources
