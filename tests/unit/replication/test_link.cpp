// The replication link over real sockets (TCP on 127.0.0.1 with ephemeral ports, and socketpairs):
// handshakes clear and encrypted, frames of every size, concurrent traffic both ways, every refusal
// with its reason on both sides, hostile peers (garbage, half a Hello, EOF, tampering), shutdown.
#include "daemon/replication/link.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <random>
#include <thread>

namespace duet::replication {
namespace {

namespace repl = proto::repl;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = 5000ms;

// A connected TCP pair on 127.0.0.1: {connecting side, accepted side}.
std::pair<int, int> tcp_pair() {
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 4) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    int s = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(lfd);
    if (s < 0) throw std::runtime_error(std::string("accept: ") + std::strerror(errno));
    return {c, s};
}

std::pair<int, int> unix_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
    return {sv[0], sv[1]};
}

LinkIdentity ident(std::string node, std::string peer) {
    LinkIdentity id;
    id.cluster = "alpha+beta";
    id.replica = "r0";
    id.node = std::move(node);
    id.peer_node = std::move(peer);
    id.size = uint64_t(1) << 30;
    id.secret = "correct horse battery staple";
    return id;
}

struct Outcome {
    std::unique_ptr<Link> link;
    std::string error;  // LinkError::what() when the handshake failed
};

Outcome try_establish(int fd, LinkIdentity id, std::chrono::milliseconds timeout = kTimeout) {
    try {
        return {Link::establish(fd, id, timeout), ""};
    } catch (const LinkError& e) {
        return {nullptr, e.what()};
    }
}

// Runs both handshakes concurrently; returns {a's outcome, b's outcome}.
std::pair<Outcome, Outcome> establish_both(std::pair<int, int> fds, LinkIdentity a, LinkIdentity b) {
    auto fb = std::async(std::launch::async, [&] { return try_establish(fds.second, b); });
    Outcome oa = try_establish(fds.first, a);
    return {std::move(oa), fb.get()};
}

std::pair<std::unique_ptr<Link>, std::unique_ptr<Link>> connected(bool encrypt_a, bool encrypt_b, bool tcp = true) {
    auto a = ident("alpha", "beta");
    auto b = ident("beta", "alpha");
    a.encrypt = encrypt_a;
    b.encrypt = encrypt_b;
    auto [oa, ob] = establish_both(tcp ? tcp_pair() : unix_pair(), a, b);
    if (!oa.link || !ob.link) throw std::runtime_error("handshake failed: " + oa.error + " / " + ob.error);
    return {std::move(oa.link), std::move(ob.link)};
}

std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
    std::vector<uint8_t> v(n);
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = rng();
        std::memcpy(v.data() + i, &x, std::min<size_t>(8, n - i));
    }
    return v;
}

// A hand-driven peer for hostile and version tests: writes and reads raw frames with the codec.
struct RawPeer {
    int fd;
    explicit RawPeer(int f) : fd(f) {}
    ~RawPeer() { close(); }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    void write_bytes(std::span<const uint8_t> b) {
        ASSERT_EQ(::send(fd, b.data(), b.size(), MSG_NOSIGNAL), ssize_t(b.size()));
    }
    void write_frame(repl::Header h, std::span<const uint8_t> payload) {
        h.length = uint32_t(payload.size());
        auto head = repl::encode_header(h);
        write_bytes(head);
        write_bytes(payload);
    }
    // Reads exactly n bytes within 5 s; false at EOF or timeout.
    bool read_bytes(uint8_t* p, size_t n) {
        while (n > 0) {
            pollfd pf{fd, POLLIN, 0};
            if (::poll(&pf, 1, 5000) <= 0) return false;
            ssize_t r = ::recv(fd, p, n, 0);
            if (r <= 0) return false;
            p += r;
            n -= size_t(r);
        }
        return true;
    }
    bool read_frame(repl::Header& h, std::vector<uint8_t>& payload) {
        std::array<uint8_t, repl::kHeaderSize> head;
        if (!read_bytes(head.data(), head.size()) || repl::decode_header(head, h) != repl::Error::None) return false;
        payload.resize(h.length);
        return read_bytes(payload.data(), payload.size());
    }
    // Runs a correct clear-mode handshake as `me` (or with the given Hello) against a Link.
    bool handshake(const LinkIdentity& me) {
        repl::Hello hello;
        hello.cluster = me.cluster;
        hello.replica = me.replica;
        hello.node = me.node;
        hello.size = me.size;
        hello.nonce.fill(0x42);
        const auto own = repl::encode(hello);
        write_frame({repl::Type::Hello}, own);
        repl::Header h;
        std::vector<uint8_t> theirs, proof;
        if (!read_frame(h, theirs) || h.type != repl::Type::Hello) return false;
        write_frame({repl::Type::Auth}, repl::auth_proof(me.secret, own, theirs));
        return read_frame(h, proof) && h.type == repl::Type::Auth &&
               repl::proof_equal(proof, repl::auth_proof(me.secret, theirs, own));
    }
    // The reason in the next Refuse frame, skipping Hello/Auth; "" if none arrives.
    std::string refusal() {
        repl::Header h;
        std::vector<uint8_t> p;
        while (read_frame(h, p))
            if (h.type == repl::Type::Refuse) return std::string(p.begin(), p.end());
        return "";
    }
};

