// Big-endian field reading and writing shared by the codecs (heartbeat, replication link). No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace duet::proto {

// Bounds-checked big-endian reader over a span. Every read checks the remaining length first; a
// failed read leaves the reader in the failed state and returns 0 (or an empty span), so a decoder
// can read a group of fields and check ok() once.
class ByteReader {
public:
    explicit ByteReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
    size_t remaining() const { return bytes_.size() - pos_; }
    size_t pos() const { return pos_; }
    bool ok() const { return ok_; }
    bool done() const { return pos_ == bytes_.size(); }
    bool has(size_t n) const { return ok_ && remaining() >= n; }

    uint64_t be(size_t n) {
        if (!has(n)) {
            ok_ = false;
            return 0;
        }
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) v = (v << 8) | bytes_[pos_ + i];
        pos_ += n;
        return v;
    }
    uint8_t u8() { return static_cast<uint8_t>(be(1)); }
    uint16_t u16() { return static_cast<uint16_t>(be(2)); }
    uint32_t u32() { return static_cast<uint32_t>(be(4)); }
    uint64_t u64() { return be(8); }
    std::span<const uint8_t> take(size_t n) {
        if (!has(n)) {
            ok_ = false;
            return {};
        }
        auto s = bytes_.subspan(pos_, n);
        pos_ += n;
        return s;
    }

private:
    std::span<const uint8_t> bytes_;
    size_t pos_ = 0;
    bool ok_ = true;
};

// Appends big-endian fields to `out`.
class ByteWriter {
public:
    explicit ByteWriter(size_t reserve = 0) { out.reserve(reserve); }
    void be(uint64_t v, int bytes) {
        for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
    }
    void u8(uint8_t v) { be(v, 1); }
    void u16(uint16_t v) { be(v, 2); }
    void u32(uint32_t v) { be(v, 4); }
    void u64(uint64_t v) { be(v, 8); }
    void bytes(std::span<const uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }
    std::vector<uint8_t> out;
};

}  // namespace duet::proto
