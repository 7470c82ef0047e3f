// The replicated disk's front end on the real kernel: FUSE file, loop device with direct I/O, ext4
// on top, the device symlink. Needs root, /dev/fuse and loop devices. Every name is unique per run
// and everything is undone even when a check fails (RAII, fixtures).
#include "daemon/replication/fuse_device.hpp"
#include "daemon/replication/loop.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// mount(2) and umount2(2) without <sys/mount.h>, which clashes with <linux/fs.h>.
extern "C" int mount(const char*, const char*, const char*, unsigned long, const void*);
extern "C" int umount2(const char*, int);

namespace duet::replication {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr unsigned long kMsRdonly = 1;  // MS_RDONLY
constexpr int kMntDetach = 2;           // MNT_DETACH

std::string run(const std::string& cmd, int* status = nullptr) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) throw std::runtime_error("popen failed: " + cmd);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = ::pclose(p);
    if (status) *status = st;
    return out;
}

std::vector<std::string> mount_points_under(const std::string& prefix) {
    std::vector<std::string> found;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string a, b, c, d, mp;
        ls >> a >> b >> c >> d >> mp;
        if (mp.rfind(prefix, 0) == 0) found.push_back(mp);
    }
    return found;
}

// A unique temporary directory. Anything still mounted under it is unmounted (lazily: a test
// already failed) before it is removed, so removal never reaches through a mount.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "duet-fuse-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        auto mps = mount_points_under(path_ + "/");
        for (auto it = mps.rbegin(); it != mps.rend(); ++it) umount2(it->c_str(), kMntDetach);
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }
private:
    std::string path_;
};

// A mounted filesystem, unmounted on destruction.
class Mounted {
public:
    Mounted(const std::string& device, const std::string& dir, bool read_only = false) : dir_(dir) {
        fs::create_directories(dir);
        if (mount(device.c_str(), dir.c_str(), "ext4", read_only ? kMsRdonly : 0, nullptr) != 0)
            throw std::runtime_error("mount " + device + " on " + dir + ": " + std::strerror(errno));
    }
    Mounted(const Mounted&) = delete;
    Mounted& operator=(const Mounted&) = delete;
    ~Mounted() { unmount(); }
    void unmount() {
        if (dir_.empty()) return;
        if (umount2(dir_.c_str(), 0) != 0) {
            ADD_FAILURE() << "umount " << dir_ << ": " << std::strerror(errno) << " (unmounting lazily)";
            umount2(dir_.c_str(), kMntDetach);
        }
        dir_.clear();
    }
private:
    std::string dir_;
};

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { if (fd_ >= 0) ::close(fd_); }
    int get() const { return fd_; }
private:
    int fd_;
};

// Page-aligned memory for O_DIRECT.
struct AlignedBuffer {
    explicit AlignedBuffer(size_t n) : size(n) {
        if (::posix_memalign(&p, 4096, n) != 0) throw std::bad_alloc();
    }
    ~AlignedBuffer() { std::free(p); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    uint8_t* data() { return static_cast<uint8_t*>(p); }
    void* p = nullptr;
    size_t size;
};

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; i += 8) {
        const uint64_t x = rng();
        std::memcpy(v.data() + i, &x, std::min<size_t>(8, n - i));
    }
    return v;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_and_fsync(const std::string& path, const std::vector<uint8_t>& data) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_GE(fd.get(), 0) << path << ": " << std::strerror(errno);
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        ASSERT_GT(n, 0) << path << ": " << std::strerror(errno);
        done += static_cast<size_t>(n);
    }
    ASSERT_EQ(::fsync(fd.get()), 0) << path << ": " << std::strerror(errno);
}

std::string sysfs_queue(const std::string& loop_path, const std::string& attr) {
    std::ifstream in("/sys/block/" + fs::path(loop_path).filename().string() + "/" + attr);
    std::string v;
    std::getline(in, v);
    return v;
}

// ---- test handlers ----

enum class Op { Read, Write, Flush, Discard };
struct Request {
    Op op;
    uint64_t offset;
    uint64_t length;
};