repl::Hello hello_of(const LinkIdentity& id) {
    repl::Hello h;
    h.cluster = id.cluster;
    h.replica = id.replica;
    h.node = id.node;
    h.size = id.size;
    h.nonce.fill(0x17);
    return h;
}

}  // namespace

// ---- handshake -----------------------------------------------------------------------------------

TEST(Link, HandshakeClear) {
    auto [a, b] = connected(false, false);
    EXPECT_FALSE(a->encrypted());
    EXPECT_FALSE(b->encrypted());
    EXPECT_EQ(a->peer_hello().node, "beta");
    EXPECT_EQ(b->peer_hello().node, "alpha");
    EXPECT_EQ(a->peer_hello().replica, "r0");
    EXPECT_EQ(a->peer_hello().size, uint64_t(1) << 30);
    EXPECT_EQ(a->peer_hello().nonce.size(), repl::kNonceSize);
    EXPECT_NE(a->peer_hello().nonce, b->peer_hello().nonce);  // each side's fresh nonce
    EXPECT_TRUE(a->peer().starts_with("127.0.0.1:")) << a->peer();
    EXPECT_EQ(a->reason(), "");
    EXPECT_GT(a->bytes_sent(), 0u);
    EXPECT_EQ(a->bytes_sent(), b->bytes_received());
}

TEST(Link, HandshakeEncryptedWhenEitherSideWantsIt) {
    for (auto [ea, eb] : {std::pair{true, false}, std::pair{false, true}, std::pair{true, true}}) {
        auto [a, b] = connected(ea, eb);
        EXPECT_TRUE(a->encrypted());
        EXPECT_TRUE(b->encrypted());
        EXPECT_EQ(a->peer_hello().flags & repl::kHelloEncrypt, eb ? repl::kHelloEncrypt : 0);
    }
}

TEST(Link, HandshakeOverSocketpair) {
    auto [a, b] = connected(true, false, false);
    EXPECT_EQ(a->peer(), "local socket");
    a->send({repl::Type::Ping, 0, 5});
    repl::Header h;
    std::vector<uint8_t> p;
    ASSERT_TRUE(b->recv(h, p)) << b->reason();
    EXPECT_EQ(h.type, repl::Type::Ping);
    EXPECT_EQ(h.id, 5u);
}

// ---- frames --------------------------------------------------------------------------------------

class LinkModes : public ::testing::TestWithParam<bool> {};  // param: encrypted

