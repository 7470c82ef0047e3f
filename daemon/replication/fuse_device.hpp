// The replicated disk's front end: the engine serves one file through FUSE, a loop device with
// direct I/O sits on that file, and the configured device path (/dev/duet/r0, /dev/drbd0, ...) is
// a symlink to the loop device. Requests reach the engine through DeviceHandler; each carries a
// completion the engine calls exactly once, from any thread. See docs/replication-device.md.
#pragma once

#include "daemon/replication/loop.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

struct fuse_req;  // libfuse's request handle

namespace duet::replication {

namespace detail { class FuseServer; }

// Completes one read request: done() with exactly the bytes asked for, or fail() with an errno.
// Movable, not copyable. Destroying one that was never completed fails the request with EIO and
// logs it, so no request is ever left hanging in the kernel.
class ReadCompletion {
public:
    ReadCompletion(ReadCompletion&& other) noexcept;
    ReadCompletion& operator=(ReadCompletion&& other) noexcept;
    ReadCompletion(const ReadCompletion&) = delete;
    ReadCompletion& operator=(const ReadCompletion&) = delete;
    ~ReadCompletion();

    void done(std::span<const uint8_t> data);  // data.size() must equal the requested length, else EIO
    void fail(int err);                        // a positive errno (EIO, ...)
    bool pending() const { return req_ != nullptr; }

private:
    friend class detail::FuseServer;
    ReadCompletion(fuse_req* req, detail::FuseServer* server, size_t length)
        : req_(req), server_(server), length_(length) {}
    void finish_error(int err);
    fuse_req* req_ = nullptr;
    detail::FuseServer* server_ = nullptr;
    size_t length_ = 0;
};

// Completes one write, flush or discard request. Same rules as ReadCompletion.
class Completion {
public:
    Completion(Completion&& other) noexcept;
    Completion& operator=(Completion&& other) noexcept;
    Completion(const Completion&) = delete;
    Completion& operator=(const Completion&) = delete;
    ~Completion();

    void done();
    void fail(int err);
    bool pending() const { return req_ != nullptr; }

private:
    friend class detail::FuseServer;
    enum class Kind : uint8_t { Write, Flush, Discard };
    Completion(fuse_req* req, detail::FuseServer* server, Kind kind, size_t written)
        : req_(req), server_(server), written_(written), kind_(kind) {}
    fuse_req* req_ = nullptr;
    detail::FuseServer* server_ = nullptr;
    size_t written_ = 0;  // for writes: the byte count to acknowledge
    Kind kind_ = Kind::Write;
};

// Implemented by the engine. Called concurrently from up to DeviceOptions::threads FUSE worker
// threads; a call may complete its request before returning or hand the completion elsewhere.
// Requests never reach past the device's end. Requests are aligned to the loop device's logical
// block size (DeviceOptions::block_size), not necessarily to 4 KiB.
struct DeviceHandler {
    virtual ~DeviceHandler() = default;
    virtual void read(uint64_t offset, size_t length, ReadCompletion c) = 0;
    // `data` is valid only during the call (it lives in the FUSE worker's buffer): the handler must
    // copy or consume it before returning; it may complete later.
    virtual void write(uint64_t offset, std::span<const uint8_t> data, Completion c) = 0;
    // fsync / fdatasync / flush of the file: every write completed before it must be stable when
    // it completes. The filesystem's flushes and FUA writes arrive here.
    virtual void flush(Completion c) = 0;
    // Discard (mkfs, fstrim) and write-zeroes: afterwards the range must read back as zeros; the
    // loop device relies on that for REQ_OP_WRITE_ZEROES. Replicate it as a trim, never as data.
    virtual void discard(uint64_t offset, uint64_t length, Completion c) = 0;
};

struct DeviceOptions {
    uint64_t size = 0;              // bytes, a positive multiple of 4096
    std::string work_dir;           // holds the FUSE mount point (created), e.g. /run/duet/replica/r0
    std::string link_path;          // e.g. /dev/duet/r0 or /dev/drbd0: symlink to the loop device (parents created)
    unsigned threads = 64;          // FUSE worker threads (max); more requests may be in flight when completed asynchronously
    bool read_only = false;         // a read-only loop device
    // 512 like a disk (and DRBD): filesystems made with 1 KiB or 2 KiB blocks (old ext3) still
    // mount. 4096 makes every request 4 KiB-aligned at the cost of refusing those filesystems.
    unsigned block_size = 512;
    // Two 1 MiB FUSE requests in flight per sequential reader; the kernel default varies by version.
    unsigned read_ahead_kb = 2048;
};

// Mounts the FUSE file, serves it, attaches the loop device and makes the symlink; the destructor
// undoes all of it in reverse order. The handler must outlive the Device.
class Device {
public:
    Device(const DeviceOptions& options, DeviceHandler& handler);  // throws std::runtime_error with a clear reason
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    ~Device();  // like close(), but never throws: if the device is still in use its users get I/O errors

    const std::string& loop_path() const;  // "/dev/loop7"
    const std::string& link_path() const;
    const std::string& file_path() const;  // the FUSE-served file the loop device sits on

    // The loop device is held by someone else: a mounted filesystem, or any exclusive opener.
    bool in_use() const;

    // Removes the symlink, detaches the loop device, unmounts the FUSE file and stops serving.
    // Refuses (throws, changing nothing) while in_use(); throws if a step fails. Idempotent.
    void close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace duet::replication