// Keeps the data in a real file (pread/pwrite/fdatasync/fallocate), counts and records every
// request, and can complete asynchronously, fail writes, or hold writes until several are in flight.
class FileHandler : public DeviceHandler {
public:
    FileHandler(const std::string& path, uint64_t size) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd_ < 0 || ::ftruncate(fd_, static_cast<off_t>(size)) != 0)
            throw std::runtime_error("cannot create the backing file " + path);
    }
    ~FileHandler() override {
        stop_async();
        ::close(fd_);
    }

    void read(uint64_t offset, size_t length, ReadCompletion c) override {
        record({Op::Read, offset, length});
        std::vector<uint8_t> buf(length);
        if (::pread(fd_, buf.data(), length, static_cast<off_t>(offset)) != static_cast<ssize_t>(length)) return c.fail(EIO);
        if (fail_reads.load()) return c.fail(EIO);
        if (async_) return enqueue(Pending{std::nullopt, std::move(c), std::move(buf)});
        c.done(buf);
    }
    void write(uint64_t offset, std::span<const uint8_t> data, Completion c) override {
        record({Op::Write, offset, data.size()});
        const int in_flight = ++writes_in_flight_;
        int seen = max_writes_in_flight.load();
        while (in_flight > seen && !max_writes_in_flight.compare_exchange_weak(seen, in_flight)) {}
        if (hold_until_ > 0) {
            // Opens the gate for good once enough writes are inside at the same time.
            std::unique_lock lock(gate_mutex_);
            if (in_flight >= hold_until_) {
                gate_open_ = true;
                gate_cv_.notify_all();
            }
            gate_cv_.wait_until(lock, gate_deadline_, [&] { return gate_open_; });
        }
        const int err = fail_writes.load();
        const bool ok = err == 0 && ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset)) ==
                                        static_cast<ssize_t>(data.size());
        --writes_in_flight_;
        if (!ok) return c.fail(err ? err : EIO);
        if (async_) return enqueue(Pending{std::move(c), std::nullopt, {}});
        c.done();
    }
    void flush(Completion c) override {
        record({Op::Flush, 0, 0});
        if (::fdatasync(fd_) != 0) return c.fail(EIO);
        if (async_) return enqueue(Pending{std::move(c), std::nullopt, {}});
        c.done();
    }
    void discard(uint64_t offset, uint64_t length, Completion c) override {
        record({Op::Discard, offset, length});
        if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                        static_cast<off_t>(length)) != 0)
            return c.fail(EIO);
        if (async_) return enqueue(Pending{std::move(c), std::nullopt, {}});
        c.done();
    }

    // Each write waits inside the handler until `n` writes are in it at once, or until `patience`
    // from now has passed; 0 turns this off.
    void hold_writes(int n, std::chrono::milliseconds patience) {
        std::lock_guard lock(gate_mutex_);
        gate_open_ = false;
        gate_deadline_ = std::chrono::steady_clock::now() + patience;
        hold_until_ = n;
    }

    // From now on every completion happens on another thread, after the handler returned.
    void start_async() {
        async_ = true;
        completer_ = std::thread([this] {
            std::unique_lock lock(queue_mutex_);
            for (;;) {
                queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;
                Pending p = std::move(queue_.front());
                queue_.pop_front();
                lock.unlock();
                std::this_thread::sleep_for(50us);  // well after the handler returned
                if (p.c) p.c->done();
                if (p.rc) p.rc->done(p.data);
                ++completed_async;
                lock.lock();
            }
        });
    }

    std::vector<Request> requests() const {
        std::lock_guard lock(log_mutex_);
        return log_;
    }
    size_t count(Op op) const {
        auto r = requests();
        return static_cast<size_t>(std::count_if(r.begin(), r.end(), [op](const Request& q) { return q.op == op; }));
    }
    void clear_log() {
        std::lock_guard lock(log_mutex_);
        log_.clear();
    }
    const std::string& path() const { return path_; }

    std::atomic<int> fail_writes{0};
    std::atomic<bool> fail_reads{false};
    std::atomic<int> max_writes_in_flight{0};
    std::atomic<int> completed_async{0};

private:
    struct Pending {
        std::optional<Completion> c;
        std::optional<ReadCompletion> rc;
        std::vector<uint8_t> data;
    };
    void record(Request r) {
        std::lock_guard lock(log_mutex_);
        log_.push_back(r);
    }
    void enqueue(Pending p) {
        std::lock_guard lock(queue_mutex_);
        queue_.push_back(std::move(p));
        queue_cv_.notify_one();
    }
    void stop_async() {
        if (!completer_.joinable()) return;
        {
            std::lock_guard lock(queue_mutex_);
            stop_ = true;
            queue_cv_.notify_all();
        }
        completer_.join();
    }

    std::string path_;
    int fd_ = -1;
    mutable std::mutex log_mutex_;
    std::vector<Request> log_;
    std::atomic<int> writes_in_flight_{0};
    std::mutex gate_mutex_;
    std::condition_variable gate_cv_;
    std::atomic<int> hold_until_{0};
    bool gate_open_ = false;
    std::chrono::steady_clock::time_point gate_deadline_;
    bool async_ = false;
    std::thread completer_;
    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    std::deque<Pending> queue_;
    bool stop_ = false;
};

