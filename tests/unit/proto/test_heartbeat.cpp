// Heartbeat codec: layout as documented in docs/protocol.md, round trips, every decode error,
// bit flips, truncations and sizes.
#include "proto/heartbeat.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <set>
#include <string>

namespace duet::proto {
namespace {

constexpr std::string_view kKey = "test-key-0123456789";
const uint64_t kCluster = cluster_id_of("unit-test-cluster");

// An independent writer of the documented layout, with every field overridable so tests can craft
// packets the encoder would refuse to produce. The MAC is computed here with OpenSSL directly.
struct Crafted {
    std::string magic = "DUHB";
    uint8_t version = 1;
    uint64_t cluster = kCluster;
    uint64_t generation = 0x0102030405060708;
    uint64_t sequence = 0x1112131415161718;
    uint8_t state = 2;
    uint32_t interval = 0x000007d0;
    std::string name = "alpha";
    std::optional<uint8_t> name_len;        // default: name.size()
    std::vector<uint8_t> tlv_area;          // raw TLV bytes
    std::optional<uint16_t> tlv_area_len;   // default: tlv_area.size()
    std::vector<uint8_t> trailing;          // bytes after the MAC
    std::string key = std::string(kKey);

    static void u16(std::vector<uint8_t>& v, uint16_t x) {
        v.push_back(uint8_t(x >> 8));
        v.push_back(uint8_t(x));
    }
    static void u32(std::vector<uint8_t>& v, uint32_t x) {
        for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
    }
    static void u64(std::vector<uint8_t>& v, uint64_t x) {
        for (int s = 56; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
    }
    void add_tlv(uint16_t type, const std::vector<uint8_t>& value) {
        u16(tlv_area, type);
        u16(tlv_area, uint16_t(value.size()));
        tlv_area.insert(tlv_area.end(), value.begin(), value.end());
    }
    std::vector<uint8_t> body() const {
        std::vector<uint8_t> v(magic.begin(), magic.end());
        v.push_back(version);
        u64(v, cluster);
        u64(v, generation);
        u64(v, sequence);
        v.push_back(state);
        u32(v, interval);
        v.push_back(name_len.value_or(uint8_t(name.size())));
        v.insert(v.end(), name.begin(), name.end());
        u16(v, tlv_area_len.value_or(uint16_t(tlv_area.size())));
        v.insert(v.end(), tlv_area.begin(), tlv_area.end());
        return v;
    }
    std::vector<uint8_t> bytes() const {
        auto v = body();
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        HMAC(EVP_sha256(), key.data(), int(key.size()), v.data(), v.size(), mac, &len);
        EXPECT_EQ(len, 32u);
        v.insert(v.end(), mac, mac + len);
        v.insert(v.end(), trailing.begin(), trailing.end());
        return v;
    }
};

DecodeError decode_error(const std::vector<uint8_t>& bytes, uint64_t cluster = kCluster,
                         std::string_view key = kKey) {
    return decode(bytes, cluster, key).error;
}

Heartbeat sample() {
    Heartbeat hb;
    hb.cluster_id = kCluster;
    hb.node = "alpha";
    hb.generation = 1732240000;
    hb.sequence = 42;
    hb.state = NodeState::Active;
    hb.interval_ms = 2000;
    hb.tlvs = {Tlv{7, {1, 2, 3}}, Tlv{0xfffe, {}}};
    return hb;
}

std::string random_name(std::mt19937_64& rng, size_t len) {
    std::uniform_int_distribution<int> ch(0x21, 0x7e);
    std::string s;
    for (size_t i = 0; i < len; ++i) s.push_back(char(ch(rng)));
    return s;
}

Heartbeat random_heartbeat(std::mt19937_64& rng) {
    Heartbeat hb;
    hb.cluster_id = rng();
    hb.generation = rng();
    hb.sequence = rng();
    hb.state = static_cast<NodeState>(1 + rng() % 3);
    hb.interval_ms = uint32_t(rng());
    hb.node = random_name(rng, 1 + rng() % kNodeNameMax);
    size_t room = kHeartbeatMaxSize - (35 + hb.node.size() + 2 + 32);
    const size_t ntlv = rng() % 6;
    for (size_t i = 0; i < ntlv && room >= 4; ++i) {
        Tlv t;
        t.type = uint16_t(rng());
        const size_t len = rng() % std::min<size_t>(room - 4 + 1, 300);
        for (size_t j = 0; j < len; ++j) t.value.push_back(uint8_t(rng()));
        room -= 4 + len;
        hb.tlvs.push_back(std::move(t));
    }
    return hb;
}

TEST(ClusterId, FirstEightBytesOfSha256BigEndian) {
    // SHA-256("")    = e3b0c44298fc1c14 9afbf4c8...
    // SHA-256("abc") = ba7816bf8f01cfea 414140de...
    EXPECT_EQ(cluster_id_of(""), 0xe3b0c44298fc1c14ull);
    EXPECT_EQ(cluster_id_of("abc"), 0xba7816bf8f01cfeaull);
    EXPECT_NE(cluster_id_of("cluster-a"), cluster_id_of("cluster-b"));
}

TEST(HeartbeatLayout, EncoderWritesTheDocumentedBytes) {
    Heartbeat hb = sample();
    Crafted c;
    c.generation = hb.generation;
    c.sequence = hb.sequence;
    c.state = 2;
    c.interval = 2000;
    c.add_tlv(7, {1, 2, 3});
    c.add_tlv(0xfffe, {});
    const auto expected = c.bytes();
    const auto got = encode(hb, kKey);
    EXPECT_EQ(got, expected);
    // Spot-check offsets from the table in docs/protocol.md.
    ASSERT_GE(got.size(), 40u);
    EXPECT_EQ(std::string(got.begin(), got.begin() + 4), "DUHB");
    EXPECT_EQ(got[4], 1);
    EXPECT_EQ(got[29], 2);                       // state
    EXPECT_EQ(got[30], 0x00);                    // interval 2000 = 0x000007d0
    EXPECT_EQ(got[32], 0x07);
    EXPECT_EQ(got[33], 0xd0);
    EXPECT_EQ(got[34], 5);                       // name length
    EXPECT_EQ(got.size(), 35u + 5 + 2 + (4 + 3) + 4 + 32);
}

TEST(HeartbeatLayout, CraftedPacketDecodes) {
    Crafted c;
    c.add_tlv(1, {9});
    const auto r = decode(c.bytes(), kCluster, kKey);
    ASSERT_EQ(r.error, DecodeError::None) << to_string(r.error);
    EXPECT_EQ(r.hb.cluster_id, kCluster);
    EXPECT_EQ(r.hb.generation, 0x0102030405060708u);
    EXPECT_EQ(r.hb.sequence, 0x1112131415161718u);
    EXPECT_EQ(r.hb.state, NodeState::Active);
    EXPECT_EQ(r.hb.interval_ms, 2000u);
    EXPECT_EQ(r.hb.node, "alpha");
    ASSERT_EQ(r.hb.tlvs.size(), 1u);
    EXPECT_EQ(r.hb.tlvs[0], (Tlv{1, {9}}));
}

TEST(HeartbeatRoundTrip, RandomFieldValues) {
    std::mt19937_64 rng(20261122);
    for (int i = 0; i < 2000; ++i) {
        const Heartbeat hb = random_heartbeat(rng);
        const auto bytes = encode(hb, kKey);
        ASSERT_LE(bytes.size(), kHeartbeatMaxSize);
        const auto r = decode(bytes, hb.cluster_id, kKey);
        ASSERT_EQ(r.error, DecodeError::None) << "iteration " << i << ": " << to_string(r.error);
        ASSERT_EQ(r.hb, hb) << "iteration " << i;
        ASSERT_EQ(encode(r.hb, kKey), bytes);
    }
}

TEST(HeartbeatRoundTrip, AllStatesAndExtremeValues) {
    for (auto st : {NodeState::Starting, NodeState::Active, NodeState::Leaving}) {
        for (uint64_t v : {uint64_t{0}, uint64_t{1}, UINT64_MAX}) {
            Heartbeat hb = sample();
            hb.state = st;
            hb.cluster_id = v;
            hb.generation = v;
            hb.sequence = v;
            hb.interval_ms = uint32_t(v);
            hb.tlvs.clear();
            const auto r = decode(encode(hb, kKey), v, kKey);
            ASSERT_EQ(r.error, DecodeError::None);
            EXPECT_EQ(r.hb, hb);
        }
    }
}

TEST(HeartbeatRoundTrip, MaxLengthNameAndMaxSize) {
    Heartbeat hb = sample();
    hb.node = std::string(kNodeNameMax, 'n');
    hb.node.front() = '!';
    hb.node.back() = '~';
    hb.tlvs.clear();
    const size_t base = encode(hb, kKey).size();
    EXPECT_EQ(base, 35u + kNodeNameMax + 2 + 32);
    // One TLV filling the packet to exactly kHeartbeatMaxSize.
    hb.tlvs.push_back(Tlv{0x1234, std::vector<uint8_t>(kHeartbeatMaxSize - base - 4, 0xab)});
    const auto bytes = encode(hb, kKey);
    EXPECT_EQ(bytes.size(), kHeartbeatMaxSize);
    const auto r = decode(bytes, kCluster, kKey);
    ASSERT_EQ(r.error, DecodeError::None);
    EXPECT_EQ(r.hb, hb);
    // One more byte no longer fits.
    hb.tlvs.back().value.push_back(0);
    EXPECT_THROW(encode(hb, kKey), std::invalid_argument);
}

TEST(HeartbeatRoundTrip, UnknownTlvsAreCarriedInOrder) {
    Heartbeat hb = sample();
    hb.tlvs = {Tlv{0, {}}, Tlv{0xffff, {0}}, Tlv{5, {1}}, Tlv{5, {2}}, Tlv{300, std::vector<uint8_t>(200, 7)}};
    const auto r = decode(encode(hb, kKey), kCluster, kKey);
    ASSERT_EQ(r.error, DecodeError::None);
    EXPECT_EQ(r.hb.tlvs, hb.tlvs);
}

TEST(HeartbeatEncode, RejectsWhatCannotBeSent) {
    auto with_name = [](std::string n) {
        Heartbeat hb = sample();
        hb.node = std::move(n);
        return hb;
    };
    EXPECT_THROW(encode(with_name(""), kKey), std::invalid_argument);
    EXPECT_THROW(encode(with_name(std::string(kNodeNameMax + 1, 'a')), kKey), std::invalid_argument);
    EXPECT_THROW(encode(with_name("two words"), kKey), std::invalid_argument);
    EXPECT_THROW(encode(with_name("tab\there"), kKey), std::invalid_argument);
    EXPECT_THROW(encode(with_name("del\x7f"), kKey), std::invalid_argument);
    EXPECT_THROW(encode(with_name("caf\xc3\xa9"), kKey), std::invalid_argument);
    EXPECT_NO_THROW(encode(with_name(std::string(kNodeNameMax, 'a')), kKey));

    Heartbeat bad_state = sample();
    bad_state.state = static_cast<NodeState>(0);
    EXPECT_THROW(encode(bad_state, kKey), std::invalid_argument);
    bad_state.state = static_cast<NodeState>(4);
    EXPECT_THROW(encode(bad_state, kKey), std::invalid_argument);

    EXPECT_THROW(encode(sample(), ""), std::invalid_argument);

    Heartbeat huge = sample();
    huge.tlvs = {Tlv{1, std::vector<uint8_t>(70000, 0)}};
    EXPECT_THROW(encode(huge, kKey), std::invalid_argument);
}

// --- every DecodeError, from crafted packets -------------------------------------------------

TEST(HeartbeatDecode, Oversized) {
    EXPECT_EQ(decode_error(std::vector<uint8_t>(kHeartbeatMaxSize + 1, 0)), DecodeError::Oversized);
    Crafted c;
    c.add_tlv(1, std::vector<uint8_t>(kHeartbeatMaxSize, 0));  // a valid MAC over a too-long body
    EXPECT_EQ(decode_error(c.bytes()), DecodeError::Oversized);
    EXPECT_EQ(decode_error(std::vector<uint8_t>(65536, 0xff)), DecodeError::Oversized);
}

TEST(HeartbeatDecode, Truncated) {
    EXPECT_EQ(decode_error({}), DecodeError::Truncated);
    EXPECT_EQ(decode_error({'D', 'U', 'H', 'B', 1}), DecodeError::Truncated);
    // Shorter than fixed fields + empty name + TLV length + MAC (69 bytes), even with good magic.
    Crafted c;
    auto b = c.bytes();
    b.resize(68);
    EXPECT_EQ(decode_error(b), DecodeError::Truncated);
    // The name runs past the end.
    Crafted longname;
    longname.name = std::string(64, 'x');
    auto ln = longname.bytes();
    ln.resize(35 + 40);
    EXPECT_EQ(decode_error(ln), DecodeError::Truncated);
    // The TLV area claims more than the packet holds.
    Crafted area;
    area.add_tlv(1, {1, 2, 3});
    area.tlv_area_len = uint16_t(area.tlv_area.size() + 1);
    EXPECT_EQ(decode_error(area.bytes()), DecodeError::Truncated);
    // The MAC is missing its last byte.
    auto nomac = Crafted{}.bytes();
    nomac.pop_back();
    EXPECT_EQ(decode_error(nomac), DecodeError::Truncated);
}

TEST(HeartbeatDecode, BadMagic) {
    for (const char* m : {"DUHC", "duhb", "XXXX", "DUCT"}) {
        Crafted c;
        c.magic = m;
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::BadMagic) << m;
    }
}

TEST(HeartbeatDecode, BadVersion) {
    for (uint8_t v : {0, 2, 255}) {
        Crafted c;
        c.version = v;
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::BadVersion) << int(v);
    }
}

TEST(HeartbeatDecode, Malformed) {
    auto expect_malformed = [](const Crafted& c, const char* what) {
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::Malformed) << what;
    };
    {
        Crafted c;
        c.state = 0;
        expect_malformed(c, "state 0");
        c.state = 4;
        expect_malformed(c, "state 4");
        c.state = 0xff;
        expect_malformed(c, "state 255");
    }
    {
        Crafted c;
        c.name = "";
        c.add_tlv(1, std::vector<uint8_t>(10, 0));  // keep the packet above the minimum size
        expect_malformed(c, "empty name");
    }
    {
        Crafted c;
        c.name = std::string(65, 'a');
        expect_malformed(c, "65-byte name");
    }
    for (const std::string& bad : std::vector<std::string>{"a b", "a\tb", std::string("a\0b", 3), "a\x7f", "\xff"}) {
        Crafted c;
        c.name = bad;
        expect_malformed(c, "bad name character");
    }
    {
        Crafted c;
        c.trailing = {0};
        expect_malformed(c, "one trailing byte");
    }
    {
        Crafted c;
        c.add_tlv(1, {1, 2, 3});
        c.tlv_area.pop_back();  // the TLV's value runs past the TLV area
        expect_malformed(c, "TLV value past the area");
    }
    {
        Crafted c;
        c.add_tlv(1, {1});
        c.tlv_area.push_back(0);  // three stray bytes: not a whole TLV header
        c.tlv_area.push_back(0);
        c.tlv_area.push_back(0);
        expect_malformed(c, "partial TLV header");
    }
    {
        Crafted c;
        c.tlv_area_len = 0;       // area says empty, but the TLV bytes precede the MAC
        c.add_tlv(1, {1});
        expect_malformed(c, "TLV bytes outside the declared area");
    }
}

