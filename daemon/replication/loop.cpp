#include "daemon/replication/loop.hpp"

#include "daemon/util/log.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace duet::replication {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kLoopMajor = 7;
// How long attach() keeps trying when another process takes the free device between our
// LOOP_CTL_GET_FREE and LOOP_CONFIGURE (losetup and udev race us for it).
constexpr auto kAttachRetry = std::chrono::seconds(2);

std::string errno_text(int err) { return std::strerror(err); }

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { if (fd_ >= 0) ::close(fd_); }
    int get() const { return fd_; }
    int release() { int f = fd_; fd_ = -1; return f; }
private:
    int fd_;
};

std::string sysfs_of(const std::string& loop_path) {
    struct stat st{};
    if (::stat(loop_path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode) || major(st.st_rdev) != kLoopMajor) return {};
    return "/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}

}  // namespace

LoopDevice LoopDevice::attach(const std::string& file, const LoopOptions& options) {
    switch (options.block_size) {
        case 512: case 1024: case 2048: case 4096: break;
        default:
            throw std::runtime_error("loop device block size " + std::to_string(options.block_size) +
                                     " is not supported: expected 512, 1024, 2048 or 4096");
    }
    const int mode = options.read_only ? O_RDONLY : O_RDWR;
    Fd backing(::open(file.c_str(), mode | O_CLOEXEC));
    if (backing.get() < 0)
        throw std::runtime_error("cannot open " + file + " for a loop device: " + errno_text(errno));
    Fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (control.get() < 0)
        throw std::runtime_error("cannot open /dev/loop-control: " + errno_text(errno) +
                                 " (is the loop module loaded, are we root?)");

    loop_config config{};
    config.fd = static_cast<uint32_t>(backing.get());
    config.block_size = options.block_size;
    // AUTOCLEAR: the kernel detaches the device when its last opener closes it. We keep our own
    // descriptor open for the device's whole life (fd_), so unmounting a filesystem from it never
    // detaches it under its users, while a crash of this process (which closes fd_) leaves no stale
    // device: it detaches as soon as nobody else has it open. It also shapes teardown: LOOP_CLR_FD
    // only marks the device, and the detach happens at the last close (ours, or the mount's).
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (options.direct_io) config.info.lo_flags |= LO_FLAGS_DIRECT_IO;
    if (options.read_only) config.info.lo_flags |= LO_FLAGS_READ_ONLY;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);

    const auto deadline = Clock::now() + kAttachRetry;
    LoopDevice dev;
    for (;;) {
        const int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (n < 0) throw std::runtime_error("no free loop device (LOOP_CTL_GET_FREE): " + errno_text(errno));
        std::string path = "/dev/loop" + std::to_string(n);
        Fd loop(::open(path.c_str(), mode | O_CLOEXEC));
        int err = 0;
        if (loop.get() < 0)
            err = errno;  // ENOENT: the node is not there yet
        else if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) != 0)
            err = errno;
        if (err == 0) {
            dev = LoopDevice(loop.release(), std::move(path));
            break;
        }
        if ((err == EBUSY || err == ENOENT) && Clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
        }
        throw std::runtime_error("cannot attach " + path + " to " + file + ": " + errno_text(err) +
                                 (err == EINVAL || err == ENOTTY ? " (LOOP_CONFIGURE needs Linux 5.8 or later)" : ""));
    }

    // From here `dev` detaches the device again if anything below fails.
    if (options.direct_io) {
        loop_info64 info{};
        if (::ioctl(dev.fd_, LOOP_GET_STATUS64, &info) != 0)
            throw std::runtime_error("cannot read the status of " + dev.path_ + ": " + errno_text(errno));
        // LOOP_CONFIGURE drops direct I/O silently when the file does not support it; ask once
        // more explicitly to get the reason, and refuse to run buffered.
        if (!(info.lo_flags & LO_FLAGS_DIRECT_IO) && ::ioctl(dev.fd_, LOOP_SET_DIRECT_IO, 1UL) != 0)
            throw std::runtime_error("the kernel refuses direct I/O for " + dev.path_ + " on " + file + ": " +
                                     errno_text(errno) + " (the file must support O_DIRECT at block size " +
                                     std::to_string(options.block_size) + ")");
    }
    if (options.read_ahead_kb != 0 &&
        ::ioctl(dev.fd_, BLKRASET, static_cast<unsigned long>(options.read_ahead_kb) * 2) != 0)
        throw std::runtime_error("cannot set the read-ahead of " + dev.path_ + " to " +
                                 std::to_string(options.read_ahead_kb) + " KiB: " + errno_text(errno));
    return dev;
}

