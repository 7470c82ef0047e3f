// The FUSE side uses libfuse's low-level API directly: one regular file as the filesystem's root
// (mounted on a regular file, so there are no lookups), requests passed to the engine with a
// completion object, and the mount done and undone by us rather than by libfuse, so teardown can
// unmount normally after the loop device let go, and lazily only as a last resort.
#define FUSE_USE_VERSION 312
#include "daemon/replication/fuse_device.hpp"

#include "daemon/util/log.hpp"

#include <fuse3/fuse_lowlevel.h>
#include <linux/fuse.h>  // struct fuse_open_out, FOPEN_*: see op_open

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace duet::replication {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr unsigned kMaxWrite = 1024 * 1024;     // one 1 MiB write arrives as one request
constexpr unsigned kMaxBackground = 256;        // in-flight async direct I/O requests from the loop device
constexpr double kAttrTimeout = 3600.0;         // the file's attributes never change
constexpr const char* kFsType = "fuse.duet";
constexpr auto kUnmountRetry = std::chrono::seconds(2);  // udev/blkid may hold the file briefly
constexpr auto kStopWait = std::chrono::seconds(10);

std::string errno_text(int err) { return std::strerror(err); }

// Routes libfuse's own messages into our log instead of stderr.
void fuse_log_to_duet(enum fuse_log_level level, const char* fmt, va_list ap) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    std::string msg = buf;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    log::write(level <= FUSE_LOG_ERR ? log::Level::Error
               : level == FUSE_LOG_WARNING ? log::Level::Warning
               : level <= FUSE_LOG_INFO ? log::Level::Info : log::Level::Debug,
               "libfuse: " + msg);
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

struct MountEntry {
    unsigned dev_major = 0, dev_minor = 0;
    std::string fstype;
};

// Every mount stacked on `path`, bottom first.
std::vector<MountEntry> mounts_at(const std::string& path) {
    std::vector<MountEntry> found;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
        std::istringstream ls(line);
        std::string id, parent, devno, root, mountpoint;
        ls >> id >> parent >> devno >> root >> mountpoint;
        if (unescape_mountinfo(mountpoint) != path) continue;
        MountEntry e;
        std::sscanf(devno.c_str(), "%u:%u", &e.dev_major, &e.dev_minor);
        std::string word;
        while (ls >> word && word != "-") {}
        ls >> e.fstype;
        found.push_back(e);
    }
    return found;
}

// Dead FUSE connections answer ENOTCONN (the server is gone) or ECONNABORTED (aborted).
bool dead_fuse_errno(int err) { return err == ENOTCONN || err == ECONNABORTED; }

std::string describe_file_type(mode_t m) {
    if (S_ISBLK(m)) return "a block device node";
    if (S_ISCHR(m)) return "a character device node";
    if (S_ISREG(m)) return "a regular file";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a symlink";
}

bool looks_like_loop_path(const std::string& p) {
    static const std::regex re("^/dev/loop[0-9]+$");
    return std::regex_match(p, re);
}

}  // namespace

namespace detail {

// The FUSE session: mount, worker threads and request dispatch. Owned by Device; may be leaked on
// purpose (see abandon) when its threads cannot be stopped, so it never frees what they use.
class FuseServer {
public:
    FuseServer(const DeviceOptions& options, DeviceHandler& handler, std::string mount_path);
    FuseServer(const FuseServer&) = delete;
    FuseServer& operator=(const FuseServer&) = delete;
    ~FuseServer();

    // Unmounts and stops the workers. With force=false it throws when the file is still busy and
    // changes nothing; with force=true it ends the connection (users get I/O errors) and unmounts
    // lazily if need be. Returns false if the worker threads could not be stopped: the caller
    // must then leak this object.
    bool stop(bool force, std::chrono::milliseconds unmount_patience);

