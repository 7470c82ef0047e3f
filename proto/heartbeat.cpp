// Heartbeat packet codec. Layout and rules: docs/protocol.md, "Heartbeat packet".
#include "proto/heartbeat.hpp"


#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <stdexcept>

#include "proto/bytes.hpp"

namespace duet::proto {

namespace {

constexpr std::array<uint8_t, 4> kMagic{'D', 'U', 'H', 'B'};
constexpr size_t kMacSize = 32;
// magic, version, cluster id, generation, sequence, state, interval, name length.
constexpr size_t kFixedSize = 4 + 1 + 8 + 8 + 8 + 1 + 4 + 1;
// The smallest structurally complete packet: fixed fields, an empty name (rejected later as
// Malformed), the TLV area length and the MAC.
constexpr size_t kMinSize = kFixedSize + 2 + kMacSize;
constexpr size_t kTlvHeaderSize = 4;

bool valid_name_char(uint8_t c) { return c >= 0x21 && c <= 0x7e; }

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kNodeNameMax) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return valid_name_char(static_cast<uint8_t>(c)); });
}

bool valid_state(uint8_t s) {
    return s == static_cast<uint8_t>(NodeState::Starting) || s == static_cast<uint8_t>(NodeState::Active) ||
           s == static_cast<uint8_t>(NodeState::Leaving);
}

void put_u8(std::vector<uint8_t>& out, uint8_t v) { out.push_back(v); }
void put_u16(std::vector<uint8_t>& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

using Reader = ByteReader;

// HMAC-SHA256 of `data` under `key`. `key` must be non-empty.
std::array<uint8_t, kMacSize> hmac_sha256(std::string_view key, std::span<const uint8_t> data) {
    std::array<uint8_t, kMacSize> mac{};
    unsigned int len = 0;
    // HMAC() wants a non-null data pointer even for zero-length input.
    static const uint8_t kEmpty = 0;
    const uint8_t* p = data.empty() ? &kEmpty : data.data();
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), p, data.size(), mac.data(), &len) == nullptr ||
        len != kMacSize)
        throw std::runtime_error("heartbeat: HMAC-SHA256 failed in OpenSSL");
    return mac;
}

}  // namespace