TEST(HeartbeatDecode, WrongCluster) {
    Crafted c;
    c.cluster = kCluster ^ 1;
    EXPECT_EQ(decode_error(c.bytes()), DecodeError::WrongCluster);
    EXPECT_EQ(decode_error(Crafted{}.bytes(), cluster_id_of("another")), DecodeError::WrongCluster);
}

TEST(HeartbeatDecode, BadMac) {
    const auto good = encode(sample(), kKey);
    EXPECT_EQ(decode_error(good), DecodeError::None);
    EXPECT_EQ(decode_error(good, kCluster, "test-key-0123456788"), DecodeError::BadMac);
    EXPECT_EQ(decode_error(good, kCluster, "other"), DecodeError::BadMac);
    EXPECT_EQ(decode_error(good, kCluster, ""), DecodeError::BadMac);
    Crafted c;
    c.key = "not the key";
    EXPECT_EQ(decode_error(c.bytes()), DecodeError::BadMac);
    // Nothing is authenticated by an empty key, even a packet sealed with one.
    Crafted empty;
    empty.key = "";
    EXPECT_EQ(decode_error(empty.bytes(), kCluster, ""), DecodeError::BadMac);
}

TEST(HeartbeatDecode, ChecksRunInTheDocumentedOrder) {
    {   // oversized beats everything
        Crafted c;
        c.magic = "XXXX";
        c.add_tlv(1, std::vector<uint8_t>(kHeartbeatMaxSize, 0));
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::Oversized);
    }
    {   // magic before version
        Crafted c;
        c.magic = "XXXX";
        c.version = 9;
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::BadMagic);
    }
    {   // version before structure
        Crafted c;
        c.version = 9;
        c.state = 0;
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::BadVersion);
    }
    {   // structure before cluster and MAC
        Crafted c;
        c.state = 0;
        c.cluster = 1;
        c.key = "wrong";
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::Malformed);
    }
    {   // cluster before MAC
        Crafted c;
        c.cluster = 1;
        c.key = "wrong";
        EXPECT_EQ(decode_error(c.bytes()), DecodeError::WrongCluster);
    }
}