    // A completion replied. The decrement is its last touch of this object: stop() polls the count
    // rather than being notified, so it may free us the moment the count reaches zero.
    void finished() { inflight_.fetch_sub(1, std::memory_order_release); }
    static const char* kind_name(Completion::Kind k) {
        switch (k) {
            case Completion::Kind::Write: return "write";
            case Completion::Kind::Flush: return "flush";
            case Completion::Kind::Discard: return "discard";
        }
        return "request";
    }

private:
    static FuseServer* of(fuse_req_t req) { return static_cast<FuseServer*>(fuse_req_userdata(req)); }
    static void op_init(void* userdata, fuse_conn_info* conn);
    static void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
    static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
    static void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
    static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
    static void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
    static void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
    static void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
    static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
    static void op_statfs(fuse_req_t req, fuse_ino_t ino);
    static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi);
    static const fuse_lowlevel_ops* ops();

    // True when the request must not reach the handler (the Device is gone); it was answered.
    bool refuse_if_abandoned(fuse_req_t req) {
        if (!abandoned_.load(std::memory_order_acquire)) return false;
        fuse_reply_err(req, EIO);
        return true;
    }
    Completion completion(fuse_req_t req, Completion::Kind kind, size_t written = 0) {
        inflight_.fetch_add(1, std::memory_order_relaxed);
        return Completion(req, this, kind, written);
    }
    void flush_request(fuse_req_t req);
    struct stat attributes() const;
    void run_loop();
    bool wait_loop_done(std::chrono::milliseconds timeout);
    void end_connection();

    const uint64_t size_;
    const bool read_only_;
    DeviceHandler& handler_;
    const std::string mount_path_;
    fuse_session* se_ = nullptr;
    fuse_loop_config* loop_config_ = nullptr;
    std::thread thread_;
    bool mounted_ = false;
    bool loop_done_ = false;  // guarded by mutex_
    int loop_rc_ = 0;
    std::atomic<long> inflight_{0};  // requests handed to the engine and not yet replied
    std::atomic<bool> abandoned_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
};

FuseServer::FuseServer(const DeviceOptions& options, DeviceHandler& handler, std::string mount_path)
    : size_(options.size), read_only_(options.read_only), handler_(handler), mount_path_(std::move(mount_path)) {
    static std::once_flag log_once;
    std::call_once(log_once, [] { fuse_set_log_func(fuse_log_to_duet); });

    const int fuse_fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fuse_fd < 0) throw std::runtime_error("cannot open /dev/fuse: " + errno_text(errno) + " (is the fuse module loaded?)");

    const char* argv[] = {"duet", nullptr};
    fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
    se_ = fuse_session_new(&args, ops(), sizeof(fuse_lowlevel_ops), this);
    if (!se_) {
        ::close(fuse_fd);
        throw std::runtime_error("cannot create a FUSE session (see libfuse's message above)");
    }
    // We mount ourselves: the root is a regular file (rootmode), only root may use it (user_id 0,
    // no allow_other: the loop driver runs in the kernel and needs no permission), and the kernel
    // does no permission checks of its own (no default_permissions): open() decides.
    char rootmode[16];
    std::snprintf(rootmode, sizeof rootmode, "%o", static_cast<unsigned>(S_IFREG));
    const std::string data = "fd=" + std::to_string(fuse_fd) + ",rootmode=" + rootmode + ",user_id=0,group_id=0";
    if (::mount("duet", mount_path_.c_str(), kFsType, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME, data.c_str()) != 0) {
        const int err = errno;
        ::close(fuse_fd);
        fuse_session_destroy(se_);
        throw std::runtime_error("cannot mount the FUSE file on " + mount_path_ + ": " + errno_text(err));
    }
    mounted_ = true;
    // "/dev/fd/N" hands libfuse our descriptor without it mounting anything or remembering a
    // mount point, so fuse_session_unmount never unmounts (lazily) behind our back.
    const std::string fd_path = "/dev/fd/" + std::to_string(fuse_fd);
    if (fuse_session_mount(se_, fd_path.c_str()) != 0) {
        ::umount2(mount_path_.c_str(), MNT_DETACH);
        ::close(fuse_fd);
        fuse_session_destroy(se_);
        throw std::runtime_error("libfuse refused the FUSE descriptor for " + mount_path_);
    }

    loop_config_ = fuse_loop_cfg_create();
    const unsigned threads = std::max(1u, options.threads);
    fuse_loop_cfg_set_max_threads(loop_config_, threads);
    fuse_loop_cfg_set_idle_threads(loop_config_, threads);  // keep workers instead of re-creating them
    fuse_loop_cfg_set_clone_fd(loop_config_, 1);            // one /dev/fuse descriptor per worker: less contention
    thread_ = std::thread([this] { run_loop(); });
}