// Trivial in-memory store for the throughput printout.
class MemoryHandler : public DeviceHandler {
public:
    explicit MemoryHandler(uint64_t size) : data_(size) {}
    void read(uint64_t offset, size_t length, ReadCompletion c) override { c.done({data_.data() + offset, length}); }
    void write(uint64_t offset, std::span<const uint8_t> d, Completion c) override {
        std::memcpy(data_.data() + offset, d.data(), d.size());
        c.done();
    }
    void flush(Completion c) override { c.done(); }
    void discard(uint64_t offset, uint64_t length, Completion c) override {
        std::memset(data_.data() + offset, 0, length);
        c.done();
    }
private:
    std::vector<uint8_t> data_;
};

class FuseDeviceTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (FUSE mounts, loop devices, ext4)";
        ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse is missing";
        ASSERT_EQ(::access("/dev/loop-control", R_OK | W_OK), 0) << "/dev/loop-control is missing";
    }
    DeviceOptions options(uint64_t size = 64 * kMiB) const {
        DeviceOptions o;
        o.size = size;
        o.work_dir = tmp / "run/replica/r0";
        o.link_path = tmp / "dev/duet/r0";
        o.threads = 16;
        return o;
    }
    // Nothing of ours is left mounted or attached.
    void expect_nothing_left() const {
        EXPECT_TRUE(mount_points_under(tmp.path() + "/").empty());
        const std::string losetup = run("losetup -a");
        EXPECT_EQ(losetup.find(tmp.path()), std::string::npos) << losetup;
        const std::string findmnt = run("findmnt -rn -o TARGET");
        EXPECT_EQ(findmnt.find(tmp.path()), std::string::npos) << findmnt;
    }

    void crash_and_restart(bool mounted);

    TempDir tmp;  // outlives everything a test makes in it (locals of the test body)
};

TEST_F(FuseDeviceTest, Ext4OnTheDeviceKeepsFilesAcrossRemountAndReachesTheStore) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
    const uint64_t seed = std::random_device{}();
    const size_t sizes[] = {4096, 100 * 1024 + 7, kMiB + 123, 3 * kMiB, 1};
    for (size_t i = 0; i < std::size(sizes); ++i)
        files.emplace_back("file" + std::to_string(i), random_bytes(sizes[i], seed + i));
    {
        Device dev(options(), h);
        ASSERT_EQ(fs::read_symlink(dev.link_path()).string(), dev.loop_path());
        EXPECT_EQ(sysfs_queue(dev.loop_path(), "loop/dio"), "1");
        EXPECT_EQ(sysfs_queue(dev.loop_path(), "queue/read_ahead_kb"), "2048");
        EXPECT_FALSE(dev.in_use());

        h.clear_log();
        int status = 0;
        const std::string out = run("mkfs.ext4 -q -F " + dev.link_path(), &status);
        ASSERT_EQ(status, 0) << out;
        // mke2fs discards the whole device in one request, and zeroes its journal and a few other
        // areas with write-zeroes, which also arrive as discards: never zeros written as data.
        uint64_t largest_discard = 0, written = 0;
        for (const auto& r : h.requests()) {
            if (r.op == Op::Discard) largest_discard = std::max(largest_discard, r.length);
            if (r.op == Op::Write) written += r.length;
        }
        EXPECT_GE(h.count(Op::Discard), 1u);
        EXPECT_LE(h.count(Op::Discard), 16u);
        EXPECT_GE(largest_discard, 60 * kMiB);
        EXPECT_LT(written, 16 * kMiB) << "mkfs wrote as if zeroing the device";

        {
            Mounted m(dev.link_path(), tmp / "mnt");
            EXPECT_TRUE(dev.in_use());
            EXPECT_THROW(dev.close(), std::runtime_error);
            EXPECT_EQ(fs::read_symlink(dev.link_path()).string(), dev.loop_path()) << "a refused close() changed nothing";

            const size_t flushes_before = h.count(Op::Flush);
            for (const auto& [name, data] : files) write_and_fsync(tmp / ("mnt/" + name), data);
            EXPECT_GE(h.count(Op::Flush) - flushes_before, files.size()) << "each fsync reaches the engine as a flush";
        }
        EXPECT_FALSE(dev.in_use());
        {
            Mounted m(dev.link_path(), tmp / "mnt");
            for (const auto& [name, data] : files) EXPECT_TRUE(read_file(tmp / ("mnt/" + name)) == data) << name;
        }
        dev.close();
        EXPECT_FALSE(fs::exists(fs::symlink_status(tmp / "dev/duet/r0")));
        expect_nothing_left();
        EXPECT_NO_THROW(dev.close()) << "close() is idempotent";
    }
    // The data went through the engine: the store itself holds the filesystem.
    {
        LoopOptions lo;
        lo.read_only = true;
        LoopDevice plain = LoopDevice::attach(h.path(), lo);
        Mounted m(plain.path(), tmp / "check", true);
        for (const auto& [name, data] : files) EXPECT_TRUE(read_file(tmp / ("check/" + name)) == data) << name;
    }
    expect_nothing_left();
}