TEST(HeartbeatDecode, FailedDecodeReturnsNoData) {
    Crafted c;
    c.key = "wrong";
    const auto r = decode(c.bytes(), kCluster, kKey);
    EXPECT_EQ(r.error, DecodeError::BadMac);
    EXPECT_EQ(r.hb, Heartbeat{});
}

TEST(HeartbeatDecode, EverySingleBitFlipIsRejected) {
    std::mt19937_64 rng(7);
    std::vector<Heartbeat> samples = {sample()};
    for (int i = 0; i < 3; ++i) {
        Heartbeat hb = random_heartbeat(rng);
        hb.cluster_id = kCluster;
        samples.push_back(hb);
    }
    for (const auto& hb : samples) {
        const auto good = encode(hb, kKey);
        ASSERT_EQ(decode_error(good), DecodeError::None);
        for (size_t byte = 0; byte < good.size(); ++byte) {
            for (int bit = 0; bit < 8; ++bit) {
                auto b = good;
                b[byte] ^= uint8_t(1u << bit);
                const auto e = decode_error(b);
                ASSERT_NE(e, DecodeError::None) << "byte " << byte << " bit " << bit;
                if (byte < 4) {
                    ASSERT_EQ(e, DecodeError::BadMagic);
                } else if (byte == 4) {
                    ASSERT_EQ(e, DecodeError::BadVersion);
                } else if (byte < 13) {
                    ASSERT_EQ(e, DecodeError::WrongCluster) << "cluster byte " << byte;
                } else if (byte >= good.size() - 32) {
                    ASSERT_EQ(e, DecodeError::BadMac) << "MAC byte " << byte;
                }
            }
        }
    }
}