void FuseServer::run_loop() {
    // Workers inherit this mask: signals go to the engine's own threads, never interrupt a worker.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    const int rc = fuse_session_loop_mt(se_, loop_config_);
    std::lock_guard lock(mutex_);
    loop_done_ = true;
    loop_rc_ = rc;
    cv_.notify_all();
}

bool FuseServer::wait_loop_done(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return loop_done_; });
}

// Ends the connection while the mount may still be busy: every pending and future request fails.
// Prefers fusectl's abort file; without it, flags the session as exiting and sends it one request
// so a worker sees the flag and libfuse cancels the others.
void FuseServer::end_connection() {
    fuse_session_exit(se_);
    for (const auto& m : mounts_at(mount_path_)) {
        if (m.fstype != kFsType) continue;
        std::ofstream abort("/sys/fs/fuse/connections/" + std::to_string(m.dev_minor) + "/abort");
        if (abort && (abort << "1" << std::flush)) return;
    }
    struct statfs sfs{};
    ::statfs(mount_path_.c_str(), &sfs);
}

bool FuseServer::stop(bool force, std::chrono::milliseconds unmount_patience) {
    if (!thread_.joinable()) return true;
    bool unmounted = false;
    const auto deadline = Clock::now() + unmount_patience;
    for (;;) {
        if (::umount2(mount_path_.c_str(), UMOUNT_NOFOLLOW) == 0 || errno == EINVAL) {
            unmounted = true;
            break;
        }
        const int err = errno;
        if (err != EBUSY || Clock::now() >= deadline) {
            if (!force) {
                throw std::runtime_error("cannot unmount the FUSE file " + mount_path_ + ": " + errno_text(err) +
                                         (err == EBUSY ? " (another process has it open)" : ""));
            }
            log::error("cannot unmount the FUSE file " + mount_path_ + " (" + errno_text(err) +
                       "): ending its connection; whoever still uses it gets I/O errors");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    mounted_ = !unmounted;
    // After a normal unmount every worker reads ENODEV and the loop returns by itself.
    if (!unmounted) end_connection();
    if (!wait_loop_done(kStopWait)) {
        log::error("the FUSE workers for " + mount_path_ + " did not stop within " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kStopWait).count()) +
                   " s; leaving them running, detached from the engine");
        abandoned_.store(true, std::memory_order_release);
        thread_.detach();
        return false;
    }
    thread_.join();
    if (loop_rc_ < 0) log::debug("FUSE loop for " + mount_path_ + " ended: " + errno_text(-loop_rc_));
    // Completions the engine still holds reply into this session: wait for them before freeing it.
    // (Normally there are none: detaching the loop device drained its I/O.)
    const auto give_up = Clock::now() + kStopWait;
    while (inflight_.load(std::memory_order_acquire) != 0) {
        if (Clock::now() >= give_up) {
            log::error(std::to_string(inflight_.load()) + " requests on " + mount_path_ +
                       " were never completed by the engine; leaving the FUSE session allocated");
            abandoned_.store(true, std::memory_order_release);
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    abandoned_.store(true, std::memory_order_release);
    fuse_session_destroy(se_);  // closes the /dev/fuse descriptor, which ends a connection still alive
    se_ = nullptr;
    fuse_loop_cfg_destroy(loop_config_);
    loop_config_ = nullptr;
    if (mounted_) {
        if (::umount2(mount_path_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
            log::warning("lazily unmounted the FUSE file " + mount_path_ + " (last resort: it was still in use)");
        else
            log::error("cannot unmount the FUSE file " + mount_path_ + " even lazily: " + errno_text(errno));
        mounted_ = false;
    }
    return true;
}

FuseServer::~FuseServer() {
    // Device stops us first; this covers a failed constructor of Device.
    if (thread_.joinable()) stop(true, kUnmountRetry);
}

struct stat FuseServer::attributes() const {
    struct stat st{};
    st.st_ino = FUSE_ROOT_ID;
    st.st_mode = S_IFREG | 0600;
    st.st_nlink = 1;
    st.st_uid = 0;
    st.st_gid = 0;
    st.st_size = static_cast<off_t>(size_);
    st.st_blksize = 4096;
    st.st_blocks = static_cast<blkcnt_t>(size_ / 512);
    return st;
}

void FuseServer::op_init(void* userdata, fuse_conn_info* conn) {
    auto* self = static_cast<FuseServer*>(userdata);
    // 1 MiB writes arrive whole: libfuse derives max_pages (FUSE_MAX_PAGES) from max_write, and
    // its buffers hold 256 pages. The kernel splits larger requests.
    conn->max_write = kMaxWrite;
    // The loop device submits direct I/O asynchronously; those requests count as "background"
    // in FUSE and the default cap of 12 would be the device's queue depth.
    conn->max_background = kMaxBackground;
    conn->congestion_threshold = kMaxBackground * 3 / 4;
    if (conn->capable & FUSE_CAP_ASYNC_DIO)
        conn->want |= FUSE_CAP_ASYNC_DIO;
    else
        log::warning("the kernel's FUSE lacks async direct I/O: " + self->mount_path_ + " serves one request at a time per caller");
    // No page cache in the FUSE layer: the engine is the only truth (no writeback cache, which would
    // also serialize writes); no splice, since the handler gets plain memory.
    conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                    FUSE_CAP_SPLICE_MOVE | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ATOMIC_O_TRUNC);
}

void FuseServer::op_getattr(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
    const struct stat st = of(req)->attributes();
    fuse_reply_attr(req, &st, kAttrTimeout);
}

// The size is the replica's: a truncate (O_TRUNC, ftruncate) is refused. Time updates are ignored.
void FuseServer::op_setattr(fuse_req_t req, fuse_ino_t, struct stat* attr, int to_set, fuse_file_info*) {
    auto* self = of(req);
    constexpr int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                           FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
    if ((to_set & FUSE_SET_ATTR_SIZE) && static_cast<uint64_t>(attr->st_size) != self->size_) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (to_set & ~(kTimes | FUSE_SET_ATTR_SIZE)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    const struct stat st = self->attributes();
    fuse_reply_attr(req, &st, kAttrTimeout);
}

void FuseServer::op_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    auto* self = of(req);
    if (self->read_only_ && (fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    // libfuse 3.14's fuse_file_info has no bit for FOPEN_PARALLEL_DIRECT_WRITES, so we send the
    // kernel's open reply ourselves (fuse_reply_open sends exactly this structure). DIRECT_IO: no
    // page cache for the file. PARALLEL_DIRECT_WRITES (Linux 6.2+; older kernels ignore the bit):
    // direct writes do not take the inode lock exclusively, so they reach us concurrently.
    fuse_open_out out{};
    out.fh = 0;
    out.open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
    fuse_reply_buf(req, reinterpret_cast<const char*>(&out), sizeof out);
}

void FuseServer::op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
    auto* self = of(req);
    if (self->refuse_if_abandoned(req)) return;
    if (off < 0 || static_cast<uint64_t>(off) >= self->size_ || size == 0) {
        fuse_reply_buf(req, nullptr, 0);  // end of file
        return;
    }
    const size_t length = static_cast<size_t>(std::min<uint64_t>(size, self->size_ - static_cast<uint64_t>(off)));
    self->inflight_.fetch_add(1, std::memory_order_relaxed);
    try {
        self->handler_.read(static_cast<uint64_t>(off), length, ReadCompletion(req, self, length));
    } catch (const std::exception& e) {
        log::error(std::string("the engine's read handler threw: ") + e.what());
    }
}

void FuseServer::op_write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info*) {
    auto* self = of(req);
    if (self->refuse_if_abandoned(req)) return;
    if (self->read_only_) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (off < 0 || static_cast<uint64_t>(off) > self->size_ || size > self->size_ - static_cast<uint64_t>(off)) {
        fuse_reply_err(req, ENOSPC);  // the device does not grow
        return;
    }
    if (size == 0) {
        fuse_reply_write(req, 0);
        return;
    }
    try {
        self->handler_.write(static_cast<uint64_t>(off),
                             std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf), size),
                             self->completion(req, Completion::Kind::Write, size));
    } catch (const std::exception& e) {
        log::error(std::string("the engine's write handler threw: ") + e.what());
    }
}

void FuseServer::flush_request(fuse_req_t req) {
    if (refuse_if_abandoned(req)) return;
    try {
        handler_.flush(completion(req, Completion::Kind::Flush));
    } catch (const std::exception& e) {
        log::error(std::string("the engine's flush handler threw: ") + e.what());
    }
}

// FLUSH comes with every close() of a descriptor on the file, FSYNC with the loop device's flushes.
void FuseServer::op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { of(req)->flush_request(req); }
void FuseServer::op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { of(req)->flush_request(req); }

void FuseServer::op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

// The loop device takes its discard granularity from f_bsize: 4 KiB, the engine's block.
void FuseServer::op_statfs(fuse_req_t req, fuse_ino_t) {
    auto* self = of(req);
    struct statvfs sv{};
    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_blocks = self->size_ / 4096;
    sv.f_files = 1;
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

// The loop device turns discards into PUNCH_HOLE and write-zeroes into PUNCH_HOLE or ZERO_RANGE
// (always with KEEP_SIZE); all of them mean "reads as zeros from now on", which is a discard.
void FuseServer::op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info*) {
    auto* self = of(req);
    if (self->refuse_if_abandoned(req)) return;
    if (offset < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    const uint64_t begin = static_cast<uint64_t>(offset);
    const uint64_t end = begin + static_cast<uint64_t>(length);
    const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
    const int op = mode & ~FALLOC_FL_KEEP_SIZE;
    if (op == 0) {  // preallocation: every block already exists
        fuse_reply_err(req, (!keep_size && end > self->size_) ? ENOSPC : 0);
        return;
    }
    if (op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) {
        fuse_reply_err(req, EOPNOTSUPP);  // collapse, insert, unshare: not on a block device
        return;
    }
    if (self->read_only_) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (!keep_size && end > self->size_) {
        fuse_reply_err(req, ENOSPC);
        return;
    }
    if (begin >= self->size_) {
        fuse_reply_err(req, 0);
        return;
    }
    try {
        self->handler_.discard(begin, std::min(end, self->size_) - begin, self->completion(req, Completion::Kind::Discard));
    } catch (const std::exception& e) {
        log::error(std::string("the engine's discard handler threw: ") + e.what());
    }
}

const fuse_lowlevel_ops* FuseServer::ops() {
    static const fuse_lowlevel_ops table = [] {
        fuse_lowlevel_ops o{};
        o.init = op_init;
        o.getattr = op_getattr;
        o.setattr = op_setattr;
        o.open = op_open;
        o.read = op_read;
        o.write = op_write;
        o.flush = op_flush;
        o.release = op_release;
        o.fsync = op_fsync;
        o.statfs = op_statfs;
        o.fallocate = op_fallocate;
        return o;
    }();
    return &table;
}

}  // namespace detail

// ---- completions ----

ReadCompletion::ReadCompletion(ReadCompletion&& other) noexcept
    : req_(std::exchange(other.req_, nullptr)), server_(other.server_), length_(other.length_) {}

ReadCompletion& ReadCompletion::operator=(ReadCompletion&& other) noexcept {
    if (this != &other) {
        if (req_) finish_error(EIO);
        req_ = std::exchange(other.req_, nullptr);
        server_ = other.server_;
        length_ = other.length_;
    }
    return *this;
}

ReadCompletion::~ReadCompletion() {
    if (req_) {
        log::error("a read of " + std::to_string(length_) + " bytes was dropped by the engine without completion: failed with EIO");
        finish_error(EIO);
    }
}

void ReadCompletion::done(std::span<const uint8_t> data) {
    if (!req_) {
        log::error("a read was completed twice; the second completion is ignored");
        return;
    }
    if (data.size() != length_) {
        log::error("the engine answered a read of " + std::to_string(length_) + " bytes with " +
                   std::to_string(data.size()) + ": failed with EIO");
        finish_error(EIO);
        return;
    }
    fuse_reply_buf(std::exchange(req_, nullptr), reinterpret_cast<const char*>(data.data()), data.size());
    server_->finished();
}

void ReadCompletion::fail(int err) {
    if (!req_) {
        log::error("a read was completed twice; the second completion is ignored");
        return;
    }
    finish_error(err);
}

void ReadCompletion::finish_error(int err) {
    if (err <= 0) {
        log::error("the engine failed a read with invalid error " + std::to_string(err) + ": using EIO");
        err = EIO;
    }
    fuse_reply_err(std::exchange(req_, nullptr), err);
    server_->finished();
}

Completion::Completion(Completion&& other) noexcept
    : req_(std::exchange(other.req_, nullptr)), server_(other.server_), written_(other.written_), kind_(other.kind_) {}

Completion& Completion::operator=(Completion&& other) noexcept {
    if (this != &other) {
        if (req_) fail(EIO);
        req_ = std::exchange(other.req_, nullptr);
        server_ = other.server_;
        written_ = other.written_;
        kind_ = other.kind_;
    }
    return *this;
}

Completion::~Completion() {
    if (req_) {
        log::error(std::string("a ") + detail::FuseServer::kind_name(kind_) +
                   " request was dropped by the engine without completion: failed with EIO");
        fail(EIO);
    }
}

void Completion::done() {
    if (!req_) {
        log::error(std::string("a ") + detail::FuseServer::kind_name(kind_) + " was completed twice; the second completion is ignored");
        return;
    }
    fuse_req* req = std::exchange(req_, nullptr);
    if (kind_ == Kind::Write)
        fuse_reply_write(req, written_);
    else
        fuse_reply_err(req, 0);
    server_->finished();
}

void Completion::fail(int err) {
    if (!req_) {
        log::error(std::string("a ") + detail::FuseServer::kind_name(kind_) + " was completed twice; the second completion is ignored");
        return;
    }
    if (err <= 0) {
        log::error(std::string("the engine failed a ") + detail::FuseServer::kind_name(kind_) +
                   " with invalid error " + std::to_string(err) + ": using EIO");
        err = EIO;
    }
    fuse_reply_err(std::exchange(req_, nullptr), err);
    server_->finished();
}

// ---- the device ----

struct Device::Impl {
    DeviceOptions options;
    std::string mount_path;
    std::unique_ptr<detail::FuseServer> server;
    LoopDevice loop;
    std::string loop_path;
    bool link_made = false;

    ~Impl() { teardown(true); }
    void teardown(bool force);
};

namespace {

enum class LinkState { Absent, Stale };

// Whether link_path may be (re)made: absent, or our own symlink left by a crashed run (it points
// at a loop device that is gone, detached, or sits on this replica's FUSE file or on a dead FUSE
// mount). Anything else is someone else's and is refused untouched.
LinkState classify_link(const std::string& link, const std::string& mount_path) {
    struct stat st{};
    if (::lstat(link.c_str(), &st) != 0) {
        if (errno == ENOENT) return LinkState::Absent;
        throw std::runtime_error("cannot inspect the device path " + link + ": " + errno_text(errno));
    }
    if (!S_ISLNK(st.st_mode))
        throw std::runtime_error("the device path " + link + " exists and is " + describe_file_type(st.st_mode) +
                                 ", not a symlink made by Duet: refusing to replace it (remove it or configure another device path)");
    std::error_code ec;
    fs::path target = fs::read_symlink(link, ec);
    if (ec) throw std::runtime_error("cannot read the symlink " + link + ": " + ec.message());
    if (target.is_relative()) target = fs::path(link).parent_path() / target;
    const std::string t = target.lexically_normal().string();
    if (!looks_like_loop_path(t))
        throw std::runtime_error("the device path " + link + " is a symlink to " + t +
                                 ", which is not a loop device made by Duet: refusing to replace it");
    const auto backing = LoopDevice::backing_file(t);
    if (!backing || *backing == mount_path) return LinkState::Stale;
    struct statfs sfs{};
    if (::statfs(backing->c_str(), &sfs) != 0 && (dead_fuse_errno(errno) || errno == ENOENT)) return LinkState::Stale;
    throw std::runtime_error("the device path " + link + " is a symlink to " + t + ", which is attached to " + *backing +
                             ", not to this replica's " + mount_path + ": refusing to replace it");
}

// Loop devices attached to `file`, from sysfs.
std::vector<std::string> loops_on(const std::string& file) {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/sys/block", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("loop", 0) != 0) continue;
        const std::string dev = "/dev/" + name;
        if (LoopDevice::backing_file(dev) == file) found.push_back(dev);
    }
    return found;
}

// A FUSE mount left on our mount point by a crashed run is unmounted (after its loop devices are
// released); a live one means another engine serves this replica, and is refused.
void clear_stale_mount(const std::string& mount_path) {
    for (int round = 0; round < 8; ++round) {
        const auto mounts = mounts_at(mount_path);
        if (mounts.empty()) return;
        struct statfs sfs{};
        if (::statfs(mount_path.c_str(), &sfs) == 0 || !dead_fuse_errno(errno))
            throw std::runtime_error(mount_path + " is already mounted (" + mounts.back().fstype +
                                     "): is another engine serving this replica?");
        for (const auto& loop : loops_on(mount_path)) {
            std::string error;
            if (LoopDevice::release(loop, error))
                log::notice("released " + loop + ", left on the dead FUSE file " + mount_path + " by an earlier run");
            else
                log::warning(error);
        }
        if (::umount2(mount_path.c_str(), UMOUNT_NOFOLLOW) == 0) {
            log::notice("unmounted the dead FUSE file " + mount_path + " left by an earlier run");
        } else if (::umount2(mount_path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
            log::warning("lazily unmounted the dead FUSE file " + mount_path +
                         " left by an earlier run: a loop device on it is still in use (a filesystem still mounted?)");
        } else {
            throw std::runtime_error("cannot unmount the dead FUSE file " + mount_path + " left by an earlier run: " +
                                     errno_text(errno));
        }
    }
    throw std::runtime_error("too many mounts stacked on " + mount_path);
}

void make_link(const std::string& link, const std::string& target, LinkState state) {
    const fs::path parent = fs::path(link).parent_path();
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) throw std::runtime_error("cannot create " + parent.string() + " for the device path: " + ec.message());
    if (state == LinkState::Absent) {
        if (::symlink(target.c_str(), link.c_str()) != 0)
            throw std::runtime_error("cannot create the device path " + link + " -> " + target + ": " + errno_text(errno));
        return;
    }
    // Replace the stale link atomically: nobody ever sees the path missing.
    const std::string tmp = link + ".duet-new";
    ::unlink(tmp.c_str());
    if (::symlink(target.c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), link.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot replace the stale device path " + link + " with a link to " + target + ": " +
                                 errno_text(err));
    }
    log::notice("replaced the stale device path " + link + " left by an earlier run; now -> " + target);
}