std::vector<Request> only(std::vector<Request> v, Op op) {
    std::erase_if(v, [op](const Request& r) { return r.op != op; });
    return v;
}

// At the FUSE layer: a 1 MiB direct write to the served file is one 1 MiB request (max_write and
// max_pages), and so is a 1 MiB read.
TEST_F(FuseDeviceTest, OneMiBDirectWriteToTheFileArrivesAsOneRequest) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    Device dev(options(), h);
    Fd fd(::open(dev.file_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
    ASSERT_GE(fd.get(), 0) << std::strerror(errno);
    AlignedBuffer buf(kMiB);
    const auto data = random_bytes(kMiB, 41);
    std::memcpy(buf.data(), data.data(), kMiB);
    h.clear_log();
    ASSERT_EQ(::pwrite(fd.get(), buf.data(), kMiB, 4 * kMiB), static_cast<ssize_t>(kMiB)) << std::strerror(errno);
    const auto writes = only(h.requests(), Op::Write);
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_EQ(writes[0].offset, 4 * kMiB);
    EXPECT_EQ(writes[0].length, kMiB);

    std::memset(buf.data(), 0, kMiB);
    h.clear_log();
    ASSERT_EQ(::pread(fd.get(), buf.data(), kMiB, 4 * kMiB), static_cast<ssize_t>(kMiB)) << std::strerror(errno);
    EXPECT_EQ(std::memcmp(buf.data(), data.data(), kMiB), 0);
    const auto reads = only(h.requests(), Op::Read);
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_EQ(reads[0].length, kMiB);
}

// 2 MiB of anonymous memory on one transparent huge page (physically contiguous), or nullptr.
struct HugeBuffer {
    HugeBuffer() {
        const size_t huge = 2 * kMiB;
        raw = ::mmap(nullptr, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) {
            raw = nullptr;
            return;
        }
        auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + huge - 1) & ~(huge - 1));
        if (::madvise(aligned, huge, MADV_HUGEPAGE) != 0) return;
        std::memset(aligned, 0, huge);
        if (huge_pages_kb(aligned) >= 2048) data = aligned;
    }
    ~HugeBuffer() { if (raw) ::munmap(raw, 4 * kMiB); }
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
    // AnonHugePages of the mapping holding `p`, from /proc/self/smaps.
    static size_t huge_pages_kb(const void* p) {
        std::ifstream in("/proc/self/smaps");
        std::string line;
        bool inside = false;
        const auto addr = reinterpret_cast<uintptr_t>(p);
        while (std::getline(in, line)) {
            unsigned long lo = 0, hi = 0;
            if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
                inside = addr >= lo && addr < hi;
                continue;
            }
            size_t kb = 0;
            if (inside && std::sscanf(line.c_str(), "AnonHugePages: %zu kB", &kb) == 1) return kb;
        }
        return 0;
    }
    void* raw = nullptr;
    uint8_t* data = nullptr;
};

// Through the loop device. The block layer caps a loop request at 128 segments of up to 64 KiB:
// a 1 MiB write from scattered 4 KiB pages arrives as two 512 KiB requests, one from physically
// contiguous memory (a huge page; the page cache's large folios) as one 1 MiB request.
TEST_F(FuseDeviceTest, OneMiBDirectWriteToTheLoopDeviceArrivesWhole) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    Device dev(options(), h);
    Fd fd(::open(dev.loop_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
    ASSERT_GE(fd.get(), 0) << std::strerror(errno);
    HugeBuffer huge;
    if (!huge.data) GTEST_SKIP() << "no transparent huge page available for a physically contiguous buffer";
    const auto data = random_bytes(kMiB, 42);
    std::memcpy(huge.data, data.data(), kMiB);
    h.clear_log();
    ASSERT_EQ(::pwrite(fd.get(), huge.data, kMiB, 8 * kMiB), static_cast<ssize_t>(kMiB)) << std::strerror(errno);
    const auto writes = only(h.requests(), Op::Write);
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_EQ(writes[0].offset, 8 * kMiB);
    EXPECT_EQ(writes[0].length, kMiB);

    std::memset(huge.data, 0, kMiB);
    h.clear_log();
    ASSERT_EQ(::pread(fd.get(), huge.data, kMiB, 8 * kMiB), static_cast<ssize_t>(kMiB)) << std::strerror(errno);
    EXPECT_EQ(std::memcmp(huge.data, data.data(), kMiB), 0);
    EXPECT_EQ(only(h.requests(), Op::Read).size(), 1u);

    h.clear_log();
    ASSERT_EQ(::fsync(fd.get()), 0);
    EXPECT_GE(h.count(Op::Flush), 1u);
}

// Threads write 4 KiB with O_DIRECT to `path` at once; the handler holds each write until all of
// them are inside it (or 5 s have passed), so serialized writes show up as a timeout.
void expect_parallel_writes(FileHandler& h, const std::string& path, int kWriters) {
    h.hold_writes(kWriters, 5s);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < kWriters; ++i) {
        threads.emplace_back([&, i] {
            Fd fd(::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
            AlignedBuffer buf(4096);
            std::memset(buf.data(), i, 4096);
            if (fd.get() < 0 || ::pwrite(fd.get(), buf.data(), 4096, static_cast<off_t>(i) * 1024 * 1024 + 4096) != 4096) ++failures;
        });
    }
    for (auto& t : threads) t.join();
    h.hold_writes(0, 0ms);
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(h.max_writes_in_flight.load(), kWriters) << path;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << path << ": writes were serialized";
}

// Through the loop device: asynchronous direct I/O, which needs async DIO in FUSE and more
// "background" slots than its default 12.
TEST_F(FuseDeviceTest, WritesThroughTheLoopDeviceReachTheEngineInParallel) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    DeviceOptions o = options();
    o.threads = 40;
    Device dev(o, h);
    expect_parallel_writes(h, dev.loop_path(), 32);
}

