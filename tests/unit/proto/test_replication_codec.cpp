// Replication link codec: the documented layout (docs/protocol.md, "Replication link"), round trips of
// the header and every structured payload, every rejection, and the authentication proof.
#include "proto/replication.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

namespace duet::proto::repl {
namespace {

const std::vector<Type> kAllTypes = {Type::Hello,      Type::Auth,     Type::Refuse,    Type::State,
                                     Type::Bitmap,     Type::BitmapDone, Type::Write, Type::WriteAck,
                                     Type::Flush,      Type::FlushAck, Type::Trim,      Type::ResyncRequest,
                                     Type::ResyncData, Type::ResyncAck, Type::SyncDone, Type::Ping,
                                     Type::Pong};

// Independent big-endian writer, so the tests check the documented layout and not the encoder
// against itself.
void be(std::vector<uint8_t>& v, uint64_t x, int bytes) {
    for (int s = (bytes - 1) * 8; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

std::array<uint8_t, kHeaderSize> raw_header(uint32_t magic, uint16_t type, uint16_t flags, uint64_t id,
                                            uint64_t offset, uint32_t length, uint32_t aux) {
    std::vector<uint8_t> v;
    be(v, magic, 4);
    be(v, type, 2);
    be(v, flags, 2);
    be(v, id, 8);
    be(v, offset, 8);
    be(v, length, 4);
    be(v, aux, 4);
    std::array<uint8_t, kHeaderSize> a{};
    std::copy(v.begin(), v.end(), a.begin());
    return a;
}

// A length each type accepts.
uint32_t valid_length(Type t) {
    switch (t) {
        case Type::Hello: return kHelloMin;
        case Type::Auth: return kMacSize;
        case Type::Refuse: return 17;
        case Type::State: case Type::SyncDone: return kStateSize;
        case Type::Bitmap: return 4096;
        case Type::Trim: return kTrimSize;
        case Type::Write: case Type::ResyncData: return 1u << 20;
        default: return 0;
    }
}

Hello sample_hello() {
    Hello h;
    h.flags = kHelloEncrypt;
    h.cluster = "alpha+beta";
    h.replica = "r0";
    h.node = "alpha";
    h.size = 0x0000000180000000ull;  // 6 GiB
    for (size_t i = 0; i < kNonceSize; ++i) h.nonce[i] = uint8_t(0xa0 + i);
    return h;
}

std::vector<uint8_t> raw_hello(uint16_t version, uint16_t flags, const std::string& cluster,
                               const std::string& replica, const std::string& node, uint64_t size) {
    std::vector<uint8_t> v;
    be(v, version, 2);
    be(v, flags, 2);
    for (const auto* s : {&cluster, &replica, &node}) {
        v.push_back(uint8_t(s->size()));
        v.insert(v.end(), s->begin(), s->end());
    }
    be(v, size, 8);
    for (size_t i = 0; i < kNonceSize; ++i) v.push_back(uint8_t(i));
    return v;
}

State sample_state() {
    State s;
    s.role = Role::Primary;
    s.disk = Disk::UpToDate;
    s.flags = kStateCrashedPrimary;
    s.gen = GenIds{0x1111111111111111, 0x2222222222222222, {0x3333333333333333, 0xfffffffffffffffe}};
    s.out_of_sync = 12345;
    return s;
}

}  // namespace

// ---- header ----------------------------------------------------------------------------------

TEST(ReplicationHeader, LayoutIsAsDocumented) {
    Header h{Type::Write, kFlagFua, 0x0102030405060708, 0x1112131415161718, 4096, 0x21222324};
    const auto bytes = encode_header(h);
    EXPECT_EQ(bytes, raw_header(0x44524550, 10, 1, 0x0102030405060708, 0x1112131415161718, 4096, 0x21222324));
    EXPECT_EQ(bytes[0], 'D');
    EXPECT_EQ(bytes[1], 'R');
    EXPECT_EQ(bytes[2], 'E');
    EXPECT_EQ(bytes[3], 'P');
}

TEST(ReplicationHeader, EveryTypeRoundTrips) {
    for (Type t : kAllTypes) {
        Header h{t, 0xbeef, UINT64_MAX, 0x8000000000000001ull, valid_length(t), UINT32_MAX};
        Header out;
        ASSERT_EQ(decode_header(encode_header(h), out), Error::None) << to_string(t);
        EXPECT_EQ(out, h) << to_string(t);
        EXPECT_TRUE(header_error_detail(encode_header(h)).empty());
    }
}

TEST(ReplicationHeader, BadMagicRejected) {
    Header out{Type::Pong, 0, 77, 0, 0, 0};
    const Header before = out;
    auto b = raw_header(0x44524551, 30, 0, 1, 0, 0, 0);
    EXPECT_EQ(decode_header(b, out), Error::BadMagic);
    EXPECT_EQ(out, before);  // untouched on error
    // An HTTP request on the port.
    const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n.....";
    std::copy_n(http.begin(), kHeaderSize, b.begin());
    EXPECT_EQ(decode_header(b, out), Error::BadMagic);
    EXPECT_NE(header_error_detail(b).find("bad magic 0x47455420"), std::string::npos) << header_error_detail(b);
}

TEST(ReplicationHeader, UnknownTypesRejected) {
    for (uint16_t t : {0, 7, 9, 15, 24, 29, 32, 99, 0xffff}) {
        Header out;
        auto b = raw_header(kMagic, t, 0, 0, 0, 0, 0);
        EXPECT_EQ(decode_header(b, out), Error::BadType) << t;
        EXPECT_EQ(header_error_detail(b), "unknown frame type " + std::to_string(t));
    }
}

TEST(ReplicationHeader, OversizeRejected) {
    Header out;
    EXPECT_EQ(decode_header(raw_header(kMagic, 10, 0, 0, 0, kMaxPayload, 0), out), Error::None);
    EXPECT_EQ(out.length, kMaxPayload);
    for (uint32_t len : {kMaxPayload + 1, UINT32_MAX}) {
        auto b = raw_header(kMagic, 21, 0, 0, 0, len, 0);
        EXPECT_EQ(decode_header(b, out), Error::TooLarge) << len;
        EXPECT_NE(header_error_detail(b).find("ResyncData frame with a " + std::to_string(len) + "-byte payload"),
                  std::string::npos);
    }
    // Oversize wins over the per-type rule: a huge Ping is TooLarge.
    EXPECT_EQ(decode_header(raw_header(kMagic, 30, 0, 0, 0, kMaxPayload + 8, 0), out), Error::TooLarge);
}

TEST(ReplicationHeader, PayloadLengthMustFitTheType) {
    struct Case {
        Type t;
        std::vector<uint32_t> good, bad;
    };
    const std::vector<Case> cases = {
        {Type::Hello, {uint32_t(kHelloMin), uint32_t(kHelloMax), 100}, {0, uint32_t(kHelloMin - 1), uint32_t(kHelloMax + 1)}},
        {Type::Auth, {32}, {0, 31, 33}},
        {Type::Refuse, {0, 1, 512}, {513, 4096}},
        {Type::State, {uint32_t(kStateSize)}, {0, uint32_t(kStateSize - 1), uint32_t(kStateSize + 1)}},
        {Type::SyncDone, {uint32_t(kStateSize)}, {0, 8}},
        {Type::Bitmap, {0, 8, 4096, kMaxPayload}, {1, 7, 12, kMaxPayload - 4}},
        {Type::Trim, {8}, {0, 7, 9, 16}},
        {Type::Write, {0, 1, 4096, kMaxPayload}, {}},
        {Type::ResyncData, {0, 512, kMaxPayload}, {}},
    };
    for (const auto& c : cases) {
        for (uint32_t len : c.good) {
            EXPECT_TRUE(payload_length_ok(c.t, len)) << to_string(c.t) << " " << len;
            Header out;
            EXPECT_EQ(decode_header(raw_header(kMagic, uint16_t(c.t), 0, 0, 0, len, 0), out), Error::None);
        }
        for (uint32_t len : c.bad) {
            EXPECT_FALSE(payload_length_ok(c.t, len)) << to_string(c.t) << " " << len;
            Header out;
            auto b = raw_header(kMagic, uint16_t(c.t), 0, 0, 0, len, 0);
            EXPECT_EQ(decode_header(b, out), Error::Malformed) << to_string(c.t) << " " << len;
            EXPECT_NE(header_error_detail(b).find(std::string(to_string(c.t)) + " frame with a " +
                                                  std::to_string(len) + "-byte payload (expected"),
                      std::string::npos)
                << header_error_detail(b);
        }
    }
    for (Type t : {Type::BitmapDone, Type::WriteAck, Type::Flush, Type::FlushAck, Type::ResyncRequest,
                   Type::ResyncAck, Type::Ping, Type::Pong}) {
        EXPECT_TRUE(payload_length_ok(t, 0));
        EXPECT_FALSE(payload_length_ok(t, 1)) << to_string(t);
        EXPECT_FALSE(payload_length_ok(t, 8)) << to_string(t);
        auto b = raw_header(kMagic, uint16_t(t), 0, 0, 0, 5, 0);
        EXPECT_EQ(header_error_detail(b), std::string(to_string(t)) + " frame with a 5-byte payload (expected none)");
    }
}

// ---- Hello -----------------------------------------------------------------------------------

TEST(ReplicationHello, LayoutIsAsDocumented) {
    Hello h = sample_hello();
    for (size_t i = 0; i < kNonceSize; ++i) h.nonce[i] = uint8_t(i);
    EXPECT_EQ(encode(h), raw_hello(1, 1, "alpha+beta", "r0", "alpha", 0x0000000180000000ull));
}

TEST(ReplicationHello, RoundTrips) {
    std::vector<Hello> hellos;
    hellos.push_back(sample_hello());
    Hello small;  // shortest names, no flags, zero size
    small.cluster = "c";
    small.replica = "r";
    small.node = "n";
    hellos.push_back(small);
    Hello big = sample_hello();  // longest names, cluster with spaces, tab and UTF-8
    const std::string prefix = "Cluster \xc3\xa9t\xc3\xa9\t";
    big.cluster = prefix + std::string(kClusterNameMax - prefix.size(), 'x');
    big.replica = std::string(kNameMax, 'R');
    big.node = std::string(kNameMax, '~');
    big.size = UINT64_MAX;
    big.nonce.fill(0xff);
    hellos.push_back(big);
    Hello future = sample_hello();  // another version still decodes, so it can be reported
    future.version = 2;
    hellos.push_back(future);
    for (const auto& h : hellos) {
        const auto bytes = encode(h);
        EXPECT_GE(bytes.size(), kHelloMin);
        EXPECT_LE(bytes.size(), kHelloMax);
        EXPECT_TRUE(payload_length_ok(Type::Hello, uint32_t(bytes.size())));
        Hello out;
        ASSERT_EQ(decode(bytes, out), Error::None);
        EXPECT_EQ(out, h);
    }
    EXPECT_EQ(encode(small).size(), kHelloMin);
    EXPECT_EQ(encode(big).size(), kHelloMax);
}

TEST(ReplicationHello, EveryTruncationRejected) {
    const auto bytes = encode(sample_hello());
    for (size_t n = 0; n < bytes.size(); ++n) {
        Hello out = sample_hello();
        out.node = "untouched";
        EXPECT_EQ(decode(std::span(bytes.data(), n), out), Error::Truncated) << n;
        EXPECT_EQ(out.node, "untouched");
    }
}

TEST(ReplicationHello, TrailingBytesRejected) {
    auto bytes = encode(sample_hello());
    bytes.push_back(0);
    Hello out;
    EXPECT_EQ(decode(bytes, out), Error::Malformed);
}

TEST(ReplicationHello, BadNamesRejected) {
    const std::string ok = "ok";
    const std::string too_long(kNameMax + 1, 'n');
    const std::vector<std::array<std::string, 3>> bad = {
        {"", ok, ok},                                         // empty cluster
        {std::string(kClusterNameMax + 1, 'c'), ok, ok},      // cluster too long (length byte wraps: see below)
        {"a\x01" "b", ok, ok},                                // control character in the cluster
        {"a\x7f", ok, ok},                                    // DEL in the cluster
        {ok, "", ok},                                         // empty replica
        {ok, too_long, ok},                                   // replica too long
        {ok, "r 0", ok},                                      // space in the replica
        {ok, ok, ""},                                         // empty node
        {ok, ok, too_long},                                   // node too long
        {ok, ok, "al\xc3\xa9"},                               // non-ASCII node
        {ok, ok, "a\tb"},                                     // tab in a node name
    };
    for (const auto& [cluster, replica, node] : bad) {
        Hello h = sample_hello();
        h.cluster = cluster;
        h.replica = replica;
        h.node = node;
        EXPECT_THROW(encode(h), std::invalid_argument) << cluster << "/" << replica << "/" << node;
        if (cluster.size() > 255) continue;  // cannot be written with a one-byte length
        Hello out;
        EXPECT_EQ(decode(raw_hello(1, 0, cluster, replica, node, 1), out), Error::Malformed)
            << cluster << "/" << replica << "/" << node;
    }
}

TEST(ReplicationHello, UnknownFlagsRejected) {
    Hello out;
    EXPECT_EQ(decode(raw_hello(1, 1, "c", "r", "n", 1), out), Error::None);
    for (uint16_t flags : {2, 4, 0x8000, 0xffff}) {
        EXPECT_EQ(decode(raw_hello(1, flags, "c", "r", "n", 1), out), Error::Malformed) << flags;
        Hello h = sample_hello();
        h.flags = flags;
        EXPECT_THROW(encode(h), std::invalid_argument);
    }
}

// A name length that claims more bytes than there are: truncated, never read past the end.
TEST(ReplicationHello, NameLengthPastTheEndIsTruncated) {
    auto bytes = raw_hello(1, 0, "c", "r", "n", 1);
    bytes[4] = 200;  // cluster length
    Hello out;
    EXPECT_EQ(decode(bytes, out), Error::Truncated);
}

// ---- State -----------------------------------------------------------------------------------

TEST(ReplicationState, LayoutIsAsDocumented) {
    std::vector<uint8_t> v{2, 4, 1};
    be(v, 0x1111111111111111, 8);
    be(v, 0x2222222222222222, 8);
    be(v, 0x3333333333333333, 8);
    be(v, 0xfffffffffffffffe, 8);
    be(v, 12345, 8);
    EXPECT_EQ(encode(sample_state()), v);
    EXPECT_EQ(v.size(), kStateSize);
}

TEST(ReplicationState, EveryRoleAndDiskRoundTrips) {
    for (Role r : {Role::Secondary, Role::Primary})
        for (int d = 0; d <= 4; ++d)
            for (uint8_t f : {0, 1}) {
                State s = sample_state();
                s.role = r;
                s.disk = static_cast<Disk>(d);
                s.flags = f;
                s.out_of_sync = UINT64_MAX - d;
                State out;
                ASSERT_EQ(decode(encode(s), out), Error::None);
                EXPECT_EQ(out, s);
            }
    State zero;
    zero.gen = {};
    State out;
    ASSERT_EQ(decode(encode(zero), out), Error::None);
    EXPECT_EQ(out, zero);
}

TEST(ReplicationState, BadValuesRejected) {
    const auto good = encode(sample_state());
    auto with = [&](size_t at, uint8_t v) {
        auto b = good;
        b[at] = v;
        State out = sample_state();
        out.out_of_sync = 99;
        Error e = decode(b, out);
        if (e != Error::None) {
            EXPECT_EQ(out.out_of_sync, 99u);  // untouched on error
        }
        return e;
    };
    EXPECT_EQ(with(0, 0), Error::Malformed);  // role 0
    EXPECT_EQ(with(0, 3), Error::Malformed);  // role 3
    EXPECT_EQ(with(1, 5), Error::Malformed);  // disk 5
    EXPECT_EQ(with(1, 0xff), Error::Malformed);
    EXPECT_EQ(with(2, 2), Error::Malformed);  // unknown flag
    EXPECT_EQ(with(2, 0x80), Error::Malformed);
    EXPECT_EQ(with(1, 0), Error::None);       // Diskless is valid
    State s = sample_state();
    s.role = static_cast<Role>(0);
    EXPECT_THROW(encode(s), std::invalid_argument);
    s = sample_state();
    s.disk = static_cast<Disk>(9);
    EXPECT_THROW(encode(s), std::invalid_argument);
    s = sample_state();
    s.flags = 4;
    EXPECT_THROW(encode(s), std::invalid_argument);
}

TEST(ReplicationState, TruncatedAndTrailingRejected) {
    auto bytes = encode(sample_state());
    State out;
    for (size_t n = 0; n < bytes.size(); ++n) EXPECT_EQ(decode(std::span(bytes.data(), n), out), Error::Truncated) << n;
    bytes.push_back(0);
    EXPECT_EQ(decode(bytes, out), Error::Malformed);
}

// ---- Trim ------------------------------------------------------------------------------------

TEST(ReplicationTrim, RoundTripsIncludingMoreThan4GiB) {
    for (uint64_t len : {uint64_t(0), uint64_t(4096), uint64_t(1) << 40, UINT64_MAX}) {
        TrimBody t{len};
        const auto bytes = encode(t);
        std::vector<uint8_t> expected;
        be(expected, len, 8);
        EXPECT_EQ(bytes, expected);
        TrimBody out;
        ASSERT_EQ(decode(bytes, out), Error::None);
        EXPECT_EQ(out, t);
    }
}

TEST(ReplicationTrim, TruncatedAndTrailingRejected) {
    auto bytes = encode(TrimBody{1234});
    TrimBody out{7};
    for (size_t n = 0; n < bytes.size(); ++n) EXPECT_EQ(decode(std::span(bytes.data(), n), out), Error::Truncated);
    bytes.push_back(1);
    EXPECT_EQ(decode(bytes, out), Error::Malformed);
    EXPECT_EQ(out.length, 7u);
}

// ---- authentication --------------------------------------------------------------------------

TEST(ReplicationAuth, ProofIsTheDocumentedHmac) {
    const auto a = encode(sample_hello());
    Hello hb = sample_hello();
    hb.node = "beta";
    hb.nonce.fill(7);
    const auto b = encode(hb);
    std::vector<uint8_t> msg;
    const std::string label = "duet-replica-auth-v1";
    msg.insert(msg.end(), label.begin(), label.end());
    be(msg, a.size(), 4);
    msg.insert(msg.end(), a.begin(), a.end());
    be(msg, b.size(), 4);
    msg.insert(msg.end(), b.begin(), b.end());
    const std::string secret = "s3cret";
    std::array<uint8_t, 32> expected{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), int(secret.size()), msg.data(), msg.size(), expected.data(), &len);
    ASSERT_EQ(len, 32u);
    EXPECT_EQ(auth_proof(secret, a, b), expected);
}

TEST(ReplicationAuth, ProofBindsSecretDirectionAndNonces) {
    const auto a = encode(sample_hello());
    Hello hb = sample_hello();
    hb.node = "beta";
    const auto b = encode(hb);
    const auto p = auth_proof("secret", a, b);
    EXPECT_EQ(p, auth_proof("secret", a, b));
    EXPECT_NE(p, auth_proof("secret", b, a));   // the other direction
    EXPECT_NE(p, auth_proof("secret2", a, b));  // another secret
    Hello hb2 = hb;
    hb2.nonce[31] ^= 1;                         // another session of the peer
    EXPECT_NE(p, auth_proof("secret", a, encode(hb2)));
    Hello ha2 = sample_hello();
    ha2.nonce[0] ^= 0x80;                       // another session of ours
    EXPECT_NE(p, auth_proof("secret", encode(ha2), b));
    EXPECT_THROW(auth_proof("", a, b), std::invalid_argument);
}

TEST(ReplicationAuth, ProofEqual) {
    std::array<uint8_t, 32> x{}, y{};
    EXPECT_TRUE(proof_equal(x, y));
    y[31] = 1;
    EXPECT_FALSE(proof_equal(x, y));
    y[31] = 0;
    y[0] = 0x80;
    EXPECT_FALSE(proof_equal(x, y));
    EXPECT_FALSE(proof_equal(std::span(x.data(), 31), y));
    EXPECT_TRUE(proof_equal(std::span<const uint8_t>(), std::span<const uint8_t>()));
}

TEST(ReplicationNames, ToString) {
    EXPECT_STREQ(to_string(Type::Write), "Write");
    EXPECT_STREQ(to_string(Type::SyncDone), "SyncDone");
    EXPECT_STREQ(to_string(Role::Primary), "Primary");
    EXPECT_STREQ(to_string(Role::Secondary), "Secondary");
    EXPECT_STREQ(to_string(Disk::UpToDate), "UpToDate");
    EXPECT_STREQ(to_string(Disk::Diskless), "Diskless");
    for (Type t : kAllTypes) EXPECT_STRNE(to_string(t), "?");
    for (Error e : {Error::None, Error::BadMagic, Error::BadType, Error::TooLarge, Error::Truncated, Error::Malformed})
        EXPECT_STRNE(to_string(e), "?");
}

}  // namespace duet::proto::repl
