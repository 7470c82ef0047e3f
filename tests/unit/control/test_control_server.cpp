// The control server over a real Unix socket, with a real io_context on a thread.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "daemon/control/server.hpp"
#include "proto/control.hpp"

namespace asio = boost::asio;
namespace pc = duet::proto::control;
using duet::control::Json;
using duet::control::Server;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/duet-ctl-test-XXXXXX";
    return ::mkdtemp(tmpl);
}

int connect_to(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }

// Reads one line (blocking, with the socket's timeout). Empty on EOF/timeout.
std::string read_line(int fd) {
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1) {
        if (c == '\n') return line;
        line.push_back(c);
    }
    return line;
}

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir = temp_dir();
        path = dir + "/duetd.sock";
    }
    void start(const std::string& group = "nonexistent-duet-group") {
        server = std::make_unique<Server>(io, path, group);
        server->handle("status", [](const Json& args, const Server::Reply& reply) {
            reply(true, Json{{"version", 1}, {"node", "alpha"}, {"echo", args}});
        });
        server->handle("fail", [](const Json&, const Server::Reply& reply) { reply(false, "it failed"); });
        server->handle("later", [this](const Json&, const Server::Reply& reply) { pending = reply; });
        server->handle("throws", [](const Json&, const Server::Reply&) { throw std::runtime_error("boom"); });
        work.emplace(io.get_executor());
        thread = std::thread([this] { io.run(); });
    }
    void TearDown() override {
        if (thread.joinable()) {
            asio::post(io, [this] { server.reset(); });
            work.reset();
            io.stop();
            thread.join();
        }
        server.reset();
        std::filesystem::remove_all(dir);
    }
    template <class F>
    void on_io(F f) {
        std::promise<void> done;
        asio::post(io, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }

    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::unique_ptr<Server> server;
    std::thread thread;
    std::string dir, path;
    Server::Reply pending;
};

TEST_F(ServerTest, AnswersARequest) {
    start();
    int fd = connect_to(path);
    ASSERT_GE(fd, 0);
    send_all(fd, pc::encode(pc::Request{9, "status", Json{{"x", 1}}}));
    std::string err;
    auto r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r) << err;
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->id, 9u);
    EXPECT_EQ(r->result["node"], "alpha");
    EXPECT_EQ(r->result["echo"]["x"], 1);
    ::close(fd);
}

TEST_F(ServerTest, ErrorsKeepTheConnectionUsable) {
    start();
    int fd = connect_to(path);
    ASSERT_GE(fd, 0);
    std::string err;
    send_all(fd, "this is not json\n");
    auto r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r) << err;
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->error, "bad request: not valid JSON");

    send_all(fd, pc::encode(pc::Request{2, "nosuch", {}}));
    r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->ok);
    EXPECT_NE(r->error.find("unknown command 'nosuch'"), std::string::npos) << r->error;
    EXPECT_NE(r->error.find("status"), std::string::npos) << "lists the known commands: " << r->error;

    send_all(fd, pc::encode(pc::Request{3, "fail", {}}));
    r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error, "it failed");

    send_all(fd, pc::encode(pc::Request{4, "throws", {}}));
    r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error, "internal error: boom");

    send_all(fd, pc::encode(pc::Request{5, "status", {}}));
    r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->ok);
    ::close(fd);
}

TEST_F(ServerTest, DeferredReplyArrivesLater) {
    start();
    int fd = connect_to(path);
    send_all(fd, pc::encode(pc::Request{11, "later", {}}));
    // Nothing yet; then the handler's stored reply is called from the io thread.
    for (int i = 0; i < 500 && !pending; ++i) {
        on_io([] {});
    }
    on_io([&] { ASSERT_TRUE(pending); pending(true, Json{{"done", true}}); });
    std::string err;
    auto r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->id, 11u);
    EXPECT_EQ(r->result["done"], true);
    ::close(fd);
}

TEST_F(ServerTest, EventsReachSubscribersOnly) {
    start();
    int sub = connect_to(path);
    int other = connect_to(path);
    send_all(sub, pc::encode(pc::Request{1, "events", {}}));
    std::string err;
    auto r = pc::decode_response(read_line(sub), err);
    ASSERT_TRUE(r && r->ok) << err;
    on_io([&] { EXPECT_EQ(server->subscribers(), 1u); });
    on_io([&] { server->publish(Json{{"type", "peer_dead"}, {"node", "beta"}}); });
    auto e = pc::decode_event(read_line(sub), err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(e->event["type"], "peer_dead");
    // The other connection got nothing: its next line is the answer to its own request.
    send_all(other, pc::encode(pc::Request{2, "status", {}}));
    r = pc::decode_response(read_line(other), err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->id, 2u);
    ::close(sub);
    ::close(other);
}

TEST_F(ServerTest, OverlongMessageGetsAnErrorAndIsDisconnected) {
    start();
    int fd = connect_to(path);
    std::string big(pc::kMaxLine + 10, 'x');
    // Write in the background: the server stops reading after the limit.
    std::thread w([&] { (void)!::write(fd, big.data(), big.size()); });
    std::string err;
    auto r = pc::decode_response(read_line(fd), err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->error, "message too long");
    EXPECT_EQ(read_line(fd), "") << "then the connection is closed";
    ::shutdown(fd, SHUT_RDWR);
    w.join();
    ::close(fd);
}

TEST_F(ServerTest, RefusesASecondDaemonOnTheSameSocket) {
    start();
    try {
        asio::io_context other;
        Server second(other, path, "");
        FAIL() << "a second server bound the live socket";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("another duetd is already running"), std::string::npos) << e.what();
    }
}

TEST_F(ServerTest, ReplacesAStaleSocket) {
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);  // the file stays, nobody listens: a crashed daemon's leftover
    }
    start();
    int fd = connect_to(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
}

TEST_F(ServerTest, RefusesAPathThatIsNotASocket) {
    { std::ofstream(path) << "data"; }
    EXPECT_THROW(Server(io, path, ""), std::runtime_error);
    EXPECT_TRUE(std::filesystem::is_regular_file(path)) << "an unrelated file is never removed";
}

TEST_F(ServerTest, ModeIsOwnerOnlyWithoutTheGroupAndGroupReadableWithIt) {
    start("nonexistent-duet-group");
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    TearDown();
    SetUp();
    asio::io_context io2;
    Server s(io2, path, "root");  // group root (gid 0) exists everywhere
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_EQ(st.st_gid, 0u);
}

TEST_F(ServerTest, RefusesUsersOutsideTheGroup) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user";
    start("nonexistent-duet-group");
    ::chmod(dir.c_str(), 0755);
    ::chmod(path.c_str(), 0666);  // let the file mode through, so the credential check is what refuses
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(10);
        int fd = connect_to(path);
        if (fd < 0) _exit(11);
        std::string line = read_line(fd);
        _exit(line.find("permission denied") != std::string::npos ? 0 : 12);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "11: could not connect, 12: was not refused";
}

}  // namespace
