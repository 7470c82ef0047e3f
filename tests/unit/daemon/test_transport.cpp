// The transport on loopback: real sockets, real datagrams.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "daemon/transport/transport.hpp"

namespace asio = boost::asio;
using duet::config::Path;
using duet::config::PathKind;
using duet::transport::Transport;

namespace {

Path ucast(std::string addr, uint16_t port, std::string iface = "") {
    Path p;
    p.kind = PathKind::Ucast;
    p.address = std::move(addr);
    p.port = port;
    p.interface = std::move(iface);
    return p;
}

uint16_t free_udp_port() {
    asio::io_context io;
    asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
    return s.local_endpoint().port();
}

}  // namespace

TEST(Transport, DropsUcastPathsToOwnAddresses) {
    std::vector<Path> paths{ucast("127.0.0.1", 694), ucast("203.0.113.250", 694), ucast("::1", 694)};
    auto dropped = duet::transport::drop_own_ucast(paths);
    ASSERT_EQ(paths.size(), 1u);
    EXPECT_EQ(paths[0].address, "203.0.113.250");
    EXPECT_EQ(dropped.size(), 2u);
}

TEST(Transport, SendsAndReceivesOnLoopback) {
    asio::io_context io;
    uint16_t port = free_udp_port();
    std::vector<std::vector<uint8_t>> got;
    std::string from;
    int got_path = -1;
    Transport t(io, {ucast("127.0.0.1", port)}, [&](int path, std::span<const uint8_t> b, const std::string& src, std::chrono::steady_clock::time_point) {
        got.emplace_back(b.begin(), b.end());
        from = src;
        got_path = path;
    });
    ASSERT_TRUE(t.counters(0).open) << t.counters(0).last_error;
    std::vector<uint8_t> msg{1, 2, 3, 4};
    t.send(0, msg);
    t.send(0, msg);
    io.run_for(std::chrono::milliseconds(200));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], msg);
    EXPECT_EQ(got_path, 0);
    EXPECT_EQ(from.rfind("127.0.0.1:", 0), 0u) << from;
    EXPECT_EQ(t.counters(0).sent, 2u);
    EXPECT_EQ(t.counters(0).received, 2u);
}

TEST(Transport, OversizedDatagramKeepsItsTrueLengthUpToTheBuffer) {
    asio::io_context io;
    uint16_t port = free_udp_port();
    size_t len = 0;
    Transport t(io, {ucast("127.0.0.1", port)}, [&](int, std::span<const uint8_t> b, const std::string&, auto) { len = b.size(); });
    std::vector<uint8_t> big(3000, 7);
    t.send(0, big);
    io.run_for(std::chrono::milliseconds(200));
    EXPECT_EQ(len, 3000u);
}

TEST(Transport, MissingInterfaceIsReportedAndNotFatal) {
    asio::io_context io;
    Path p;
    p.kind = PathKind::Mcast;
    p.interface = "duetnosuch0";
    p.address = "239.0.0.10";
    p.port = 694;
    Transport t(io, {p}, [](int, std::span<const uint8_t>, const std::string&, auto) {});
    EXPECT_FALSE(t.counters(0).open);
    EXPECT_EQ(t.counters(0).last_error, "interface duetnosuch0 not found");
    std::vector<uint8_t> msg{1};
    t.send(0, msg);
    EXPECT_EQ(t.counters(0).send_errors, 1u);
    t.retry_closed();
    EXPECT_FALSE(t.counters(0).open);
}

TEST(Transport, DrainReadsQueuedDatagramsSynchronously) {
    asio::io_context io;
    uint16_t port = free_udp_port();
    int n = 0;
    Transport t(io, {ucast("127.0.0.1", port)}, [&](int, std::span<const uint8_t>, const std::string&, auto) { ++n; });
    std::vector<uint8_t> msg{9};
    for (int i = 0; i < 5; ++i) t.send(0, msg);
    t.drain();  // without running the io_context
    EXPECT_EQ(n, 5);
}

TEST(Transport, ArrivalIsWhenTheKernelReceivedNotWhenWeRead) {
    asio::io_context io;
    uint16_t port = free_udp_port();
    std::vector<std::chrono::steady_clock::time_point> arrivals;
    Transport t(io, {ucast("127.0.0.1", port)},
                [&](int, std::span<const uint8_t>, const std::string&, std::chrono::steady_clock::time_point at) {
                    arrivals.push_back(at);
                });
    std::vector<uint8_t> msg{1};
    auto sent = std::chrono::steady_clock::now();
    t.send(0, msg);
    // Read much later, as a daemon that was stopped would.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto read_at = std::chrono::steady_clock::now();
    t.drain();
    ASSERT_EQ(arrivals.size(), 1u);
    EXPECT_LT(arrivals[0], read_at - std::chrono::milliseconds(200)) << "the arrival time is the kernel's";
    EXPECT_GE(arrivals[0], sent - std::chrono::milliseconds(50));
}
