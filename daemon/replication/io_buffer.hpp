// A growable buffer aligned for O_DIRECT I/O (4 KiB), never zeroed: the link receives frames
// into it and the disk writes from it, with no copy in between.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>
#include <span>
#include <utility>

namespace duet::replication {

class IoBuffer {
public:
    static constexpr size_t kAlign = 4096;

    IoBuffer() = default;
    explicit IoBuffer(size_t n) { resize(n); }
    IoBuffer(IoBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), size_(std::exchange(o.size_, 0)), cap_(std::exchange(o.cap_, 0)) {}
    IoBuffer& operator=(IoBuffer&& o) noexcept {
        if (this != &o) {
            std::free(p_);
            p_ = std::exchange(o.p_, nullptr);
            size_ = std::exchange(o.size_, 0);
            cap_ = std::exchange(o.cap_, 0);
        }
        return *this;
    }
    IoBuffer(const IoBuffer&) = delete;
    IoBuffer& operator=(const IoBuffer&) = delete;
    ~IoBuffer() { std::free(p_); }

    // Makes room for n bytes (contents are not kept when it grows) and sets the size to n.
    void resize(size_t n) {
        if (n > cap_) {
            std::free(p_);
            p_ = nullptr;
            cap_ = 0;
            const size_t rounded = (n + kAlign - 1) / kAlign * kAlign;
            void* p = nullptr;
            if (posix_memalign(&p, kAlign, rounded) != 0) throw std::bad_alloc();
            p_ = static_cast<uint8_t*>(p);
            cap_ = rounded;
        }
        size_ = n;
    }
    uint8_t* data() { return p_; }
    const uint8_t* data() const { return p_; }
    size_t size() const { return size_; }
    size_t capacity() const { return cap_; }
    std::span<const uint8_t> span() const { return {p_, size_}; }
    operator std::span<const uint8_t>() const { return span(); }
    uint8_t operator[](size_t i) const { return p_[i]; }

private:
    uint8_t* p_ = nullptr;
    size_t size_ = 0, cap_ = 0;
};

}  // namespace duet::replication