TEST(HeartbeatDecode, EveryTruncationIsRejected) {
    Heartbeat hb = sample();
    hb.node = std::string(kNodeNameMax, 'z');
    hb.tlvs.push_back(Tlv{9, std::vector<uint8_t>(100, 1)});
    const auto good = encode(hb, kKey);
    for (size_t len = 0; len < good.size(); ++len) {
        // An exact-size copy, so a sanitizer build catches any read past the end.
        const std::vector<uint8_t> prefix(good.begin(), good.begin() + std::ptrdiff_t(len));
        // Cutting bytes off never leaves trailing bytes, so it is always reported as truncation.
        EXPECT_EQ(decode_error(prefix), DecodeError::Truncated) << "length " << len;
    }
    // Growing a valid packet is rejected too.
    auto longer = good;
    longer.push_back(0);
    EXPECT_EQ(decode_error(longer), DecodeError::Malformed);
}

TEST(HeartbeatDecode, RandomGarbageIsRejected) {
    std::mt19937_64 rng(99);
    for (int i = 0; i < 20000; ++i) {
        std::vector<uint8_t> b(rng() % (kHeartbeatMaxSize + 50));
        for (auto& x : b) x = uint8_t(rng());
        if (i % 2 == 0 && b.size() >= 5) {  // half with a good magic and version, to reach the parser
            b[0] = 'D', b[1] = 'U', b[2] = 'H', b[3] = 'B', b[4] = 1;
        }
        ASSERT_NE(decode_error(b), DecodeError::None) << "iteration " << i;
    }
}

TEST(HeartbeatDecode, ErrorNamesAreDistinct) {
    std::set<std::string> names;
    for (auto e : {DecodeError::None, DecodeError::Truncated, DecodeError::Oversized, DecodeError::BadMagic,
                   DecodeError::BadVersion, DecodeError::Malformed, DecodeError::WrongCluster, DecodeError::BadMac})
        names.insert(to_string(e));
    EXPECT_EQ(names.size(), 8u);
}

}  // namespace
}  // namespace duet::proto