// Synchronous direct writes to the FUSE file: parallel only with FOPEN_PARALLEL_DIRECT_WRITES,
// without which FUSE holds the inode lock across each write.
TEST_F(FuseDeviceTest, DirectWritesToTheFileReachTheEngineInParallel) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    Device dev(options(), h);
    expect_parallel_writes(h, dev.file_path(), 8);
}

TEST_F(FuseDeviceTest, AsynchronousCompletionsWork) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    h.start_async();
    Device dev(options(), h);
    int status = 0;
    const std::string out = run("mkfs.ext4 -q -F " + dev.loop_path(), &status);
    ASSERT_EQ(status, 0) << out;
    const auto data = random_bytes(2 * kMiB + 5, 7);
    {
        Mounted m(dev.loop_path(), tmp / "mnt");
        write_and_fsync(tmp / "mnt/a", data);
    }
    {
        Mounted m(dev.loop_path(), tmp / "mnt");
        EXPECT_TRUE(read_file(tmp / "mnt/a") == data);
    }
    EXPECT_GT(h.completed_async.load(), 100);
}

TEST_F(FuseDeviceTest, EngineErrorsFailTheIoWithoutHanging) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    Device dev(options(), h);
    Fd fd(::open(dev.loop_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
    ASSERT_GE(fd.get(), 0);
    AlignedBuffer buf(64 * 1024);
    std::memset(buf.data(), 0xab, buf.size);

    h.fail_writes = EIO;
    auto w = std::async(std::launch::async, [&] {
        errno = 0;
        const ssize_t n = ::pwrite(fd.get(), buf.data(), buf.size, 0);
        return std::make_pair(n, errno);
    });
    ASSERT_EQ(w.wait_for(30s), std::future_status::ready) << "a failed write hangs";
    EXPECT_EQ(w.get(), std::make_pair(ssize_t(-1), EIO));
    h.fail_writes = 0;

    h.fail_reads = true;
    auto r = std::async(std::launch::async, [&] {
        errno = 0;
        const ssize_t n = ::pread(fd.get(), buf.data(), buf.size, 0);
        return std::make_pair(n, errno);
    });
    ASSERT_EQ(r.wait_for(30s), std::future_status::ready) << "a failed read hangs";
    EXPECT_EQ(r.get(), std::make_pair(ssize_t(-1), EIO));
    h.fail_reads = false;

    // The device still works afterwards.
    EXPECT_EQ(::pwrite(fd.get(), buf.data(), buf.size, 0), static_cast<ssize_t>(buf.size));
}

// A handler that drops requests on the floor: each one fails with EIO instead of hanging.
TEST_F(FuseDeviceTest, DroppedCompletionsFailWithEio) {
    struct Dropper : DeviceHandler {
        void read(uint64_t, size_t, ReadCompletion) override {}
        void write(uint64_t, std::span<const uint8_t>, Completion) override {}
        void flush(Completion c) override { c.done(); }
        void discard(uint64_t, uint64_t, Completion) override {}
    } h;
    Device dev(options(), h);
    Fd fd(::open(dev.loop_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
    ASSERT_GE(fd.get(), 0);
    AlignedBuffer buf(4096);
    auto io = std::async(std::launch::async, [&] {
        const ssize_t w = ::pwrite(fd.get(), buf.data(), 4096, 0);
        const int werr = errno;
        const ssize_t r = ::pread(fd.get(), buf.data(), 4096, 0);
        return std::make_tuple(w, werr, r, errno);
    });
    ASSERT_EQ(io.wait_for(30s), std::future_status::ready) << "a dropped request hangs";
    EXPECT_EQ(io.get(), std::make_tuple(ssize_t(-1), EIO, ssize_t(-1), EIO));
}

TEST_F(FuseDeviceTest, SymlinkPointsToTheLoopDeviceAndTeardownRemovesEverything) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    std::string loop;
    const auto fds_before = std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator());
    {
        Device dev(options(), h);
        loop = dev.loop_path();
        EXPECT_EQ(fs::read_symlink(tmp / "dev/duet/r0").string(), loop);
        EXPECT_EQ(LoopDevice::backing_file(loop), dev.file_path());
        EXPECT_EQ(mount_points_under(tmp.path() + "/").size(), 1u);
        struct stat st{};
        ASSERT_EQ(::stat(dev.file_path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode, static_cast<mode_t>(S_IFREG | 0600));
        EXPECT_EQ(st.st_uid, 0u);
        EXPECT_EQ(static_cast<uint64_t>(st.st_size), 64 * kMiB);
        uint64_t bytes = 0;
        Fd fd(::open(loop.c_str(), O_RDONLY | O_CLOEXEC));
        ASSERT_EQ(::ioctl(fd.get(), BLKGETSIZE64, &bytes), 0);
        EXPECT_EQ(bytes, 64 * kMiB);
        // The device cannot be resized through the FUSE file.
        EXPECT_NE(::truncate(dev.file_path().c_str(), 1 * kMiB), 0);
    }
    EXPECT_FALSE(fs::exists(fs::symlink_status(tmp / "dev/duet/r0")));
    EXPECT_NE(LoopDevice::backing_file(loop), std::optional<std::string>(tmp / "run/replica/r0/disk"));
    expect_nothing_left();
    const auto fds_after = std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator());
    EXPECT_EQ(fds_after, fds_before) << "descriptors leaked";
}

TEST_F(FuseDeviceTest, RefusesToReplaceSomethingElseAtTheDevicePath) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    fs::create_directories(tmp / "dev/duet");
    {
        std::ofstream(tmp / "dev/duet/r0") << "not ours";
    }
    try {
        Device dev(options(), h);
        ADD_FAILURE() << "a regular file at the device path was replaced";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("regular file"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(tmp / "dev/duet/r0"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_file(tmp / "dev/duet/r0"), std::vector<uint8_t>({'n', 'o', 't', ' ', 'o', 'u', 'r', 's'}));
    expect_nothing_left();

    // A symlink to someone else's loop device is refused too.
    fs::remove(tmp / "dev/duet/r0");
    {
        std::ofstream f(tmp / "other.img");
        f.close();
        fs::resize_file(tmp / "other.img", 4 * kMiB);
    }
    LoopDevice other = LoopDevice::attach(tmp / "other.img");
    fs::create_symlink(other.path(), tmp / "dev/duet/r0");
    EXPECT_THROW(Device(options(), h), std::runtime_error);
    EXPECT_EQ(fs::read_symlink(tmp / "dev/duet/r0").string(), other.path());
    fs::remove(tmp / "dev/duet/r0");

    // A symlink to something that is not a loop device is refused.
    fs::create_symlink("/dev/null", tmp / "dev/duet/r0");
    EXPECT_THROW(Device(options(), h), std::runtime_error);
    EXPECT_EQ(fs::read_symlink(tmp / "dev/duet/r0").string(), "/dev/null");
}

TEST_F(FuseDeviceTest, ReplacesAStaleSymlinkToAVanishedLoopDevice) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    fs::create_directories(tmp / "dev/duet");
    fs::create_symlink("/dev/loop987654", tmp / "dev/duet/r0");
    Device dev(options(), h);
    EXPECT_EQ(fs::read_symlink(tmp / "dev/duet/r0").string(), dev.loop_path());
}

// The engine process dies (SIGKILL) with its device in place, then a new one starts with the same
// work dir and device path: the dead FUSE mount is cleared and the stale symlink replaced. With
// `mounted`, ext4 was mounted on the old device when the engine died.
void FuseDeviceTest::crash_and_restart(bool mounted) {
    const DeviceOptions opts = options();
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    const pid_t child = ::fork();  // no other thread runs here: every earlier Device has been torn down
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(pipefd[0]);
        try {
            MemoryHandler mh(opts.size);
            Device dev(opts, mh);
            if (mounted) {
                if (std::system(("mkfs.ext4 -q -F " + dev.loop_path() + " >/dev/null 2>&1").c_str()) != 0) _exit(2);
                fs::create_directories(tmp / "mnt");
                if (mount(dev.loop_path().c_str(), (tmp / "mnt").c_str(), "ext4", 0, nullptr) != 0) _exit(3);
            }
            const std::string loop = dev.loop_path() + "\n";
            if (::write(pipefd[1], loop.data(), loop.size()) < 0) _exit(4);
            ::kill(::getpid(), SIGKILL);
        } catch (...) {
        }
        _exit(1);
    }
    ::close(pipefd[1]);
    char buf[64] = {};
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf - 1);
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_GT(n, 0) << "the child failed with status " << status;
    ASSERT_TRUE(WIFSIGNALED(status));
    const std::string old_loop(buf, static_cast<size_t>(n - 1));
    // What the crash left: the symlink and the dead FUSE mount.
    ASSERT_EQ(fs::read_symlink(opts.link_path).string(), old_loop);
    ASSERT_EQ(mount_points_under(opts.work_dir + "/").size(), 1u);

    FileHandler h(tmp / "store.img", opts.size);
    {
        Device dev(opts, h);
        EXPECT_EQ(fs::read_symlink(opts.link_path).string(), dev.loop_path());
        Fd fd(::open(dev.loop_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
        AlignedBuffer b(4096);
        std::memset(b.data(), 1, 4096);
        EXPECT_EQ(::pwrite(fd.get(), b.data(), 4096, 0), 4096);
    }
    if (mounted) {
        // The old filesystem is dead (its engine is gone) but still mounted: unmounting it lets
        // its loop device detach (autoclear) and the lazily unmounted FUSE file go.
        ASSERT_EQ(umount2((tmp / "mnt").c_str(), 0), 0) << std::strerror(errno);
        for (int i = 0; i < 500 && LoopDevice::backing_file(old_loop) == opts.work_dir + "/disk"; ++i)
            std::this_thread::sleep_for(10ms);
    }
    EXPECT_NE(LoopDevice::backing_file(old_loop), std::optional<std::string>(opts.work_dir + "/disk"));
    expect_nothing_left();
}

TEST_F(FuseDeviceTest, RestartsAfterACrash) { crash_and_restart(false); }
TEST_F(FuseDeviceTest, RestartsAfterACrashWithTheFilesystemStillMounted) { crash_and_restart(true); }

// The engine goes away while a filesystem is still mounted on its device: the destructor does not
// hang, the filesystem gets I/O errors instead of stale data, and once it is unmounted nothing is left.
TEST_F(FuseDeviceTest, DestroyingAMountedDeviceEndsItWithoutHanging) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    auto dev = std::make_unique<Device>(options(), h);
    const std::string loop = dev->loop_path();
    int status = 0;
    const std::string out = run("mkfs.ext4 -q -F " + loop, &status);
    ASSERT_EQ(status, 0) << out;
    Mounted m(loop, tmp / "mnt");
    auto destroyed = std::async(std::launch::async, [&] { dev.reset(); });
    ASSERT_EQ(destroyed.wait_for(60s), std::future_status::ready) << "destroying a mounted device hangs";
    EXPECT_FALSE(fs::exists(fs::symlink_status(tmp / "dev/duet/r0")));
    {
        // Written data cannot become stable any more.
        Fd fd(::open((tmp / "mnt/after").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        const auto data = random_bytes(64 * 1024, 9);
        const bool wrote = fd.get() >= 0 && ::write(fd.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size());
        EXPECT_FALSE(wrote && ::fsync(fd.get()) == 0) << "an fsync succeeded on a device whose engine is gone";
    }
    m.unmount();
    for (int i = 0; i < 500 && LoopDevice::backing_file(loop); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_NE(LoopDevice::backing_file(loop), std::optional<std::string>(tmp / "run/replica/r0/disk"));
    expect_nothing_left();
}

TEST_F(FuseDeviceTest, RefusesASecondEngineOnTheSameWorkDir) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    Device dev(options(), h);
    DeviceOptions second = options();
    second.link_path = tmp / "dev/duet/other";
    try {
        Device again(second, h);
        ADD_FAILURE() << "two engines serve the same replica";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("already mounted"), std::string::npos) << e.what();
    }
    EXPECT_EQ(fs::read_symlink(dev.link_path()).string(), dev.loop_path());
    EXPECT_FALSE(fs::exists(fs::symlink_status(second.link_path)));
}

TEST_F(FuseDeviceTest, ReadOnlyDevice) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    {
        Device rw(options(), h);
        Fd fd(::open(rw.loop_path().c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
        AlignedBuffer b(4096);
        std::memset(b.data(), 0x5a, 4096);
        ASSERT_EQ(::pwrite(fd.get(), b.data(), 4096, 4096), 4096);
    }
    DeviceOptions o = options();
    o.read_only = true;
    Device dev(o, h);
    EXPECT_EQ(sysfs_queue(dev.loop_path(), "ro"), "1");
    AlignedBuffer b(4096);
    {
        // Linux lets a read-only block device be opened for writing; the writes fail.
        Fd w(::open(dev.loop_path().c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
        ASSERT_GE(w.get(), 0) << std::strerror(errno);
        const size_t writes_before = h.count(Op::Write);
        EXPECT_EQ(::pwrite(w.get(), b.data(), 4096, 0), -1);
        EXPECT_EQ(h.count(Op::Write), writes_before) << "a write reached the engine through a read-only device";
    }
    {
        // The FUSE file itself refuses to be opened for writing.
        errno = 0;
        Fd w(::open(dev.file_path().c_str(), O_RDWR | O_CLOEXEC));
        const int err = errno;
        EXPECT_LT(w.get(), 0);
        EXPECT_EQ(err, EROFS);
    }
    Fd fd(::open(dev.loop_path().c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    ASSERT_EQ(::pread(fd.get(), b.data(), 4096, 4096), 4096);
    EXPECT_EQ(b.data()[0], 0x5a);
    EXPECT_EQ(b.data()[4095], 0x5a);
}

TEST_F(FuseDeviceTest, LogicalBlockSize4096AlignsEveryRequest) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    DeviceOptions o = options();
    o.block_size = 4096;
    Device dev(o, h);
    EXPECT_EQ(sysfs_queue(dev.loop_path(), "queue/logical_block_size"), "4096");
    int status = 0;
    const std::string out = run("mkfs.ext4 -q -F " + dev.loop_path(), &status);
    ASSERT_EQ(status, 0) << out;
    {
        Mounted m(dev.loop_path(), tmp / "mnt");
        write_and_fsync(tmp / "mnt/f", random_bytes(300 * 1024 + 1, 3));
    }
    size_t n = 0;
    for (const auto& r : h.requests()) {
        if (r.op == Op::Flush) continue;
        ++n;
        EXPECT_EQ(r.offset % 4096, 0u);
        EXPECT_EQ(r.length % 4096, 0u);
    }
    EXPECT_GT(n, 10u);
}

TEST_F(FuseDeviceTest, RejectsBadOptions) {
    FileHandler h(tmp / "store.img", 64 * kMiB);
    DeviceOptions o = options();
    o.size = 64 * kMiB + 512;
    EXPECT_THROW(Device(o, h), std::runtime_error);
    o = options();
    o.work_dir = "relative/dir";
    EXPECT_THROW(Device(o, h), std::runtime_error);
    o = options();
    o.block_size = 3000;
    EXPECT_THROW(Device(o, h), std::runtime_error);
    expect_nothing_left();
    EXPECT_FALSE(fs::exists(fs::symlink_status(o.link_path)));
}

// Print-only: how fast the FUSE + loop route is with a trivial in-memory engine. No assertions on
// speed (benchmarks live in scripts/bench); the numbers help spot a per-request cost in our layer.
TEST_F(FuseDeviceTest, ThroughputPrintout) {
    constexpr uint64_t kSize = 256 * kMiB;
    MemoryHandler h(kSize);
    DeviceOptions o = options(kSize);
    o.threads = 64;
    Device dev(o, h);
    auto dd = [&](const std::string& args) {
        int status = 0;
        std::string out = run("dd " + args + " bs=1M count=256", &status);
        EXPECT_EQ(status, 0) << out;
        const auto nl = out.find_last_of('\n', out.size() - 2);
        return out.substr(nl == std::string::npos ? 0 : nl + 1);
    };
    std::printf("[ throughput ] dd 1 MiB O_DIRECT write: %s", dd("if=/dev/zero of=" + dev.loop_path() + " oflag=direct").c_str());
    std::printf("[ throughput ] dd 1 MiB O_DIRECT read:  %s", dd("if=" + dev.loop_path() + " of=/dev/null iflag=direct").c_str());

    constexpr int kThreads = 8;
    for (const bool writes : {false, true}) {
        std::atomic<uint64_t> ops{0};
        std::atomic<bool> failed{false};
        std::vector<std::thread> threads;
        const auto until = std::chrono::steady_clock::now() + 2s;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                Fd fd(::open(dev.loop_path().c_str(), (writes ? O_WRONLY : O_RDONLY) | O_DIRECT | O_CLOEXEC));
                AlignedBuffer b(4096);
                std::memset(b.data(), t, 4096);
                std::mt19937_64 rng(t);
                const uint64_t region = kSize / kThreads, blocks = region / 4096;
                uint64_t n = 0;
                while (std::chrono::steady_clock::now() < until) {
                    const off_t off = static_cast<off_t>(region * t + (rng() % blocks) * 4096);
                    const ssize_t r = writes ? ::pwrite(fd.get(), b.data(), 4096, off) : ::pread(fd.get(), b.data(), 4096, off);
                    if (r != 4096) {
                        failed = true;
                        break;
                    }
                    ++n;
                }
                ops += n;
            });
        }
        for (auto& t : threads) t.join();
        EXPECT_FALSE(failed.load());
        std::printf("[ throughput ] 4 KiB random O_DIRECT %s, %d threads: %.0f IOPS\n", writes ? "writes" : "reads",
                    kThreads, static_cast<double>(ops.load()) / 2.0);
    }
}

}  // namespace
}  // namespace duet::replication
