// Replication link codec. Layout and rules: docs/protocol.md, "Replication link".
#include "proto/replication.hpp"


#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "proto/bytes.hpp"

namespace duet::proto::repl {

namespace {

constexpr std::string_view kAuthLabel = "duet-replica-auth-v1";

using Reader = ByteReader;

// A length-prefixed name; the caller has validated the length (<= 255).
void put_name(ByteWriter& w, std::string_view s) {
    w.u8(static_cast<uint8_t>(s.size()));
    w.bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

bool valid_short_name(std::string_view s) {
    return !s.empty() && s.size() <= kNameMax &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// The configuration allows any text in a cluster name except control characters; so does the wire.
bool valid_cluster_name(std::string_view s) {
    return !s.empty() && s.size() <= kClusterNameMax && std::all_of(s.begin(), s.end(), [](char ch) {
               const auto c = static_cast<unsigned char>(ch);
               return c == '\t' || (c >= 0x20 && c != 0x7f);
           });
}

bool valid_type(uint16_t t) {
    switch (static_cast<Type>(t)) {
        case Type::Hello: case Type::Auth: case Type::Refuse: case Type::State: case Type::Bitmap:
        case Type::BitmapDone: case Type::Write: case Type::WriteAck: case Type::Flush: case Type::FlushAck:
        case Type::Trim: case Type::ResyncRequest: case Type::ResyncData: case Type::ResyncAck:
        case Type::SyncDone: case Type::Ping: case Type::Pong:
            return true;
    }
    return false;
}

bool valid_role(uint8_t r) { return r == 1 || r == 2; }
bool valid_disk(uint8_t d) { return d <= static_cast<uint8_t>(Disk::UpToDate); }

// A name read as a u8 length and that many bytes; false if truncated.
bool read_name(Reader& r, std::string& out) {
    const uint8_t n = r.u8();
    const auto b = r.take(n);
    if (!r.ok()) return false;
    out.assign(b.begin(), b.end());
    return true;
}

}  // namespace

const char* to_string(Error e) {
    switch (e) {
        case Error::None: return "no error";
        case Error::BadMagic: return "bad magic (not a Duet replication frame)";
        case Error::BadType: return "unknown frame type";
        case Error::TooLarge: return "payload larger than the limit";
        case Error::Truncated: return "truncated";
        case Error::Malformed: return "malformed";
    }
    return "?";
}

const char* to_string(Role r) {
    switch (r) {
        case Role::Secondary: return "Secondary";
        case Role::Primary: return "Primary";
    }
    return "?";
}

const char* to_string(Disk d) {
    switch (d) {
        case Disk::Diskless: return "Diskless";
        case Disk::Inconsistent: return "Inconsistent";
        case Disk::Outdated: return "Outdated";
        case Disk::Consistent: return "Consistent";
        case Disk::UpToDate: return "UpToDate";
    }
    return "?";
}

const char* to_string(Type t) {
    switch (t) {
        case Type::Hello: return "Hello";
        case Type::Auth: return "Auth";
        case Type::Refuse: return "Refuse";
        case Type::State: return "State";
        case Type::Bitmap: return "Bitmap";
        case Type::BitmapDone: return "BitmapDone";
        case Type::Write: return "Write";
        case Type::WriteAck: return "WriteAck";
        case Type::Flush: return "Flush";
        case Type::FlushAck: return "FlushAck";
        case Type::Trim: return "Trim";
        case Type::ResyncRequest: return "ResyncRequest";
        case Type::ResyncData: return "ResyncData";
        case Type::ResyncAck: return "ResyncAck";
        case Type::SyncDone: return "SyncDone";
        case Type::Ping: return "Ping";
        case Type::Pong: return "Pong";
    }
    return "?";
}

// ---- header ----------------------------------------------------------------------------------

// Layout: magic u32 | type u16 | flags u16 | id u64 | offset u64 | length u32 | aux u32.
std::array<uint8_t, kHeaderSize> encode_header(const Header& h) {
    ByteWriter w(kHeaderSize);
    w.u32(kMagic);
    w.u16(static_cast<uint16_t>(h.type));
    w.u16(h.flags);
    w.u64(h.id);
    w.u64(h.offset);
    w.u32(h.length);
    w.u32(h.aux);
    std::array<uint8_t, kHeaderSize> out{};
    std::copy(w.out.begin(), w.out.end(), out.begin());
    return out;
}

bool payload_length_ok(Type t, uint32_t length) {
    if (length > kMaxPayload) return false;
    switch (t) {
        case Type::Hello: return length >= kHelloMin && length <= kHelloMax;
        case Type::Auth: return length == kMacSize;
        case Type::Refuse: return length <= kReasonMax;
        case Type::State: case Type::SyncDone: return length == kStateSize;
        case Type::Bitmap: return length % 8 == 0;
        case Type::Trim: return length == kTrimSize;
        case Type::Write: case Type::ResyncData: return true;
        case Type::BitmapDone: case Type::WriteAck: case Type::Flush: case Type::FlushAck:
        case Type::ResyncRequest: case Type::ResyncAck: case Type::Ping: case Type::Pong:
            return length == 0;
    }
    return false;
}

Error decode_header(std::span<const uint8_t, kHeaderSize> bytes, Header& out) {
    Reader r(bytes);
    if (r.u32() != kMagic) return Error::BadMagic;
    const uint16_t type = r.u16();
    if (!valid_type(type)) return Error::BadType;
    Header h;
    h.type = static_cast<Type>(type);
    h.flags = r.u16();
    h.id = r.u64();
    h.offset = r.u64();
    h.length = r.u32();
    h.aux = r.u32();
    if (h.length > kMaxPayload) return Error::TooLarge;
    if (!payload_length_ok(h.type, h.length)) return Error::Malformed;
    out = h;
    return Error::None;
}

std::string header_error_detail(std::span<const uint8_t, kHeaderSize> bytes) {
    Header h;
    const Error e = decode_header(bytes, h);
    Reader r(bytes);
    const uint32_t magic = r.u32();
    const uint16_t type = r.u16();
    r.u16();
    r.u64();
    r.u64();
    const uint32_t length = r.u32();
    char buf[160];
    switch (e) {
        case Error::None: return {};
        case Error::BadMagic:
            std::snprintf(buf, sizeof buf, "bad magic 0x%08x, expected 0x%08x (not a Duet replication frame)", magic,
                          kMagic);
            return buf;
        case Error::BadType: return "unknown frame type " + std::to_string(type);
        case Error::TooLarge:
            return std::string(to_string(static_cast<Type>(type))) + " frame with a " + std::to_string(length) +
                   "-byte payload, more than the " + std::to_string(kMaxPayload) + "-byte limit";
        case Error::Truncated:
        case Error::Malformed: break;
    }
    const auto t = static_cast<Type>(type);
    std::string expected;
    switch (t) {
        case Type::Hello:
            expected = std::to_string(kHelloMin) + ".." + std::to_string(kHelloMax) + " bytes";
            break;
        case Type::Auth: expected = std::to_string(kMacSize) + " bytes"; break;
        case Type::Refuse: expected = "at most " + std::to_string(kReasonMax) + " bytes"; break;
        case Type::State: case Type::SyncDone: expected = std::to_string(kStateSize) + " bytes"; break;
        case Type::Bitmap: expected = "a multiple of 8 bytes"; break;
        case Type::Trim: expected = std::to_string(kTrimSize) + " bytes"; break;
        default: expected = "none"; break;
    }
    return std::string(to_string(t)) + " frame with a " + std::to_string(length) + "-byte payload (expected " +
           expected + ")";
}

// ---- structured payloads ---------------------------------------------------------------------

// Layout: version u16 | flags u16 | cluster (u8 length + bytes) | replica (same) | node (same) |
// size u64 | nonce (32 bytes).
std::vector<uint8_t> encode(const Hello& m) {
    if (!valid_cluster_name(m.cluster))
        throw std::invalid_argument("replication Hello: the cluster name must be 1..255 bytes without control characters");
    if (!valid_short_name(m.replica))
        throw std::invalid_argument("replication Hello: the replica name '" + m.replica +
                                    "' must be 1..64 printable ASCII characters without spaces");
    if (!valid_short_name(m.node))
        throw std::invalid_argument("replication Hello: the node name '" + m.node +
                                    "' must be 1..64 printable ASCII characters without spaces");
    if (m.flags & ~kHelloEncrypt)
        throw std::invalid_argument("replication Hello: unknown flags " + std::to_string(m.flags));
    ByteWriter w(kHelloMax);
    w.u16(m.version);
    w.u16(m.flags);
    put_name(w, m.cluster);
    put_name(w, m.replica);
    put_name(w, m.node);
    w.u64(m.size);
    w.bytes(m.nonce);
    return std::move(w.out);
}

Error decode(std::span<const uint8_t> bytes, Hello& out) {
    Reader r(bytes);
    Hello m;
    m.version = r.u16();
    m.flags = r.u16();
    if (!read_name(r, m.cluster) || !read_name(r, m.replica) || !read_name(r, m.node)) return Error::Truncated;
    m.size = r.u64();
    const auto nonce = r.take(kNonceSize);
    if (!r.ok()) return Error::Truncated;
    std::copy(nonce.begin(), nonce.end(), m.nonce.begin());
    if (!r.done() || (m.flags & ~kHelloEncrypt) || !valid_cluster_name(m.cluster) || !valid_short_name(m.replica) ||
        !valid_short_name(m.node))
        return Error::Malformed;
    out = std::move(m);
    return Error::None;
}

// Layout: role u8 | disk u8 | flags u8 | current u64 | bitmap u64 | history[0] u64 | history[1] u64
// | out_of_sync u64.
std::vector<uint8_t> encode(const State& m) {
    if (!valid_role(static_cast<uint8_t>(m.role)))
        throw std::invalid_argument("replication State: invalid role " + std::to_string(static_cast<int>(m.role)));
    if (!valid_disk(static_cast<uint8_t>(m.disk)))
        throw std::invalid_argument("replication State: invalid disk state " + std::to_string(static_cast<int>(m.disk)));
    if (m.flags & ~kStateCrashedPrimary)
        throw std::invalid_argument("replication State: unknown flags " + std::to_string(m.flags));
    ByteWriter w(kStateSize);
    w.u8(static_cast<uint8_t>(m.role));
    w.u8(static_cast<uint8_t>(m.disk));
    w.u8(m.flags);
    w.u64(m.gen.current);
    w.u64(m.gen.bitmap);
    w.u64(m.gen.history[0]);
    w.u64(m.gen.history[1]);
    w.u64(m.out_of_sync);
    return std::move(w.out);
}

Error decode(std::span<const uint8_t> bytes, State& out) {
    Reader r(bytes);
    const uint8_t role = r.u8();
    const uint8_t disk = r.u8();
    State m;
    m.flags = r.u8();
    m.gen.current = r.u64();
    m.gen.bitmap = r.u64();
    m.gen.history[0] = r.u64();
    m.gen.history[1] = r.u64();
    m.out_of_sync = r.u64();
    if (!r.ok()) return Error::Truncated;
    if (!r.done() || !valid_role(role) || !valid_disk(disk) || (m.flags & ~kStateCrashedPrimary))
        return Error::Malformed;
    m.role = static_cast<Role>(role);
    m.disk = static_cast<Disk>(disk);
    out = m;
    return Error::None;
}

std::vector<uint8_t> encode(const TrimBody& m) {
    ByteWriter w(kTrimSize);
    w.u64(m.length);
    return std::move(w.out);
}

Error decode(std::span<const uint8_t> bytes, TrimBody& out) {
    Reader r(bytes);
    const uint64_t length = r.u64();
    if (!r.ok()) return Error::Truncated;
    if (!r.done()) return Error::Malformed;
    out.length = length;
    return Error::None;
}

// ---- authentication --------------------------------------------------------------------------

std::array<uint8_t, kMacSize> auth_proof(std::string_view secret, std::span<const uint8_t> own_hello,
                                         std::span<const uint8_t> peer_hello) {
    if (secret.empty()) throw std::invalid_argument("replication auth: empty shared secret");
    // Length prefixes keep the boundary between the two Hellos unambiguous whatever they contain.
    ByteWriter w(kAuthLabel.size() + 8 + own_hello.size() + peer_hello.size());
    w.bytes(std::span(reinterpret_cast<const uint8_t*>(kAuthLabel.data()), kAuthLabel.size()));
    w.u32(static_cast<uint32_t>(own_hello.size()));
    w.bytes(own_hello);
    w.u32(static_cast<uint32_t>(peer_hello.size()));
    w.bytes(peer_hello);
    std::array<uint8_t, kMacSize> mac{};
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), w.out.data(), w.out.size(), mac.data(),
             &len) == nullptr ||
        len != kMacSize)
        throw std::runtime_error("replication auth: HMAC-SHA256 failed in OpenSSL");
    return mac;
}

bool proof_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace duet::proto::repl