LoopDevice::LoopDevice(LoopDevice&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {
    other.path_.clear();
}

LoopDevice& LoopDevice::operator=(LoopDevice&& other) noexcept {
    if (this != &other) {
        try {
            detach();
        } catch (const std::exception& e) {
            log::error(e.what());
        }
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
        other.path_.clear();
    }
    return *this;
}

LoopDevice::~LoopDevice() {
    try {
        detach();
    } catch (const std::exception& e) {
        log::error(e.what());
    }
}

bool LoopDevice::in_use() const {
    if (fd_ < 0) return false;
    // An exclusive open fails with EBUSY while a filesystem (or dm/md, or another O_EXCL opener)
    // claims the device; our own plain descriptor does not count.
    Fd probe(::open(path_.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    if (probe.get() >= 0) return false;
    if (errno == EBUSY) return true;
    log::warning("cannot check whether " + path_ + " is in use (" + errno_text(errno) + "): assuming it is");
    return true;
}

void LoopDevice::detach(std::chrono::milliseconds wait) {
    if (fd_ < 0) return;
    const std::string attached_to = backing_file(path_).value_or("");
    const auto deadline = Clock::now() + wait;
    // Current kernels answer LOOP_CLR_FD at once and detach at the last close; older ones answer
    // EBUSY while another process has the device open, so we retry until `wait` is over.
    while (::ioctl(fd_, LOOP_CLR_FD) != 0) {
        const int err = errno;
        if (err == ENXIO) break;  // already detached
        if (err != EBUSY || Clock::now() >= deadline) {
            ::close(std::exchange(fd_, -1));  // AUTOCLEAR still detaches it when its last user closes it
            throw std::runtime_error("cannot detach " + path_ + " from " + attached_to + ": " + errno_text(err) +
                                     "; it detaches by itself when its last user closes it");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::close(std::exchange(fd_, -1));
    // The detach completes in the kernel when the last opener closes the device; wait for it so
    // the caller may then remove the backing file (or unmount what holds it). The device number may
    // be reused at once by someone else, so "detached" means "no longer attached to our file".
    for (;;) {
        auto now_backing = backing_file(path_);
        if (!now_backing || *now_backing != attached_to) return;
        if (Clock::now() >= deadline)
            throw std::runtime_error(path_ + " is still attached to " + attached_to + " after " +
                                     std::to_string(wait.count()) + " ms: another process holds it open; "
                                     "it detaches by itself when that process closes it");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

std::optional<std::string> LoopDevice::backing_file(const std::string& loop_path) {
    const std::string sys = sysfs_of(loop_path);
    if (sys.empty()) return std::nullopt;
    std::ifstream in(sys + "/loop/backing_file");  // present only while attached
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    return line;
}

bool LoopDevice::release(const std::string& loop_path, std::string& error) {
    Fd fd(::open(loop_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT || errno == ENXIO) return true;  // gone already
        error = "cannot open " + loop_path + ": " + errno_text(errno);
        return false;
    }
    if (::ioctl(fd.get(), LOOP_CLR_FD) == 0 || errno == ENXIO) return true;
    if (errno != EBUSY) {
        error = "cannot detach " + loop_path + ": " + errno_text(errno);
        return false;
    }
    // Older kernels refuse LOOP_CLR_FD while the device is open elsewhere: ask for AUTOCLEAR
    // instead, which detaches it when that user closes it.
    loop_info64 info{};
    if (::ioctl(fd.get(), LOOP_GET_STATUS64, &info) != 0) {
        error = "cannot read the status of " + loop_path + ": " + errno_text(errno);
        return false;
    }
    info.lo_flags |= LO_FLAGS_AUTOCLEAR;
    if (::ioctl(fd.get(), LOOP_SET_STATUS64, &info) != 0) {
        error = "cannot mark " + loop_path + " for detaching: " + errno_text(errno);
        return false;
    }
    return true;
}

}  // namespace duet::replication