// The engine receives writes into an aligned IoBuffer and writes it to its O_DIRECT disk as it is:
// same bytes as the vector form, 4 KiB-aligned, and a buffer reused across frames of other sizes.
TEST_P(LinkModes, FramesIntoAnAlignedBuffer) {
    auto [a, b] = connected(GetParam(), false);
    IoBuffer p;
    repl::Header h;
    uint64_t id = 1;
    for (size_t size : {size_t(4096), size_t(1) << 20, size_t(512), size_t(0), size_t(repl::kMaxPayload), size_t(8192)}) {
        const auto data = pattern(size, id + 100);
        std::thread t([&] { a->send(repl::Header{repl::Type::Write, 0, id, id * 4096, 0, 0}, data); });
        ASSERT_TRUE(b->recv(h, p)) << b->reason();
        t.join();
        EXPECT_EQ(h.id, id);
        ASSERT_EQ(p.size(), size);
        if (size) {
            EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data()) % IoBuffer::kAlign, 0u);
            EXPECT_TRUE(std::equal(data.begin(), data.end(), p.data())) << "frame of " << size << " bytes differs";
        }
        ++id;
    }
}

TEST_P(LinkModes, DataFramesRoundTrip) {
    auto [a, b] = connected(GetParam(), false);
    ASSERT_EQ(a->encrypted(), GetParam());
    std::vector<uint8_t> p;
    repl::Header h;
    uint64_t id = 1;
    for (size_t size : {size_t(0), size_t(4096), size_t(1) << 20, size_t(repl::kMaxPayload), size_t(1), size_t(12345)}) {
        const auto data = pattern(size, id);
        const repl::Header sent{repl::Type::Write, repl::kFlagFua, id, id * 4096, 0, uint32_t(id * 7)};
        std::thread t([&] { a->send(sent, data); });  // 4 MiB exceeds the socket buffers
        ASSERT_TRUE(b->recv(h, p)) << b->reason();
        t.join();
        EXPECT_EQ(h.type, repl::Type::Write);
        EXPECT_EQ(h.flags, repl::kFlagFua);
        EXPECT_EQ(h.id, id);
        EXPECT_EQ(h.offset, id * 4096);
        EXPECT_EQ(h.aux, id * 7);
        EXPECT_EQ(h.length, size);
        EXPECT_TRUE(p == data) << "payload of " << size << " bytes differs";
        ++id;
    }
    // Structured payloads and payload-less frames go the other way.
    repl::State st;
    st.role = repl::Role::Primary;
    st.disk = repl::Disk::UpToDate;
    st.gen.current = 99;
    b->send({repl::Type::State}, repl::encode(st));
    b->send({repl::Type::Trim, 0, 8, 1 << 20}, repl::encode(repl::TrimBody{uint64_t(5) << 32}));
    b->send({repl::Type::WriteAck, 0, 3, 0, 0, 5});
    ASSERT_TRUE(a->recv(h, p)) << a->reason();
    repl::State got;
    ASSERT_EQ(h.type, repl::Type::State);
    ASSERT_EQ(repl::decode(p, got), repl::Error::None);
    EXPECT_EQ(got, st);
    ASSERT_TRUE(a->recv(h, p));
    repl::TrimBody trim;
    ASSERT_EQ(h.type, repl::Type::Trim);
    ASSERT_EQ(repl::decode(p, trim), repl::Error::None);
    EXPECT_EQ(trim.length, uint64_t(5) << 32);
    ASSERT_TRUE(a->recv(h, p));
    EXPECT_EQ(h, (repl::Header{repl::Type::WriteAck, 0, 3, 0, 0, 5}));
    EXPECT_TRUE(p.empty());
}

TEST_P(LinkModes, IovecPayloadIsSentAsOneFrame) {
    auto [a, b] = connected(GetParam(), GetParam());
    const auto data = pattern(3 * 4096 + 100, 77);
    std::vector<iovec> parts;
    for (size_t at = 0; at < data.size(); at += 4096)
        parts.push_back(iovec{const_cast<uint8_t*>(data.data() + at), std::min<size_t>(4096, data.size() - at)});
    parts.insert(parts.begin() + 1, iovec{nullptr, 0});  // an empty part is fine
    a->send({repl::Type::ResyncData, 0, 9, 1 << 20}, std::span<const iovec>(parts));
    repl::Header h;
    std::vector<uint8_t> p;
    ASSERT_TRUE(b->recv(h, p)) << b->reason();
    EXPECT_EQ(h.type, repl::Type::ResyncData);
    EXPECT_EQ(h.length, data.size());
    EXPECT_TRUE(p == data);
}