void remove_link(const std::string& link, const std::string& target) {
    std::error_code ec;
    const fs::path now = fs::read_symlink(link, ec);
    if (ec) return;  // gone already, or not a symlink any more: not ours to remove
    if (now.string() != target) {
        log::warning("the device path " + link + " now points to " + now.string() + ", not " + target + ": left alone");
        return;
    }
    if (::unlink(link.c_str()) != 0) throw std::runtime_error("cannot remove the device path " + link + ": " + errno_text(errno));
}

}  // namespace

void Device::Impl::teardown(bool force) {
    const bool busy = loop && loop.in_use();
    if (busy && !force)
        throw std::runtime_error(options.link_path + " (" + loop_path + ") is in use (a mounted filesystem?): unmount it first");
    if (busy)
        log::error(options.link_path + " (" + loop_path + ") is still in use while its engine stops: "
                   "I/O to it fails from now on; it detaches when its last user closes it");
    if (link_made) {
        try {
            remove_link(options.link_path, loop_path);
        } catch (const std::exception& e) {
            if (!force) throw;
            log::error(e.what());
        }
        link_made = false;
    }
    if (loop) {
        try {
            loop.detach(busy ? std::chrono::milliseconds(0) : std::chrono::seconds(10));
        } catch (const std::exception& e) {
            if (!force) throw;
            if (!busy) log::error(e.what());  // when busy, already said above
        }
    }
    if (server) {
        if (server->stop(force, busy ? std::chrono::milliseconds(0) : kUnmountRetry))
            server.reset();
        else
            (void)server.release();  // its threads still run: leaking it beats freeing what they use
        if (::unlink(mount_path.c_str()) != 0 && errno != ENOENT && errno != EBUSY)
            log::warning("cannot remove the mount point " + mount_path + ": " + errno_text(errno));
    }
}

