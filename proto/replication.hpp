// Replication link codec: the frames two replica engines exchange over TCP. Bytes <-> structs, no
// I/O. Spec: docs/protocol.md, "Replication link".
//
// Every frame is a fixed 32-byte header followed by `length` payload bytes. All integers are
// big-endian. Data frames (Write, ResyncData) carry the raw block data as payload; control
// frames carry a small structured payload with its own encode/decode below. Each type has a fixed
// rule for its payload length (see payload_length_ok), checked with the header, so a receiver
// knows before reading a payload whether it can be valid.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duet::proto::repl {

inline constexpr uint32_t kMagic = 0x44524550;      // "DREP"
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderSize = 32;
inline constexpr uint32_t kMaxPayload = 4u << 20;  // larger frames are a protocol error
inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kMacSize = 32;               // HMAC-SHA256
inline constexpr size_t kNameMax = 64;               // node and replica names
inline constexpr size_t kClusterNameMax = 255;       // cluster names (as the configuration allows)
inline constexpr size_t kReasonMax = 512;            // Refuse reason text

enum class Type : uint16_t {
    // Handshake (always in clear, before anything else).
    Hello = 1,        // Hello payload
    Auth = 2,         // payload: kMacSize bytes
    Refuse = 3,       // payload: reason text (UTF-8, at most 512 bytes); the sender closes
    // After the handshake.
    State = 4,        // State payload: role, disk state, generation ids
    Bitmap = 5,       // offset = first 64-bit word index; payload = words, big-endian, n*8 bytes
    BitmapDone = 6,   // the sender's whole bitmap has been sent
    Write = 10,       // id, offset (bytes), payload = data; flags: kFlagFua
    WriteAck = 11,    // id of the Write; aux = 0 or an errno
    Flush = 12,       // id; the receiver makes everything before it stable, then FlushAck
    FlushAck = 13,    // id; aux = 0 or an errno
    Trim = 14,        // id, offset; payload = TrimBody (length may exceed 4 GiB); acked by WriteAck
    ResyncRequest = 20,  // offset, aux = length: the sync target asks for these blocks (unused in v1)
    ResyncData = 21,  // id, offset, payload = data from the sync source
    ResyncAck = 22,   // id of the ResyncData; aux = 0 or an errno
    SyncDone = 23,    // the source has sent every out-of-sync block; payload = State
    Ping = 30,        // id
    Pong = 31,        // id of the Ping
};

inline constexpr uint16_t kFlagFua = 1;       // Write: stable on the peer's disk before the ack
inline constexpr uint16_t kFlagAckOnReceive = 2;  // Write: protocol B, ack when received (before written)

struct Header {
    Type type = Type::Ping;
    uint16_t flags = 0;
    uint64_t id = 0;       // request id, unique per direction per connection
    uint64_t offset = 0;   // byte offset on the replicated device (or word index for Bitmap)
    uint32_t length = 0;   // payload bytes that follow the header
    uint32_t aux = 0;      // type-specific (an errno in acks, a length in ResyncRequest)
    bool operator==(const Header&) const = default;
};

// Writes the 32 header bytes.
std::array<uint8_t, kHeaderSize> encode_header(const Header& h);

enum class Error {
    None,
    BadMagic,     // not a Duet replication frame
    BadType,      // unknown type
    TooLarge,     // length > kMaxPayload
    Truncated,    // a structured payload is shorter than its fields
    Malformed,    // fields inconsistent (bad name length, bad enum, trailing bytes, ...)
};
const char* to_string(Error e);

// Parses a header; checks magic, type and length (at most kMaxPayload, and allowed for the type:
// payload_length_ok). Flags are not interpreted here. The payload's contents are checked by the
// decoders below. On error `out` is left unchanged.
Error decode_header(std::span<const uint8_t, kHeaderSize> bytes, Header& out);
// Whether a frame of type `t` may carry `length` payload bytes: none for acks, pings, Flush,
// BitmapDone and ResyncRequest; exactly kMacSize for Auth, kStateSize for State and SyncDone,
// kTrimSize for Trim; kHelloMin..kHelloMax for Hello; at most kReasonMax for Refuse; a multiple of 8
// for Bitmap; anything up to kMaxPayload for Write and ResyncData.
bool payload_length_ok(Type t, uint32_t length);
// Why decode_header rejects `bytes`, for a log line: "unknown frame type 99", "Ping frame with a
// 5-byte payload (it carries none)", ... Empty when the header is valid.
std::string header_error_detail(std::span<const uint8_t, kHeaderSize> bytes);

