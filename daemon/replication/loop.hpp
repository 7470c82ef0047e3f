// A loop device attached to a file, owned RAII-style: attached by attach(), detached by detach() or
// the destructor. Used by the replicated disk's front end (fuse_device) and by tests and the lab.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace duet::replication {

struct LoopOptions {
    // Direct I/O: the loop device reads and writes the file with O_DIRECT semantics, so the page
    // cache holds the data once (above the loop device) instead of twice. attach() fails if the
    // kernel will not do direct I/O on this file rather than silently falling back to buffered.
    bool direct_io = true;
    bool read_only = false;
    unsigned block_size = 512;    // logical block size: 512, 1024, 2048 or 4096
    unsigned read_ahead_kb = 0;   // 0: the kernel's default
};

class LoopDevice {
public:
    LoopDevice() = default;  // attached to nothing
    // Attaches a free loop device to `file` (opened read-write unless read_only). Retries briefly
    // when another process takes the free device first. Throws std::runtime_error with the reason.
    static LoopDevice attach(const std::string& file, const LoopOptions& options = {});

    LoopDevice(LoopDevice&& other) noexcept;
    LoopDevice& operator=(LoopDevice&& other) noexcept;
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;
    ~LoopDevice();  // detach(); a failure is logged

    explicit operator bool() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }  // "/dev/loop7"; empty when not attached

    // True when someone holds the device exclusively: a mounted filesystem, a device mapper or md
    // array, or any O_EXCL opener. Plain opens (dd, blkid) are not seen.
    bool in_use() const;

    // Detaches and waits until the kernel has let go of the backing file. Throws if it has not after
    // `wait` (the device is still open somewhere); it then detaches by itself when its last user
    // closes it. No-op when not attached.
    void detach(std::chrono::milliseconds wait = std::chrono::seconds(10));

    // The file a loop device is attached to, from sysfs ("/dev/loop7" -> "/srv/disk.img"); nullopt
    // when the device does not exist or is not attached.
    static std::optional<std::string> backing_file(const std::string& loop_path);

    // Asks the kernel to detach a loop device we do not own (one left by a crashed run): it is
    // detached now if nobody has it open, else when its last user closes it. Returns false (and
    // says why in `error`) if the request itself failed.
    static bool release(const std::string& loop_path, std::string& error);

private:
    LoopDevice(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    int fd_ = -1;         // our open file descriptor on the loop device: see attach() for why we keep it
    std::string path_;
};

}  // namespace duet::replication