Device::Device(const DeviceOptions& options, DeviceHandler& handler) : impl_(std::make_unique<Impl>()) {
    if (options.size == 0 || options.size % 4096 != 0)
        throw std::runtime_error("device size " + std::to_string(options.size) + " is not a positive multiple of 4096 bytes");
    if (options.work_dir.empty() || options.work_dir.front() != '/')
        throw std::runtime_error("work_dir \"" + options.work_dir + "\" is not an absolute path");
    if (options.link_path.empty() || options.link_path.front() != '/' || options.link_path.back() == '/')
        throw std::runtime_error("device path \"" + options.link_path + "\" is not an absolute file path");
    Impl& d = *impl_;
    d.options = options;
    d.mount_path = (fs::path(options.work_dir).lexically_normal() / "disk").string();

    const LinkState link_state = classify_link(options.link_path, d.mount_path);
    std::error_code ec;
    fs::create_directories(options.work_dir, ec);
    if (ec) throw std::runtime_error("cannot create the work directory " + options.work_dir + ": " + ec.message());
    clear_stale_mount(d.mount_path);
    const int fd = ::open(d.mount_path.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw std::runtime_error("cannot create the mount point " + d.mount_path + ": " + errno_text(errno));
    struct stat st{};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ::close(fd);
    if (!regular) throw std::runtime_error("the mount point " + d.mount_path + " exists and is not a regular file");

    d.server = std::make_unique<detail::FuseServer>(options, handler, d.mount_path);
    LoopOptions lo;
    lo.direct_io = true;
    lo.read_only = options.read_only;
    lo.block_size = options.block_size;
    lo.read_ahead_kb = options.read_ahead_kb;
    d.loop = LoopDevice::attach(d.mount_path, lo);
    d.loop_path = d.loop.path();
    make_link(options.link_path, d.loop_path, link_state);
    d.link_made = true;
    log::info("replicated device " + options.link_path + " -> " + d.loop_path + " on " + d.mount_path + " (" +
              std::to_string(options.size) + " bytes" + (options.read_only ? ", read-only" : "") + ")");
}

Device::~Device() = default;  // Impl's destructor tears down, forcing if need be

const std::string& Device::loop_path() const { return impl_->loop_path; }
const std::string& Device::link_path() const { return impl_->options.link_path; }
const std::string& Device::file_path() const { return impl_->mount_path; }
bool Device::in_use() const { return impl_->loop.in_use(); }
void Device::close() { impl_->teardown(false); }

}  // namespace duet::replication