// ---- structured payloads ---------------------------------------------------------------------

// Names: node and replica 1..kNameMax bytes of printable ASCII without space (0x21..0x7e), cluster
// 1..kClusterNameMax bytes with no control character (bytes 0x00..0x1f except tab, and 0x7f).
// Any version decodes (so a receiver can name a version mismatch); unknown flag bits are Malformed.
struct Hello {
    uint16_t version = kVersion;
    uint16_t flags = 0;           // kHelloEncrypt: the sender wants the link encrypted
    std::string cluster;          // cluster name
    std::string replica;          // replica name
    std::string node;             // sender's node name
    uint64_t size = 0;            // size of the replicated device in bytes
    std::array<uint8_t, kNonceSize> nonce{};  // fresh random bytes for the challenge-response
    bool operator==(const Hello&) const = default;
};
inline constexpr uint16_t kHelloEncrypt = 1;
// Encoded Hello sizes: version, flags, three length-prefixed names, size, nonce.
inline constexpr size_t kHelloMin = 2 + 2 + 3 * (1 + 1) + 8 + kNonceSize;
inline constexpr size_t kHelloMax = 2 + 2 + (1 + kClusterNameMax) + 2 * (1 + kNameMax) + 8 + kNonceSize;

enum class Role : uint8_t { Secondary = 1, Primary = 2 };
enum class Disk : uint8_t {
    Diskless = 0,
    Inconsistent = 1,  // partly written by a resync that has not finished, or never synced
    Outdated = 2,      // consistent, but known to miss writes the peer has
    Consistent = 3,    // consistent, whether it is current is unknown
    UpToDate = 4,
};

// Generation identifiers (see docs/replication.md): what a node's data descends from.
struct GenIds {
    uint64_t current = 0;
    uint64_t bitmap = 0;              // 0 when the bitmap tracks nothing
    std::array<uint64_t, 2> history{};
    bool operator==(const GenIds&) const = default;
};

struct State {
    Role role = Role::Secondary;
    Disk disk = Disk::Inconsistent;
    uint8_t flags = 0;                // kStateWasPrimaryCrashed, ...
    GenIds gen;
    uint64_t out_of_sync = 0;         // set bits in the sender's bitmap
    bool operator==(const State&) const = default;
};
inline constexpr uint8_t kStateCrashedPrimary = 1;  // was Primary when it last stopped uncleanly
// role, disk, flags (1 byte each), the four generation ids, out_of_sync (8 bytes each).
inline constexpr size_t kStateSize = 3 + 4 * 8 + 8;
inline constexpr size_t kTrimSize = 8;

struct TrimBody {
    uint64_t length = 0;
    bool operator==(const TrimBody&) const = default;
};

// Encoders throw std::invalid_argument for what the decoder would reject (a bad name, an unknown
// flag or enum value), so nothing undecodable is ever sent.
std::vector<uint8_t> encode(const Hello& m);
std::vector<uint8_t> encode(const State& m);
std::vector<uint8_t> encode(const TrimBody& m);
// Decoders never read outside `bytes` and reject trailing bytes. Truncated: shorter than the
// fields; Malformed: a bad name, enum or flag value, or trailing bytes. On error `out` is unchanged.
Error decode(std::span<const uint8_t> bytes, Hello& out);
Error decode(std::span<const uint8_t> bytes, State& out);
Error decode(std::span<const uint8_t> bytes, TrimBody& out);

const char* to_string(Role r);   // "Primary", "Secondary"
const char* to_string(Disk d);   // "UpToDate", ...
const char* to_string(Type t);   // "Write", ...

// The challenge-response proof each side sends in Auth: HMAC-SHA256 keyed by the shared secret
// over the label "duet-replica-auth-v1" and both Hellos' encodings, each prefixed by its length
// (u32), the sender's own first. Each Hello carries its sender's fresh nonce, so a proof made for
// one direction never verifies in the other, and a proof never verifies in another session.
// Throws std::invalid_argument on an empty secret.
std::array<uint8_t, kMacSize> auth_proof(std::string_view secret, std::span<const uint8_t> own_hello,
                                         std::span<const uint8_t> peer_hello);
// Constant-time comparison.
bool proof_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace duet::proto::repl
