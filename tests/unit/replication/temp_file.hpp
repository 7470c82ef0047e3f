// A scratch file for the replication unit tests: `size` bytes (optionally filled with one byte
// value), removed with the object; whole-buffer reads and writes at an offset.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/replication/metadata.hpp"

namespace duet::replication::testing {

class TempFile {
public:
    explicit TempFile(uint64_t size, uint8_t fill_byte = 0) {
        char tmpl[] = "/tmp/duet-repl-test-XXXXXX";
        fd_ = ::mkstemp(tmpl);
        if (fd_ < 0) throw std::runtime_error("mkstemp failed");
        path_ = tmpl;
        if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) throw std::runtime_error("ftruncate failed");
        if (fill_byte != 0) {
            std::vector<uint8_t> buf(1u << 20, fill_byte);
            for (uint64_t off = 0; off < size; off += buf.size())
                pwrite_all(fd_, buf.data(), std::min<uint64_t>(buf.size(), size - off), off, "fill");
        }
    }
    ~TempFile() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    std::vector<uint8_t> read(uint64_t off, size_t n) const {
        std::vector<uint8_t> b(n);
        pread_all(fd_, b.data(), n, off, "test read");
        return b;
    }
    void write(uint64_t off, const std::vector<uint8_t>& b) const { pwrite_all(fd_, b.data(), b.size(), off, "test write"); }
    void fill(uint64_t off, size_t n, uint8_t v) const { write(off, std::vector<uint8_t>(n, v)); }

private:
    int fd_ = -1;
    std::string path_;
};

}  // namespace duet::replication::testing