// Two sender threads and one receiver on each side at once: every frame arrives whole, and each
// sender's frames arrive in the order it sent them.
TEST_P(LinkModes, ManyFramesInOrderBothDirectionsAtOnce) {
    auto [a, b] = connected(GetParam(), false);
    constexpr uint64_t kPerSender = 1500;
    auto sender = [](Link& l, uint64_t stream) {
        for (uint64_t i = 0; i < kPerSender; ++i) {
            const uint64_t id = stream << 32 | i;
            const size_t size = (i * 2654435761u) % 70000;
            l.send({repl::Type::Write, 0, id, i}, pattern(size, id));
        }
    };
    auto receiver = [](Link& l, std::string& problem) {
        std::array<uint64_t, 2> next{0, 0};
        repl::Header h;
        std::vector<uint8_t> p;
        for (uint64_t n = 0; n < 2 * kPerSender; ++n) {
            if (!l.recv(h, p)) return void(problem = "recv failed: " + l.reason());
            const uint64_t stream = h.id >> 32, i = h.id & 0xffffffff;
            if (stream > 1 || i != next[stream] || h.offset != i)
                return void(problem = "out of order: stream " + std::to_string(stream) + " frame " + std::to_string(i));
            ++next[stream];
            if (p != pattern((i * 2654435761u) % 70000, h.id))
                return void(problem = "payload of frame " + std::to_string(i) + " differs");
        }
    };
    std::string pa, pb;
    std::thread ra(receiver, std::ref(*a), std::ref(pa)), rb(receiver, std::ref(*b), std::ref(pb));
    std::thread s[] = {std::thread(sender, std::ref(*a), 0), std::thread(sender, std::ref(*a), 1),
                       std::thread(sender, std::ref(*b), 0), std::thread(sender, std::ref(*b), 1)};
    for (auto& t : s) t.join();
    ra.join();
    rb.join();
    EXPECT_EQ(pa, "");
    EXPECT_EQ(pb, "");
    EXPECT_EQ(a->bytes_sent(), b->bytes_received());
    EXPECT_EQ(b->bytes_sent(), a->bytes_received());
}

TEST_P(LinkModes, PeerCloseEndsRecvWithReason) {
    auto [a, b] = connected(GetParam(), false);
    a->send({repl::Type::Ping, 0, 1});
    a.reset();
    repl::Header h;
    std::vector<uint8_t> p;
    ASSERT_TRUE(b->recv(h, p));  // what was sent before the close still arrives
    EXPECT_FALSE(b->recv(h, p));
    EXPECT_NE(b->reason().find("the peer closed the connection"), std::string::npos) << b->reason();
    EXPECT_TRUE(b->reason().starts_with("127.0.0.1:")) << b->reason();
    EXPECT_FALSE(b->recv(h, p));  // stays ended
}

TEST_P(LinkModes, ShutdownUnblocksRecvAndFailsSends) {
    auto [a, b] = connected(GetParam(), false);
    std::promise<bool> got;
    std::thread t([&, &b = b] {
        repl::Header h;
        std::vector<uint8_t> p;
        got.set_value(b->recv(h, p));
    });
    auto result = got.get_future();
    EXPECT_EQ(result.wait_for(200ms), std::future_status::timeout);  // really blocked
    b->shutdown();
    ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
    t.join();
    EXPECT_FALSE(result.get());
    EXPECT_NE(b->reason().find("shut down locally"), std::string::npos) << b->reason();
    EXPECT_THROW(b->send({repl::Type::Ping}), LinkError);
    // The peer sees the end too.
    repl::Header h;
    std::vector<uint8_t> p;
    EXPECT_FALSE(a->recv(h, p));
    EXPECT_NE(a->reason().find("closed"), std::string::npos) << a->reason();
}