uint64_t cluster_id_of(std::string_view cluster_name) {
    std::array<uint8_t, 32> digest{};
    unsigned int len = 0;
    if (EVP_Digest(cluster_name.data(), cluster_name.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 ||
        len != digest.size())
        throw std::runtime_error("heartbeat: SHA-256 failed in OpenSSL");
    uint64_t id = 0;
    for (size_t i = 0; i < 8; ++i) id = (id << 8) | digest[i];
    return id;
}

std::vector<uint8_t> encode(const Heartbeat& hb, std::string_view key) {
    if (key.empty()) throw std::invalid_argument("heartbeat: empty authentication key");
    if (!valid_name(hb.node))
        throw std::invalid_argument("heartbeat: node name must be 1..64 printable ASCII characters without spaces");
    if (!valid_state(static_cast<uint8_t>(hb.state)))
        throw std::invalid_argument("heartbeat: invalid node state " + std::to_string(static_cast<unsigned>(hb.state)));

    size_t tlv_area = 0;
    for (const auto& t : hb.tlvs) {
        if (t.value.size() > UINT16_MAX)
            throw std::invalid_argument("heartbeat: TLV type " + std::to_string(t.type) + " value longer than 65535 bytes");
        tlv_area += kTlvHeaderSize + t.value.size();
    }
    const size_t total = kFixedSize + hb.node.size() + 2 + tlv_area + kMacSize;
    if (total > kHeartbeatMaxSize)
        throw std::invalid_argument("heartbeat: packet would be " + std::to_string(total) + " bytes, more than " +
                                    std::to_string(kHeartbeatMaxSize));

    std::vector<uint8_t> out;
    out.reserve(total);
    out.insert(out.end(), kMagic.begin(), kMagic.end());
    put_u8(out, kHeartbeatVersion);
    put_u64(out, hb.cluster_id);
    put_u64(out, hb.generation);
    put_u64(out, hb.sequence);
    put_u8(out, static_cast<uint8_t>(hb.state));
    put_u32(out, hb.interval_ms);
    put_u8(out, static_cast<uint8_t>(hb.node.size()));
    out.insert(out.end(), hb.node.begin(), hb.node.end());
    put_u16(out, static_cast<uint16_t>(tlv_area));  // <= 1400 by the size check above
    for (const auto& t : hb.tlvs) {
        put_u16(out, t.type);
        put_u16(out, static_cast<uint16_t>(t.value.size()));
        out.insert(out.end(), t.value.begin(), t.value.end());
    }
    const auto mac = hmac_sha256(key, out);
    out.insert(out.end(), mac.begin(), mac.end());
    return out;
}

const char* to_string(DecodeError e) {
    switch (e) {
        case DecodeError::None: return "ok";
        case DecodeError::Truncated: return "truncated";
        case DecodeError::Oversized: return "oversized";
        case DecodeError::BadMagic: return "bad magic";
        case DecodeError::BadVersion: return "unsupported version";
        case DecodeError::Malformed: return "malformed";
        case DecodeError::WrongCluster: return "wrong cluster";
        case DecodeError::BadMac: return "bad MAC";
    }
    return "unknown";
}

DecodeResult decode(std::span<const uint8_t> bytes, uint64_t expected_cluster_id, std::string_view key) {
    DecodeResult r;
    auto fail = [&r](DecodeError e) {
        r.error = e;
        r.hb = Heartbeat{};
        return r;
    };

    // 1. Size.
    if (bytes.size() > kHeartbeatMaxSize) return fail(DecodeError::Oversized);
    if (bytes.size() < kMinSize) return fail(DecodeError::Truncated);

    // 2. Magic, 3. version.
    if (!std::equal(kMagic.begin(), kMagic.end(), bytes.begin())) return fail(DecodeError::BadMagic);
    if (bytes[4] != kHeartbeatVersion) return fail(DecodeError::BadVersion);

    // 4. Structure. The size check guarantees the fixed fields are present.
    Reader rd(bytes);
    rd.take(5);
    Heartbeat& hb = r.hb;
    hb.cluster_id = rd.u64();
    hb.generation = rd.u64();
    hb.sequence = rd.u64();
    const uint8_t state = rd.u8();
    hb.interval_ms = rd.u32();
    const uint8_t name_len = rd.u8();
    if (!valid_state(state)) return fail(DecodeError::Malformed);
    hb.state = static_cast<NodeState>(state);
    if (name_len == 0 || name_len > kNodeNameMax) return fail(DecodeError::Malformed);
    const auto name = rd.take(name_len);
    if (!rd.ok()) return fail(DecodeError::Truncated);
    if (!std::all_of(name.begin(), name.end(), valid_name_char)) return fail(DecodeError::Malformed);
    hb.node.assign(name.begin(), name.end());

    const uint16_t tlv_area = rd.u16();
    if (!rd.ok()) return fail(DecodeError::Truncated);
    const size_t body_end = rd.pos() + tlv_area;  // where the MAC starts
    if (rd.remaining() < size_t{tlv_area} + kMacSize) return fail(DecodeError::Truncated);
    if (rd.remaining() > size_t{tlv_area} + kMacSize) return fail(DecodeError::Malformed);  // trailing bytes
    while (rd.pos() < body_end) {
        if (body_end - rd.pos() < kTlvHeaderSize) return fail(DecodeError::Malformed);
        Tlv t;
        t.type = rd.u16();
        const uint16_t len = rd.u16();
        if (body_end - rd.pos() < len) return fail(DecodeError::Malformed);  // runs past the TLV area
        const auto value = rd.take(len);
        t.value.assign(value.begin(), value.end());
        hb.tlvs.push_back(std::move(t));
    }
    if (!rd.ok() || rd.pos() != body_end || rd.remaining() != kMacSize) return fail(DecodeError::Malformed);

    // 5. Cluster.
    if (hb.cluster_id != expected_cluster_id) return fail(DecodeError::WrongCluster);

    // 6. MAC, in constant time. An empty key authenticates nothing (encode refuses it).
    if (key.empty()) return fail(DecodeError::BadMac);
    const auto expected = hmac_sha256(key, bytes.first(body_end));
    if (CRYPTO_memcmp(expected.data(), bytes.data() + body_end, kMacSize) != 0) return fail(DecodeError::BadMac);

    r.error = DecodeError::None;
    return r;
}

// ReplayWindow: bit (seq mod kWindow) of bits_ records whether `seq` was seen, for the kWindow
// sequence numbers highest_-kWindow+1 .. highest_. Since 2^64 is a multiple of kWindow, the mapping
// needs no special case at the wrap of uint64_t.
bool ReplayWindow::seen(uint64_t seq) const {
    const uint64_t slot = seq % kWindow;
    return (bits_[slot / 64] >> (slot % 64)) & 1u;
}

void ReplayWindow::mark(uint64_t seq) {
    const uint64_t slot = seq % kWindow;
    bits_[slot / 64] |= uint64_t{1} << (slot % 64);
}

ReplayWindow::Verdict ReplayWindow::check_and_update(uint64_t generation, uint64_t sequence) {
    if (!any_ || generation > generation_) {
        any_ = true;
        generation_ = generation;
        highest_ = sequence;
        bits_.fill(0);
        mark(sequence);
        return Verdict::Accept;
    }
    if (generation < generation_) return Verdict::OldGeneration;

    if (sequence > highest_) {
        const uint64_t advance = sequence - highest_;
        if (advance >= kWindow) {
            bits_.fill(0);
        } else {
            // Slots highest_+1 .. sequence now stand for new sequence numbers: clear them.
            for (uint64_t s = highest_ + 1; s != sequence + 1; ++s) {
                const uint64_t slot = s % kWindow;
                bits_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
            }
        }
        highest_ = sequence;
        mark(sequence);
        return Verdict::Accept;
    }
    if (highest_ - sequence >= kWindow) return Verdict::Replay;  // too old to tell: reject
    if (seen(sequence)) return Verdict::Replay;
    mark(sequence);
    return Verdict::Accept;
}

}  // namespace duet::proto
