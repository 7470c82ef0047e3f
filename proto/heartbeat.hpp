// Heartbeat packet codec: bytes <-> struct, HMAC-SHA256 sealed. No I/O. Spec: docs/protocol.md.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duet::proto {

inline constexpr size_t kHeartbeatMaxSize = 1400;   // larger datagrams are rejected unread
inline constexpr size_t kNodeNameMax = 64;
inline constexpr uint8_t kHeartbeatVersion = 1;

// What the sender says about itself.
enum class NodeState : uint8_t {
    Starting = 1,  // within initdead, has not yet decided
    Active = 2,    // running normally
    Leaving = 3,   // shutting down cleanly (peer may take over at once)
};

// An optional typed field (type-length-value). Unknown types are carried and ignored, so later
// versions can add fields (group states, outdate requests) without breaking older peers.
struct Tlv {
    uint16_t type = 0;
    std::vector<uint8_t> value;
    bool operator==(const Tlv&) const = default;
};

struct Heartbeat {
    uint64_t cluster_id = 0;   // cluster_id_of(cluster name)
    std::string node;          // sender's node name, 1..64 bytes
    uint64_t generation = 0;   // sender's boot generation
    uint64_t sequence = 0;     // per-packet, strictly increasing within a generation
    NodeState state = NodeState::Starting;
    uint32_t interval_ms = 0;  // sender's keepalive
    std::vector<Tlv> tlvs;
    bool operator==(const Heartbeat&) const = default;
};

// First 8 bytes of SHA-256 of the cluster name, big-endian.
uint64_t cluster_id_of(std::string_view cluster_name);

// Serialises and appends the HMAC-SHA256 under `key`.
std::vector<uint8_t> encode(const Heartbeat& hb, std::string_view key);

enum class DecodeError {
    None,
    Truncated,     // shorter than the fixed header + MAC, or a field runs past the end
    Oversized,     // longer than kHeartbeatMaxSize
    BadMagic,      // not a Duet heartbeat
    BadVersion,    // version we do not speak
    Malformed,     // fields inconsistent (bad name length, bad state, trailing bytes, ...)
    WrongCluster,  // cluster id differs from the expected one
    BadMac,        // authentication failed
};
const char* to_string(DecodeError e);

struct DecodeResult {
    DecodeError error = DecodeError::None;
    Heartbeat hb;  // valid only when error == None
};

// Parses and authenticates. Checks run in this order: size, magic, version, structure, cluster,
// MAC. The MAC is compared in constant time. Never reads outside `bytes`.
DecodeResult decode(std::span<const uint8_t> bytes, uint64_t expected_cluster_id, std::string_view key);

// Anti-replay window per sender (like IPsec's): accepts a sequence number once, if it is newer than
// the newest seen or within the last `kWindow` and not yet seen; a newer generation resets the window,
// an older generation is rejected. Packets are sent with one sequence number per copy per path, so
// copies arriving out of order over different paths are all accepted, and every exact replay is not.
class ReplayWindow {
public:
    static constexpr uint64_t kWindow = 256;
    enum class Verdict { Accept, Replay, OldGeneration };
    Verdict check_and_update(uint64_t generation, uint64_t sequence);
    uint64_t generation() const { return generation_; }
    uint64_t highest() const { return highest_; }
private:
    bool seen(uint64_t seq) const;
    void mark(uint64_t seq);
    uint64_t generation_ = 0;
    uint64_t highest_ = 0;
    bool any_ = false;
    std::array<uint64_t, kWindow / 64> bits_{};
};

}  // namespace duet::proto