INSTANTIATE_TEST_SUITE_P(ClearAndEncrypted, LinkModes, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Encrypted" : "Clear"; });

TEST(Link, SendRefusesFramesThePeerWouldReject) {
    auto [a, b] = connected(false, false);
    const std::vector<uint8_t> five(5), big(repl::kMaxPayload + 1);
    EXPECT_THROW(a->send({repl::Type::Ping}, five), std::invalid_argument);
    EXPECT_THROW(a->send({repl::Type::Write}, big), std::invalid_argument);
    EXPECT_THROW(a->send({repl::Type::State}, five), std::invalid_argument);
    EXPECT_THROW(a->send({repl::Type::Hello}, repl::encode(hello_of(ident("alpha", "beta")))), std::invalid_argument);
    EXPECT_THROW(a->send({repl::Type::Auth}, std::vector<uint8_t>(32)), std::invalid_argument);
    // The link is still fine.
    a->send({repl::Type::Pong, 0, 2});
    repl::Header h;
    std::vector<uint8_t> p;
    ASSERT_TRUE(b->recv(h, p)) << b->reason();
    EXPECT_EQ(h.type, repl::Type::Pong);
}

TEST(Link, RefuseAfterHandshakeEndsTheLinkWithItsReason) {
    auto [a, b] = connected(true, false);
    const std::string why = "split brain detected";
    a->send({repl::Type::Refuse}, std::span(reinterpret_cast<const uint8_t*>(why.data()), why.size()));
    repl::Header h;
    std::vector<uint8_t> p;
    EXPECT_FALSE(b->recv(h, p));
    EXPECT_NE(b->reason().find("refused by the peer: split brain detected"), std::string::npos) << b->reason();
}

// ---- refusals ------------------------------------------------------------------------------------

TEST(Link, WrongSecretRefusedOnBothSides) {
    auto a = ident("alpha", "beta"), b = ident("beta", "alpha");
    b.secret = "another secret";
    auto [oa, ob] = establish_both(tcp_pair(), a, b);
    ASSERT_FALSE(oa.link);
    ASSERT_FALSE(ob.link);
    EXPECT_NE(oa.error.find("authentication failed: wrong shared secret"), std::string::npos) << oa.error;
    EXPECT_NE(ob.error.find("authentication failed: wrong shared secret"), std::string::npos) << ob.error;
    EXPECT_TRUE(oa.error.starts_with("127.0.0.1:")) << oa.error;
}

TEST(Link, WrongSizeRefusedOnBothSides) {
    auto a = ident("alpha", "beta"), b = ident("beta", "alpha");
    b.size = uint64_t(2) << 30;
    auto [oa, ob] = establish_both(tcp_pair(), a, b);
    ASSERT_FALSE(oa.link);
    ASSERT_FALSE(ob.link);
    EXPECT_NE(oa.error.find("peer's device is 2147483648 bytes, ours is 1073741824"), std::string::npos) << oa.error;
    EXPECT_NE(ob.error.find("peer's device is 1073741824 bytes, ours is 2147483648"), std::string::npos) << ob.error;
}

TEST(Link, WrongReplicaRefusedOnBothSides) {
    auto a = ident("alpha", "beta"), b = ident("beta", "alpha");
    b.replica = "r1";
    auto [oa, ob] = establish_both(tcp_pair(), a, b);
    ASSERT_FALSE(oa.link);
    ASSERT_FALSE(ob.link);
    EXPECT_NE(oa.error.find("peer serves replica 'r1', ours is 'r0'"), std::string::npos) << oa.error;
    EXPECT_NE(ob.error.find("peer serves replica 'r0', ours is 'r1'"), std::string::npos) << ob.error;
}

TEST(Link, WrongClusterRefusedOnBothSides) {
    auto a = ident("alpha", "beta"), b = ident("beta", "alpha");
    b.cluster = "production cluster";
    auto [oa, ob] = establish_both(tcp_pair(), a, b);
    ASSERT_FALSE(oa.link);
    ASSERT_FALSE(ob.link);
    EXPECT_NE(oa.error.find("peer belongs to cluster 'production cluster', we are in cluster 'alpha+beta'"),
              std::string::npos)
        << oa.error;
    EXPECT_NE(ob.error.find("peer belongs to cluster 'alpha+beta'"), std::string::npos) << ob.error;
}

// Only one side sees the mismatch; the other learns it from the Refuse.
TEST(Link, UnexpectedPeerNodeRefusedOnBothSides) {
    auto a = ident("alpha", "gamma"), b = ident("beta", "alpha");
    auto [oa, ob] = establish_both(tcp_pair(), a, b);
    ASSERT_FALSE(oa.link);
    ASSERT_FALSE(ob.link);
    EXPECT_NE(oa.error.find("unexpected node: the peer is node 'beta', we expect 'gamma'"), std::string::npos)
        << oa.error;
    EXPECT_NE(ob.error.find("refused by the peer: unexpected node: you are 'beta', node alpha expects 'gamma'"),
              std::string::npos)
        << ob.error;
}

TEST(Link, VersionMismatchRefusedOnBothSides) {
    auto fds = tcp_pair();
    RawPeer peer(fds.second);
    auto hello = hello_of(ident("beta", "alpha"));
    hello.version = 2;
    peer.write_frame({repl::Type::Hello}, repl::encode(hello));
    auto o = try_establish(fds.first, ident("alpha", "beta"));
    ASSERT_FALSE(o.link);
    EXPECT_NE(o.error.find("peer speaks replication protocol version 2, we speak 1"), std::string::npos) << o.error;
    EXPECT_EQ(peer.refusal(), "protocol version 2 not supported: node alpha speaks version 1");
}

// A future version may lay its Hello out differently: still reported as a version mismatch.
TEST(Link, UnparsableHelloOfAnotherVersionIsAVersionMismatch) {
    auto fds = unix_pair();
    RawPeer peer(fds.second);
    std::vector<uint8_t> future(100, 0xee);
    future[0] = 0;
    future[1] = 3;
    peer.write_frame({repl::Type::Hello}, future);
    auto o = try_establish(fds.first, ident("alpha", "beta"));
    EXPECT_NE(o.error.find("version 3, we speak 1"), std::string::npos) << o.error;
}

TEST(Link, MalformedHelloRefused) {
    auto fds = unix_pair();
    RawPeer peer(fds.second);
    auto bytes = repl::encode(hello_of(ident("beta", "alpha")));
    bytes.push_back(0);  // trailing byte
    peer.write_frame({repl::Type::Hello}, bytes);
    auto o = try_establish(fds.first, ident("alpha", "beta"));
    EXPECT_NE(o.error.find("malformed Hello: malformed"), std::string::npos) << o.error;
    EXPECT_NE(peer.refusal().find("protocol error: malformed Hello"), std::string::npos);
}

// ---- hostile peers -------------------------------------------------------------------------------

TEST(Link, GarbageRefused) {
    auto fds = tcp_pair();
    RawPeer peer(fds.second);
    const std::string http = "GET / HTTP/1.1\r\nHost: replica\r\n\r\n";
    peer.write_bytes(std::span(reinterpret_cast<const uint8_t*>(http.data()), http.size()));
    auto o = try_establish(fds.first, ident("alpha", "beta"));
    ASSERT_FALSE(o.link);
    EXPECT_NE(o.error.find("bad frame during the handshake: bad magic 0x47455420"), std::string::npos) << o.error;
}

TEST(Link, FramesOutOfOrderRefused) {
    auto fds = unix_pair();
    RawPeer peer(fds.second);
    peer.write_frame({repl::Type::Auth}, std::vector<uint8_t>(repl::kMacSize));
    auto o = try_establish(fds.first, ident("alpha", "beta"));
    EXPECT_NE(o.error.find("expected a Hello frame, got Auth"), std::string::npos) << o.error;
    EXPECT_EQ(peer.refusal(), "protocol error: expected a Hello frame, got Auth");

    // A data frame where the Auth belongs.
    fds = unix_pair();
    RawPeer peer2(fds.second);
    peer2.write_frame({repl::Type::Hello}, repl::encode(hello_of(ident("beta", "alpha"))));
    peer2.write_frame({repl::Type::Write}, std::vector<uint8_t>(512));
    o = try_establish(fds.first, ident("alpha", "beta"));
    EXPECT_NE(o.error.find("expected an Auth frame, got Write"), std::string::npos) << o.error;
}

TEST(Link, HalfHelloThenSilenceIsBoundedByTheTimeout) {
    auto fds = tcp_pair();
    RawPeer peer(fds.second);
    const auto bytes = repl::encode(hello_of(ident("beta", "alpha")));
    repl::Header h{repl::Type::Hello};
    h.length = uint32_t(bytes.size());
    peer.write_bytes(repl::encode_header(h));
    peer.write_bytes(std::span(bytes).first(bytes.size() / 2));
    const auto timeout = 300ms;
    const auto start = Clock::now();
    auto o = try_establish(fds.first, ident("alpha", "beta"), timeout);
    const auto took = Clock::now() - start;
    ASSERT_FALSE(o.link);
    EXPECT_NE(o.error.find("handshake timed out after 300 ms (waiting for the peer's Hello)"), std::string::npos)
        << o.error;
    EXPECT_GE(took, timeout);
    EXPECT_LT(took, 3 * timeout);
}

TEST(Link, SilentPeerIsBoundedByTheTimeout) {
    auto fds = unix_pair();
    RawPeer peer(fds.second);
    const auto start = Clock::now();
    auto o = try_establish(fds.first, ident("alpha", "beta"), 200ms);
    EXPECT_LT(Clock::now() - start, 600ms);
    EXPECT_NE(o.error.find("handshake timed out"), std::string::npos) << o.error;
}

TEST(Link, EofMidHandshake) {
    auto fds = tcp_pair();
    {
        RawPeer peer(fds.second);
        const auto bytes = repl::encode(hello_of(ident("beta", "alpha")));
        repl::Header h{repl::Type::Hello};
        h.length = uint32_t(bytes.size());
        peer.write_bytes(repl::encode_header(h));
        peer.write_bytes(std::span(bytes).first(10));
    }  // closed
    auto o = try_establish(fds.first, ident("alpha", "beta"));
    ASSERT_FALSE(o.link);
    EXPECT_NE(o.error.find("connection closed by the peer during the handshake (waiting for the peer's Hello)"),
              std::string::npos)
        << o.error;

    // After a complete Hello, before the Auth.
    fds = tcp_pair();
    {
        RawPeer peer(fds.second);
        peer.write_frame({repl::Type::Hello}, repl::encode(hello_of(ident("beta", "alpha"))));
    }
    o = try_establish(fds.first, ident("alpha", "beta"));
    EXPECT_NE(o.error.find("during the handshake"), std::string::npos) << o.error;
}

// A peer that knows the secret but sends a bad frame after the handshake: the link ends with the
// peer's address and what was wrong.
TEST(Link, BadFrameAfterHandshakeEndsTheLink) {
    struct Case {
        std::vector<uint8_t> bytes;
        std::string reason;
    };
    repl::Header ping_with_payload{repl::Type::Ping};
    ping_with_payload.length = 5;
    auto unknown = repl::encode_header({repl::Type::Ping});
    unknown[5] = 99;
    auto hello = repl::encode_header({repl::Type::Hello, 0, 0, 0, uint32_t(repl::kHelloMin)});
    std::vector<Case> cases = {
        {std::vector<uint8_t>(unknown.begin(), unknown.end()), "bad frame: unknown frame type 99"},
        {[&] { auto h = repl::encode_header(ping_with_payload); return std::vector<uint8_t>(h.begin(), h.end()); }(),
         "bad frame: Ping frame with a 5-byte payload (expected none)"},
        {std::vector<uint8_t>(32, 0x41), "bad frame: bad magic 0x41414141"},
        {std::vector<uint8_t>(hello.begin(), hello.end()), "protocol error: a Hello frame after the handshake"},
    };
    for (const auto& c : cases) {
        auto fds = tcp_pair();
        auto fake = std::async(std::launch::async, [fd = fds.second, &c] {
            RawPeer peer(fd);
            if (!peer.handshake(ident("beta", "alpha"))) return false;
            peer.write_bytes(c.bytes);
            char x;
            (void)::recv(peer.fd, &x, 1, 0);  // until the link closes
            return true;
        });
        auto o = try_establish(fds.first, ident("alpha", "beta"));
        ASSERT_TRUE(o.link) << o.error;
        repl::Header h;
        std::vector<uint8_t> p;
        EXPECT_FALSE(o.link->recv(h, p));
        EXPECT_NE(o.link->reason().find(c.reason), std::string::npos) << o.link->reason();
        EXPECT_TRUE(o.link->reason().starts_with(o.link->peer() + ": ")) << o.link->reason();
        EXPECT_THROW(o.link->send({repl::Type::Ping}), LinkError);  // the whole link has ended
        o.link.reset();
        EXPECT_TRUE(fake.get());
    }
}

// A man in the middle flips one byte of an encrypted record: the receiver ends the link.
TEST(Link, TamperedEncryptedRecordEndsTheLink) {
    auto left = tcp_pair();   // alpha <-> relay
    auto right = tcp_pair();  // relay <-> beta
    std::atomic<bool> flip{false}, stop{false};
    auto relay = [&](int from, int to, bool may_flip) {
        std::vector<uint8_t> buf(1 << 16);
        while (!stop) {
            pollfd p{from, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            ssize_t r = ::recv(from, buf.data(), buf.size(), 0);
            if (r <= 0) break;
            if (may_flip && r > 4 && flip.exchange(false)) buf[size_t(r) - 1] ^= 0x01;
            if (::send(to, buf.data(), size_t(r), MSG_NOSIGNAL) != r) break;
        }
        ::shutdown(to, SHUT_WR);
    };
    std::thread t1(relay, left.second, right.first, true), t2(relay, right.first, left.second, false);
    auto a = ident("alpha", "beta"), b = ident("beta", "alpha");
    a.encrypt = true;
    auto [oa, ob] = establish_both({left.first, right.second}, a, b);
    ASSERT_TRUE(oa.link && ob.link) << oa.error << ob.error;
    ASSERT_TRUE(ob.link->encrypted());

    repl::Header h;
    std::vector<uint8_t> p;
    oa.link->send({repl::Type::Write, 0, 1, 0}, pattern(4096, 1));
    ASSERT_TRUE(ob.link->recv(h, p)) << ob.link->reason();  // untouched: fine
    flip = true;
    oa.link->send({repl::Type::Write, 0, 2, 4096}, pattern(4096, 2));
    EXPECT_FALSE(ob.link->recv(h, p));
    EXPECT_NE(ob.link->reason().find("decryption failed: tampered or wrong key"), std::string::npos)
        << ob.link->reason();
    stop = true;
    t1.join();
    t2.join();
    for (int fd : {left.second, right.first}) ::close(fd);
}

TEST(Link, OwnConfigurationErrors) {
    auto error_for = [](const LinkIdentity& id) {
        auto fds = unix_pair();
        RawPeer peer(fds.second);
        auto o = try_establish(fds.first, id);
        EXPECT_FALSE(o.link);
        EXPECT_EQ(peer.refusal(), "");  // nothing sent: not the peer's fault
        return o.error;
    };
    auto a = ident("alpha", "beta");
    a.secret = "";
    EXPECT_NE(error_for(a).find("no shared secret configured for replica r0"), std::string::npos);
    a = ident("alpha", "alpha");
    EXPECT_NE(error_for(a).find("our node and the expected peer are both alpha"), std::string::npos);
    a = ident("alpha", "beta");
    a.replica = "has space";
    EXPECT_NE(error_for(a).find("configuration cannot be sent"), std::string::npos);
}

// ---- throughput (printed only) -------------------------------------------------------------------

TEST(Link, ThroughputOf1MiBFrames) {
    for (bool enc : {false, true}) {
        auto [a, b] = connected(enc, false);
        constexpr int kFrames = 384;
        const auto data = pattern(1 << 20, 5);
        const auto start = Clock::now();
        std::thread t([&, &a = a] {
            for (int i = 0; i < kFrames; ++i) a->send({repl::Type::Write, 0, uint64_t(i)}, data);
        });
        repl::Header h;
        std::vector<uint8_t> p;
        int got = 0;
        while (got < kFrames && b->recv(h, p)) ++got;
        t.join();
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        EXPECT_EQ(got, kFrames) << b->reason();
        std::printf("[ info     ] %s: %d x 1 MiB over TCP loopback in %.3f s: %.0f MB/s\n", enc ? "encrypted" : "clear",
                    kFrames, s, kFrames * 1.048576 / s);
    }
}

}  // namespace duet::replication
