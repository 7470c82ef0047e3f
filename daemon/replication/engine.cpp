#include "daemon/replication/engine.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <random>
#include <system_error>

#include <openssl/rand.h>

#include "daemon/replication/activity_log.hpp"
#include "daemon/replication/bitmap.hpp"
#include "daemon/replication/genid.hpp"
#include "daemon/replication/io_buffer.hpp"
#include "daemon/replication/link.hpp"
#include "daemon/util/log.hpp"

namespace duet::replication {

namespace pr = proto::repl;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr size_t kMaxIo = 1u << 20;              // largest request we copy in one piece (FUSE max_write)
constexpr uint64_t kResyncChunk = 1u << 20;      // one ResyncData frame at most
constexpr uint64_t kResyncWindow = 16u << 20;    // resync bytes in flight at most
constexpr unsigned kResyncReaders = 3;            // resync reads in progress at once
constexpr auto kPingInterval = 1s;
constexpr auto kPeerTimeout = 6s;                // no frame for this long: the link is dead
constexpr auto kHandshakeTimeout = 5s;
constexpr unsigned kApplyThreads = 8;

IoBuffer& thread_buffer(size_t n) {
    thread_local IoBuffer buf;
    buf.resize(n);
    return buf;
}

std::string errno_text(int e) { return std::strerror(e); }

// Size in bytes of a block device or regular file.
uint64_t device_size(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw std::system_error(errno, std::generic_category(), "fstat");
    if (S_ISBLK(st.st_mode)) {
        uint64_t n = 0;
        if (::ioctl(fd, BLKGETSIZE64, &n) != 0) throw std::system_error(errno, std::generic_category(), "BLKGETSIZE64");
        return n;
    }
    if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
    throw std::runtime_error("not a block device or regular file");
}

uint64_t fresh_uuid() {
    uint64_t v = 0;
    while (v == 0 || v == kJustCreated) {  // (random_generation() does the same)
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
            std::random_device rd;
            v = (uint64_t(rd()) << 32) ^ rd();
        }
    }
    return v;
}

std::string hex(uint64_t v) {
    char b[20];
    std::snprintf(b, sizeof b, "%016llX", static_cast<unsigned long long>(v));
    return b;
}

// "198.51.100.1" + 7788 -> sockaddr; IPv6 literals too.
bool make_addr(const std::string& ip, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
    std::memset(&ss, 0, sizeof ss);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    std::string bare = ip;
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
    if (inet_pton(AF_INET6, bare.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
        return true;
    }
    return false;
}

}  // namespace

// ---- per-connection state ------------------------------------------------------------------------

struct Engine::PendingWrite {
    uint64_t offset = 0, length = 0;
    std::optional<Completion> c;
    std::mutex m;
    bool local_done = false, remote_done = false, completed = false;
    int err = 0;
    bool trim = false;
};

struct Engine::PendingFlush {
    std::optional<Completion> c;
    std::mutex m;
    bool local_done = false, remote_done = false, completed = false;
    int err = 0;
};

// Applies the peer's writes on the Secondary: several at once, but a write never overtakes an
// earlier one it overlaps, and a flush waits for everything before it.
class Engine::Applier {
public:
    struct Op {
        pr::Header h;
        uint64_t len = 0;  // bytes covered on the device (a Trim's length is in its body)
        IoBuffer buf;      // the payload as received (aligned: written to the disk as it is)
    };
    Applier(Engine& e, std::shared_ptr<Session> s) : e_(e), s_(std::move(s)) {
        for (unsigned i = 0; i < kApplyThreads; ++i) threads_.emplace_back([this] { run(); });
    }
    ~Applier() {
        {
            std::lock_guard l(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    // Called by the receiver thread, in arrival order. Blocks while an earlier overlapping op is in
    // flight or too many are.
    void submit(std::unique_ptr<Op> op) {
        std::unique_lock l(m_);
        uint64_t lo = op->h.offset, hi = lo + op->len;
        cv_.wait(l, [&] {
            if (stop_) return true;
            if (inflight_.size() >= 2 * kApplyThreads) return false;
            for (const auto& [a, b] : inflight_)
                if (a < hi && lo < b) return false;
            return true;
        });
        if (stop_) return;
        inflight_.emplace_back(lo, hi);
        queue_.push_back(std::move(op));
        cv_.notify_all();
    }
    // Called by the receiver thread: applies a small op on the receiver thread itself when
    // nothing else is in flight (no hand-off to a pool thread: the latency of a lone 4 KiB write
    // or a journal commit). False, and nothing done, when the op must go through submit().
    bool apply_inline(std::unique_ptr<Op>& op) {
        if (op->len > kInlineMax) return false;
        {
            std::lock_guard l(m_);
            if (stop_ || !inflight_.empty() || !queue_.empty()) return false;
            inflight_.emplace_back(op->h.offset, op->h.offset + op->len);
        }
        apply(*op);
        done(std::move(op));
        return true;
    }
    void drain() {
        std::unique_lock l(m_);
        cv_.wait(l, [&] { return stop_ || (inflight_.empty() && queue_.empty()); });
    }
    // A receive buffer: one an applied op gave back, else a new one.
    IoBuffer take_buffer() {
        std::lock_guard l(m_);
        if (pool_.empty()) return {};
        IoBuffer b = std::move(pool_.back());
        pool_.pop_back();
        return b;
    }

private:
    static constexpr uint64_t kInlineMax = 64u << 10;
    static constexpr size_t kPoolMax = 4 * kApplyThreads;
    void run();
    void apply(Op& op);  // the local write or trim, then the ack
    void done(std::unique_ptr<Op> op);  // no longer in flight; its buffer back to the pool

    Engine& e_;
    std::shared_ptr<Session> s_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Op>> queue_;
    std::vector<std::pair<uint64_t, uint64_t>> inflight_;
    std::vector<std::thread> threads_;
    std::vector<IoBuffer> pool_;
    bool stop_ = false;
    friend class Engine;
};

struct Engine::Session {
    std::unique_ptr<Link> link;
    std::atomic<bool> dead{false};
    bool ready = false;           // handshake frames sent: writes may use the link
    bool established = false;     // decision made, this pair works together
    std::string reason;           // why it ended
    std::atomic<int64_t> last_rx_ms{0};

    // what the peer said
    bool peer_known = false;
    pr::State peer;
    std::vector<uint64_t> peer_words;

    // pending requests of ours
    std::mutex pmu;
    std::map<uint64_t, std::shared_ptr<PendingWrite>> writes;
    std::map<uint64_t, std::shared_ptr<PendingFlush>> flushes;

    // resync
    enum class Sync { None, Source, Target } sync = Sync::None;
    std::mutex rmu;
    std::condition_variable rcv;
    std::map<uint64_t, std::pair<uint64_t, uint64_t>> resync_inflight;  // id -> offset, length
    uint64_t resync_inflight_bytes = 0;
    uint64_t sync_total = 0;
    std::atomic<uint64_t> sync_done{0};
    Clock::time_point sync_started;
    std::thread resync_thread;

    std::thread rx;
    std::unique_ptr<Applier> applier;
};

static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

void Engine::Applier::run() {
    for (;;) {
        std::unique_ptr<Op> op;
        {
            std::unique_lock l(m_);
            cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
            if (stop_ && queue_.empty()) return;
            op = std::move(queue_.front());
            queue_.pop_front();
        }
        apply(*op);
        done(std::move(op));
    }
}

void Engine::Applier::apply(Op& op) {
    int err = 0;
    pr::Type ack = pr::Type::WriteAck;
    if (op.h.type == pr::Type::Trim) {
        err = e_.local_discard(op.h.offset, op.len);
    } else {
        if (op.h.type == pr::Type::ResyncData) ack = pr::Type::ResyncAck;
        try {
            e_.local_write(op.h.offset, op.buf.span());
        } catch (const std::system_error& ex) {
            err = ex.code().value();
            log::error("replica " + e_.cfg_.replica.name + ": writing the peer's data at " + std::to_string(op.h.offset) +
                       ": " + ex.what());
        }
    }
    bool ack_now = !(op.h.flags & pr::kFlagAckOnReceive) || op.h.type != pr::Type::Write;
    if (ack_now && !s_->dead) {
        try {
            s_->link->send(pr::Header{ack, 0, op.h.id, op.h.offset, 0, static_cast<uint32_t>(err)});
        } catch (const std::exception&) {
            // the receiver sees the link fail and ends the session
        }
    }
}

void Engine::Applier::done(std::unique_ptr<Op> op) {
    {
        std::lock_guard l(m_);
        uint64_t lo = op->h.offset;
        uint64_t hi = lo + op->len;
        auto it = std::find(inflight_.begin(), inflight_.end(), std::make_pair(lo, hi));
        if (it != inflight_.end()) inflight_.erase(it);
        if (op->buf.capacity() && pool_.size() < kPoolMax) pool_.push_back(std::move(op->buf));
    }
    cv_.notify_all();
}

// ---- construction ----------------------------------------------------------------------------------

Engine::Engine(EngineConfig cfg) : cfg_(std::move(cfg)) {
    me_ = cfg_.replica.on(cfg_.node);
    peer_ = cfg_.replica.on(cfg_.peer_node);
    if (!me_ || !peer_)
        throw EngineError("replica " + cfg_.replica.name + " has no section for node " + (me_ ? cfg_.peer_node : cfg_.node));
    const std::string& disk = me_->disk;
    // O_EXCL claims a block device, as a mount does: nobody mounts or mkfs'es it under us.
    data_fd_ = ::open(disk.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC | O_EXCL);
    if (data_fd_ < 0 && errno == EBUSY)
        throw EngineError("the backing disk " + disk + " is in use (mounted, or claimed by another program)");
    if (data_fd_ < 0) throw EngineError("cannot open the backing disk " + disk + ": " + errno_text(errno));
    bool internal = me_->meta_disk == "internal";
    if (internal) {
        meta_fd_ = ::open(disk.c_str(), O_RDWR | O_CLOEXEC);
    } else {
        meta_fd_ = ::open(me_->meta_disk.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (meta_fd_ < 0) {
        int e = errno;
        ::close(data_fd_);
        throw EngineError("cannot open the metadata " + (internal ? disk : me_->meta_disk) + ": " + errno_text(e));
    }
    try {
        uint64_t backing = device_size(data_fd_);
        uint64_t md_size = internal ? 0 : device_size(meta_fd_);
        layout_ = layout_of_existing(meta_fd_, backing, internal, md_size);
        sb_ = read_superblock(meta_fd_, layout_);
        crashed_primary_ = sb_.crashed_primary();
    } catch (const std::exception& e) {
        ::close(data_fd_);
        ::close(meta_fd_);
        throw EngineError(std::string(e.what()) + " (backing disk " + disk + "; create the metadata with `hactl replica create-md " +
                          cfg_.replica.name + "`)");
    }
    bitmap_ = std::make_unique<Bitmap>(layout_.data_size, layout_.block_size);
    bitmap_->load(meta_fd_, layout_.bitmap_offset);
    // After an unclean stop, the extents the activity log names may differ from the peer's copy.
    if (!(sb_.flags & kMdClean)) {
        auto extents = ActivityLog::recover(meta_fd_, layout_);
        for (uint64_t first : extents) bitmap_->set(first, std::min<uint64_t>(layout_.al_extent_size, layout_.data_size - first));
        if (!extents.empty())
            log::warning("replica " + cfg_.replica.name + ": last stop was unclean; " + std::to_string(extents.size()) +
                         " activity-log extents marked out of sync");
        flush_bitmap();
    }
    al_ = std::make_unique<ActivityLog>(meta_fd_, layout_, sb_.al_seq);
    al_->on_evict([this](uint64_t, uint64_t) { flush_bitmap(); });
    // Running now: a crash from here on is unclean.
    sb_.flags &= ~kMdClean;
    persist_locked();
}

// Ends the link for good and waits for the connector (and so every session thread) to finish.
void Engine::stop_link() {
    {
        std::lock_guard l(mu_);
        stopping_ = true;
        want_connected_ = false;
    }
    cv_.notify_all();
    std::shared_ptr<Session> s;
    {
        std::lock_guard l(mu_);
        s = session_;
    }
    if (s) end_session(s, "engine stopping");
    if (connector_.joinable()) connector_.join();
}

Engine::~Engine() {
    stop_link();
    device_.reset();
    if (data_fd_ >= 0) ::close(data_fd_);
    if (meta_fd_ >= 0) ::close(meta_fd_);
}

void Engine::start() {
    connector_ = std::thread([this] { connector_loop(); });
}

std::string Engine::stop() {
    {
        std::lock_guard l(mu_);
        if (device_ && device_->in_use())
            return "device " + cfg_.replica.device + " (" + device_->loop_path() + ") is in use: unmount it first";
    }
    if (auto r = demote(); !r.empty()) return r;
    stop_link();
    flush_bitmap();
    std::lock_guard l(mu_);
    al_->clear_on_disk();
    sb_.al_seq = al_->sequence();
    sb_.flags |= kMdClean;
    persist_locked();
    return {};
}

// ---- local disk ------------------------------------------------------------------------------------

void Engine::local_write(uint64_t offset, std::span<const uint8_t> data) {
    const uint8_t* src = data.data();
    if (reinterpret_cast<uintptr_t>(src) % IoBuffer::kAlign != 0) {
        auto& b = thread_buffer(data.size());
        std::memcpy(b.data(), src, data.size());
        src = b.data();
    }
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(data_fd_, src + done, data.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "pwrite " + me_->disk);
        }
        if (n == 0) throw std::system_error(EIO, std::generic_category(), "short write on " + me_->disk);
        done += static_cast<size_t>(n);
    }
    written_ += data.size();
}

void Engine::local_read(uint64_t offset, size_t length, uint8_t* out) {
    size_t done = 0;
    while (done < length) {
        ssize_t n = ::pread(data_fd_, out + done, length - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "pread " + me_->disk);
        }
        if (n == 0) throw std::system_error(EIO, std::generic_category(), "short read on " + me_->disk);
        done += static_cast<size_t>(n);
    }
    read_ += length;
}

int Engine::local_discard(uint64_t offset, uint64_t length) {
    struct stat st {};
    if (::fstat(data_fd_, &st) != 0) return errno;
    uint64_t at = offset;
    if (S_ISBLK(st.st_mode)) {
        uint64_t range[2] = {at, length};
        if (::ioctl(data_fd_, BLKDISCARD, range) != 0) return errno;
        return 0;
    }
    if (::fallocate(data_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(at), static_cast<off_t>(length)) != 0)
        return errno;
    return 0;
}

void Engine::persist_locked() {
    write_superblock(meta_fd_, layout_, sb_);
}

void Engine::flush_bitmap() {
    bitmap_->flush(meta_fd_, layout_.bitmap_offset);
}

std::vector<size_t> Engine::stripes_for(uint64_t offset, uint64_t length) const {
    std::vector<size_t> v;
    uint64_t first = offset >> 20, last = (offset + std::max<uint64_t>(length, 1) - 1) >> 20;
    for (uint64_t m = first; m <= last && v.size() < stripes_.size(); ++m) v.push_back(m % stripes_.size());
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

// ---- the device: the Primary's write path ----------------------------------------------------------

void Engine::read(uint64_t offset, size_t length, ReadCompletion c) {
    if (offset + length > layout_.data_size) return c.fail(EINVAL);
    auto& b = thread_buffer(length);
    try {
        local_read(offset, length, b.data());
    } catch (const std::system_error& e) {
        log::error("replica " + cfg_.replica.name + ": " + e.what());
        return c.fail(EIO);
    }
    c.done({b.data(), length});
}

void Engine::complete_write(const std::shared_ptr<PendingWrite>& w) {
    {
        std::lock_guard l(w->m);
        if (w->completed || !w->local_done || !w->remote_done) return;
        w->completed = true;
    }
    al_->end_write(w->offset, std::max<uint64_t>(w->length, 1));
    --app_inflight_;
    if (w->err) w->c->fail(w->err);
    else w->c->done();
}

void Engine::write(uint64_t offset, std::span<const uint8_t> data, Completion c) {
    if (offset % 512 || data.size() % 512 || offset + data.size() > layout_.data_size) return c.fail(EINVAL);
    auto w = std::make_shared<PendingWrite>();
    w->offset = offset;
    w->length = data.size();
    w->c.emplace(std::move(c));
    al_->begin_write(offset, std::max<uint64_t>(data.size(), 1));
    ++app_inflight_;
    {
        std::shared_lock io(io_mu_);
        std::shared_ptr<Session> s = session_;
        bool replicate = s && s->ready && !s->dead;
        auto st = stripes_for(offset, data.size());
        for (size_t i : st) stripes_[i].lock();
        if (replicate) {
            uint64_t id = next_id_++;
            {
                std::lock_guard l(s->pmu);
                s->writes.emplace(id, w);
            }
            uint16_t flags = cfg_.replica.protocol == 'B' ? pr::kFlagAckOnReceive : 0;
            try {
                s->link->send(pr::Header{pr::Type::Write, flags, id, offset, static_cast<uint32_t>(data.size()), 0}, data);
                sent_ += data.size();
                if (cfg_.replica.protocol == 'A') {
                    std::lock_guard l(s->pmu);
                    s->writes.erase(id);
                    w->remote_done = true;
                }
            } catch (const std::exception& e) {
                // The link broke under us: the receiver ends the session; this write is out of sync.
                std::lock_guard l(s->pmu);
                if (s->writes.erase(id)) {
                    bitmap_->set(offset, data.size());
                    std::lock_guard lw(w->m);
                    w->remote_done = true;
                }
                s->link->shutdown();
            }
        } else {
            bitmap_->set(offset, data.size());
            w->remote_done = true;
        }
        try {
            local_write(offset, data);
        } catch (const std::system_error& e) {
            log::error("replica " + cfg_.replica.name + ": " + e.what());
            w->err = EIO;
        }
        for (size_t i : st) stripes_[i].unlock();
    }
    {
        std::lock_guard l(w->m);
        w->local_done = true;
    }
    complete_write(w);
}

void Engine::discard(uint64_t offset, uint64_t length, Completion c) {
    if (offset >= layout_.data_size) return c.done();
    length = std::min(length, layout_.data_size - offset);
    auto w = std::make_shared<PendingWrite>();
    w->offset = offset;
    w->length = length;
    w->trim = true;
    w->c.emplace(std::move(c));
    al_->begin_write(offset, std::max<uint64_t>(length, 1));
    ++app_inflight_;
    {
        std::shared_lock io(io_mu_);
        std::shared_ptr<Session> s = session_;
        bool replicate = s && s->ready && !s->dead;
        if (replicate) {
            uint64_t id = next_id_++;
            {
                std::lock_guard l(s->pmu);
                s->writes.emplace(id, w);
            }
            auto body = pr::encode(pr::TrimBody{length});
            try {
                s->link->send(pr::Header{pr::Type::Trim, 0, id, offset, static_cast<uint32_t>(body.size()), 0}, body);
            } catch (const std::exception&) {
                std::lock_guard l(s->pmu);
                if (s->writes.erase(id)) {
                    bitmap_->set(offset, length);
                    std::lock_guard lw(w->m);
                    w->remote_done = true;
                }
                s->link->shutdown();
            }
        } else {
            bitmap_->set(offset, length);
            w->remote_done = true;
        }
        int e = local_discard(offset, length);
        if (e) {
            // The peer may have discarded: what we hold there now differs; resync sends ours.
            bitmap_->set(offset, length);
            w->err = e;
        }
    }
    {
        std::lock_guard l(w->m);
        w->local_done = true;
    }
    complete_write(w);
}

void Engine::flush(Completion c) {
    auto f = std::make_shared<PendingFlush>();
    f->c.emplace(std::move(c));
    auto finish = [](const std::shared_ptr<PendingFlush>& f) {
        {
            std::lock_guard l(f->m);
            if (f->completed || !f->local_done || !f->remote_done) return;
            f->completed = true;
        }
        if (f->err) f->c->fail(f->err);
        else f->c->done();
    };
    {
        std::shared_lock io(io_mu_);
        std::shared_ptr<Session> s = session_;
        if (s && s->ready && !s->dead) {
            uint64_t id = next_id_++;
            {
                std::lock_guard l(s->pmu);
                s->flushes.emplace(id, f);
            }
            try {
                s->link->send(pr::Header{pr::Type::Flush, 0, id, 0, 0, 0});
            } catch (const std::exception&) {
                std::lock_guard l(s->pmu);
                if (s->flushes.erase(id)) f->remote_done = true;
                s->link->shutdown();
            }
        } else {
            f->remote_done = true;
        }
    }
    int err = ::fdatasync(data_fd_) == 0 ? 0 : errno;
    {
        std::lock_guard l(f->m);
        f->local_done = true;
        if (err) f->err = err;
    }
    finish(f);
}

// ---- roles -----------------------------------------------------------------------------------------

pr::State Engine::local_state_locked() const {
    pr::State st;
    st.role = role_;
    st.disk = sb_.disk;
    st.gen = sb_.gen;
    st.out_of_sync = bitmap_->count();
    if (crashed_primary_) st.flags |= pr::kStateCrashedPrimary;
    return st;
}

void Engine::send_state(const std::shared_ptr<Session>& s) {
    if (!s || s->dead) return;
    pr::State st;
    {
        std::lock_guard l(mu_);  // callers do not hold it
        st = local_state_locked();
    }
    auto body = pr::encode(st);
    try {
        s->link->send(pr::Header{pr::Type::State, 0, 0, 0, static_cast<uint32_t>(body.size()), 0}, body);
    } catch (const std::exception&) {
        s->link->shutdown();
    }
}

std::string Engine::promote(bool force, bool overwrite_peer, bool peer_dead) {
    if (peer_dead) {
        // The cluster declared the peer dead, but our link may not have timed out yet. If the peer
        // still answers on it, it is alive (only its heartbeats are lost) and its role stands;
        // if it stays silent for a second, the link is as dead as the peer.
        std::shared_ptr<Session> s;
        {
            std::lock_guard l(mu_);
            s = session_;
        }
        if (s && !s->dead) {
            int64_t before = now_ms();
            try {
                s->link->send(pr::Header{pr::Type::Ping, 0, next_id_++, 0, 0, 0});
            } catch (const std::exception&) {
            }
            while (!s->dead && s->last_rx_ms < before && now_ms() - before < 1000) std::this_thread::sleep_for(20ms);
            if (!s->dead && s->last_rx_ms < before)
                end_session(s, "no answer from " + cfg_.peer_node + ", which the cluster declared dead");
        }
    }
    std::unique_lock l(mu_);
    if (role_ == pr::Role::Primary) return {};
    std::shared_ptr<Session> s = session_;
    bool connected = s && s->established && !s->dead;
    if (connected && s->peer_known && s->peer.role == pr::Role::Primary)
        return "the peer " + cfg_.peer_node + " is Primary: demote it first (only one node may be Primary)";
    if (connected && s->sync == Session::Sync::Target && !force)
        return "this node is receiving a resync from " + cfg_.peer_node + " (its data is Inconsistent until it finishes)";
    bool renegotiate = false;
    if (overwrite_peer) {
        if (connected && s->peer_known && s->peer.disk == pr::Disk::UpToDate && sb_.disk != pr::Disk::UpToDate)
            log::warning("replica " + cfg_.replica.name + ": --overwrite-data-of-peer: replacing " + cfg_.peer_node +
                         "'s UpToDate data with this node's");
        sb_.disk = pr::Disk::UpToDate;
        sb_.gen = on_new_current(sb_.gen, fresh_uuid());
        bitmap_->set_all();
        renegotiate = connected;
    } else if (sb_.disk != pr::Disk::UpToDate) {
        if (!force)
            return std::string("local data is ") + pr::to_string(sb_.disk) +
                   ": promote with --overwrite-data-of-peer for the first sync, or --force to use it anyway";
        log::warning("replica " + cfg_.replica.name + ": --force: promoting " + pr::to_string(sb_.disk) + " data");
        sb_.disk = pr::Disk::UpToDate;
        sb_.gen = on_new_current(sb_.gen, fresh_uuid());
    } else if (!connected) {
        // Writes from now on are ours alone: a new generation, the old one kept as the bitmap's base.
        sb_.gen = on_new_current(sb_.gen, fresh_uuid());
    }
    DeviceOptions o;
    o.size = layout_.data_size;
    o.work_dir = cfg_.run_dir + "/" + cfg_.replica.name;
    o.link_path = cfg_.replica.device;
    try {
        device_ = std::make_unique<Device>(o, *this);
    } catch (const std::exception& e) {
        persist_locked();
        return std::string("cannot create the device: ") + e.what();
    }
    sb_.flags |= kMdPrimary;
    role_ = pr::Role::Primary;
    persist_locked();
    flush_bitmap();
    log::notice("replica " + cfg_.replica.name + ": Primary; device " + cfg_.replica.device + " -> " + device_->loop_path());
    std::string dev = cfg_.replica.device;
    l.unlock();
    send_state(s);
    emit({{"type", "role"}, {"role", "Primary"}, {"device", dev}});
    if (renegotiate && s) end_session(s, "resynchronising: this node's data overwrites " + cfg_.peer_node + "'s");
    return {};
}

std::string Engine::demote() {
    std::unique_lock l(mu_);
    if (role_ == pr::Role::Secondary) return {};
    if (device_ && device_->in_use())
        return "device " + cfg_.replica.device + " (" + device_->loop_path() + ") is in use (mounted or open): unmount it first";
    try {
        if (device_) device_->close();
    } catch (const std::exception& e) {
        return std::string("cannot remove the device: ") + e.what();
    }
    device_.reset();
    ::fdatasync(data_fd_);
    role_ = pr::Role::Secondary;
    sb_.flags &= ~kMdPrimary;
    persist_locked();
    flush_bitmap();
    std::shared_ptr<Session> s = session_;
    l.unlock();
    log::notice("replica " + cfg_.replica.name + ": Secondary");
    send_state(s);
    emit({{"type", "role"}, {"role", "Secondary"}});
    return {};
}

std::string Engine::connect() {
    {
        std::lock_guard l(mu_);
        want_connected_ = true;
    }
    cv_.notify_all();
    return {};
}

std::string Engine::disconnect() {
    std::shared_ptr<Session> s;
    {
        std::lock_guard l(mu_);
        want_connected_ = false;
        s = session_;
    }
    cv_.notify_all();
    if (s) end_session(s, "disconnected by request");
    return {};
}

// ---- the link ----------------------------------------------------------------------------------

int Engine::dial(std::string& err) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!make_addr(peer_->address, peer_->port, ss, len)) {
        err = "bad peer address " + peer_->address;
        return -1;
    }
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno_text(errno);
        return -1;
    }
    sockaddr_storage me;
    socklen_t mlen = 0;
    if (make_addr(me_->address, 0, me, mlen)) ::bind(fd, reinterpret_cast<sockaddr*>(&me), mlen);  // leave by our replication address
    // connect with a timeout
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
    if (rc != 0 && errno != EINPROGRESS) {
        err = errno_text(errno);
        ::close(fd);
        return -1;
    }
    if (rc != 0) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 2000) <= 0) {
            err = "no answer";
            ::close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            err = errno_text(soerr);
            ::close(fd);
            return -1;
        }
    }
    ::fcntl(fd, F_SETFL, fl);
    return fd;
}

void Engine::connector_loop() {
    const bool initiator = cfg_.node < cfg_.peer_node;  // one side dials, the other listens
    int lfd = -1;
    std::string peer_addr = peer_->address + ":" + std::to_string(peer_->port);
    LinkIdentity id;
    id.cluster = cfg_.cluster;
    id.replica = cfg_.replica.name;
    id.node = cfg_.node;
    id.peer_node = cfg_.peer_node;
    id.size = layout_.data_size;
    id.secret = cfg_.replica.secret;
    id.encrypt = cfg_.replica.encrypt;
    log::RateLimiter rl(60000);
    auto note = [&](const std::string& key, const std::string& msg) {
        uint64_t suppressed = 0;
        if (rl.allow(key, now_ms(), suppressed))
            log::warning("replica " + cfg_.replica.name + ": " + msg +
                         (suppressed ? " (" + std::to_string(suppressed) + " more like it)" : std::string()));
        std::lock_guard l(mu_);
        last_error_ = msg;
    };
    auto wait = [&](std::chrono::milliseconds d) {
        std::unique_lock l(mu_);
        cv_.wait_for(l, d, [&] { return stopping_; });
    };
    auto accept_one = [&](int timeout_ms) -> std::unique_ptr<Link> {
        pollfd p{lfd, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return nullptr;
        sockaddr_storage from;
        socklen_t fl = sizeof from;
        int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&from), &fl, SOCK_CLOEXEC);
        if (fd < 0) return nullptr;
        try {
            return Link::establish(fd, id, std::chrono::duration_cast<std::chrono::milliseconds>(kHandshakeTimeout));
        } catch (const std::exception& e) {
            // One line per kind of refusal a minute (the reason without the caller's port), so a
            // flood of bad connections cannot flood the log but every kind of mistake shows.
            std::string w = e.what();
            auto colon = w.find(": ");
            note("accept:" + (colon == std::string::npos ? w : w.substr(colon + 2)), "refused a connection: " + w);
            return nullptr;
        }
    };
    if (!initiator) {
        sockaddr_storage ss;
        socklen_t len = 0;
        if (!make_addr(me_->address, me_->port, ss, len)) {
            note("listen", "bad address " + me_->address);
            return;
        }
        for (;;) {
            lfd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int one = 1;
            ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (::bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) == 0 && ::listen(lfd, 4) == 0) break;
            note("listen", "cannot listen on " + me_->address + ":" + std::to_string(me_->port) + ": " + errno_text(errno) +
                               " (retrying)");
            ::close(lfd);
            lfd = -1;
            wait(1s);
            std::lock_guard l(mu_);
            if (stopping_) return;
        }
    }
    std::unique_ptr<Link> next;
    for (;;) {
        {
            std::unique_lock l(mu_);
            if (stopping_) break;
            if (!want_connected_) {
                cv_.wait_for(l, 500ms);
                continue;
            }
        }
        std::unique_ptr<Link> link = std::move(next);
        if (!link) {
            if (initiator) {
                std::string err;
                int fd = dial(err);
                if (fd < 0) {
                    note("dial", "cannot reach " + cfg_.peer_node + " at " + peer_addr + ": " + err);
                    wait(1s);
                    continue;
                }
                try {
                    link = Link::establish(fd, id, std::chrono::duration_cast<std::chrono::milliseconds>(kHandshakeTimeout));
                } catch (const std::exception& e) {
                    note("handshake", e.what());
                    wait(2s);
                    continue;
                }
            } else {
                link = accept_one(500);
                if (!link) continue;
            }
        }
        std::string peer = link->peer();
        log::notice("replica " + cfg_.replica.name + ": connected to " + cfg_.peer_node + " at " + peer +
                    (link->encrypted() ? " (encrypted)" : ""));
        auto s = std::make_shared<Session>();
        s->link = std::move(link);
        s->last_rx_ms = now_ms();
        {
            std::unique_lock l(mu_);
            std::unique_lock io(io_mu_);
            session_ = s;
            s->applier = std::make_unique<Applier>(*this, s);
            // What we are, then our bitmap, before any write can use the link.
            pr::State st = local_state_locked();
            auto body = pr::encode(st);
            try {
                s->link->send(pr::Header{pr::Type::State, 0, 0, 0, static_cast<uint32_t>(body.size()), 0}, body);
                uint64_t words = (bitmap_->blocks() + 63) / 64;
                std::vector<uint64_t> chunk;
                std::vector<uint8_t> bytes;
                for (uint64_t w = 0; w < words; w += 65536) {
                    uint64_t n = std::min<uint64_t>(65536, words - w);
                    chunk = bitmap_->words(w, n);
                    bytes.resize(n * 8);
                    for (uint64_t i = 0; i < n; ++i)
                        for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<uint8_t>(chunk[i] >> (56 - 8 * b));
                    s->link->send(pr::Header{pr::Type::Bitmap, 0, 0, w, static_cast<uint32_t>(bytes.size()), 0}, bytes);
                }
                s->link->send(pr::Header{pr::Type::BitmapDone, 0, 0, 0, 0, 0});
                s->ready = true;
            } catch (const std::exception& e) {
                s->reason = e.what();
                s->dead = true;
            }
        }
        if (!s->dead) s->rx = std::thread([this, s] { receiver_loop(s); });
        emit({{"type", "connection"}, {"state", "Connected"}, {"peer", peer}});
        // Watch the session: pings, the peer's silence, and (listening side) a peer that reconnected.
        auto last_ping = Clock::now();
        while (!s->dead) {
            if (!initiator) {
                auto nl = accept_one(200);
                if (nl) {
                    next = std::move(nl);
                    end_session(s, "the peer connected again");
                    break;
                }
            } else {
                wait(200ms);
            }
            {
                std::lock_guard l(mu_);
                if (stopping_ || !want_connected_) break;
            }
            if (Clock::now() - last_ping >= kPingInterval) {
                last_ping = Clock::now();
                try {
                    s->link->send(pr::Header{pr::Type::Ping, 0, next_id_++, 0, 0, 0});
                } catch (const std::exception&) {
                    s->link->shutdown();
                }
            }
            if (now_ms() - s->last_rx_ms > std::chrono::duration_cast<std::chrono::milliseconds>(kPeerTimeout).count())
                end_session(s, "no answer from " + cfg_.peer_node + " for " +
                                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kPeerTimeout).count()) + " s");
        }
        if (!s->dead) end_session(s, "engine stopping");
        if (s->rx.joinable()) s->rx.join();
        if (s->resync_thread.joinable()) s->resync_thread.join();
        s->applier.reset();
        s->link.reset();
        bool refused = s->reason.find("refus") != std::string::npos || s->reason.find("split brain") != std::string::npos ||
                       s->reason.find("unrelated") != std::string::npos;
        if (refused && !next) wait(5s);
    }
    if (lfd >= 0) ::close(lfd);
}

void Engine::end_session(const std::shared_ptr<Session>& s, const std::string& reason) {
    if (s->dead.exchange(true)) {
        // already ended; still make sure the link is shut
        if (s->link) s->link->shutdown();
        return;
    }
    s->reason = reason;
    if (s->link) s->link->shutdown();  // unblocks senders stuck on a full socket
    std::vector<std::shared_ptr<PendingWrite>> writes;
    std::vector<std::shared_ptr<PendingFlush>> flushes;
    bool was_established;
    {
        std::unique_lock l(mu_);
        std::unique_lock io(io_mu_);
        if (session_ == s) session_.reset();
        was_established = s->established;
        {
            std::lock_guard pl(s->pmu);
            for (auto& [id, w] : s->writes) writes.push_back(w);
            for (auto& [id, f] : s->flushes) flushes.push_back(f);
            s->writes.clear();
            s->flushes.clear();
        }
        for (auto& w : writes) bitmap_->set(w->offset, std::max<uint64_t>(w->length, 1));
        if (role_ == pr::Role::Primary && was_established) {
            // Writes acknowledged from now on exist here only: a new generation marks that.
            sb_.gen = on_new_current(sb_.gen, fresh_uuid());
            try {
                persist_locked();
            } catch (const std::exception& e) {
                log::error("replica " + cfg_.replica.name + ": " + e.what());
            }
        }
        if (!writes.empty()) flush_bitmap();
        last_error_ = reason;
    }
    {
        std::lock_guard rl(s->rmu);
        s->resync_inflight.clear();
        s->resync_inflight_bytes = 0;
    }
    s->rcv.notify_all();
    for (auto& w : writes) {
        {
            std::lock_guard l(w->m);
            w->remote_done = true;
        }
        complete_write(w);
    }
    for (auto& f : flushes) {
        bool done;
        {
            std::lock_guard l(f->m);
            f->remote_done = true;
            done = f->local_done && !f->completed;
            if (done) f->completed = true;
        }
        if (done) {
            if (f->err) f->c->fail(f->err);
            else f->c->done();
        }
    }
    {
        // A refusal repeats at every retry: once a minute is enough to say it still holds.
        std::lock_guard l(ev_mu_);
        uint64_t suppressed = 0;
        if (end_log_.allow(reason, now_ms(), suppressed) || !writes.empty())
            log::warning("replica " + cfg_.replica.name + ": link to " + cfg_.peer_node + " down: " + reason +
                         (writes.empty() ? "" : "; " + std::to_string(writes.size()) + " writes in flight marked out of sync") +
                         (suppressed ? " (" + std::to_string(suppressed) + " times more since the last report)" : ""));
    }
    emit({{"type", "connection"}, {"state", "Disconnected"}, {"reason", reason}});
    cv_.notify_all();
}

void Engine::receiver_loop(const std::shared_ptr<Session>& s) {
    pr::Header h;
    IoBuffer payload;
    while (!s->dead && s->link->recv(h, payload)) {
        s->last_rx_ms = now_ms();
        if (!handle_frame(s, h, payload)) return;
        // A write handed its buffer to the applier: take a used one back rather than allocate.
        if (payload.capacity() == 0 && s->applier) payload = s->applier->take_buffer();
    }
    if (!s->dead) end_session(s, s->link->reason().empty() ? "the peer closed the connection" : s->link->reason());
}

bool Engine::handle_frame(const std::shared_ptr<Session>& s, const pr::Header& h, IoBuffer& payload) {
    auto fail = [&](const std::string& why) {
        end_session(s, why);
        return false;
    };
    switch (h.type) {
    case pr::Type::State: {
        pr::State st;
        if (auto e = pr::decode(payload, st); e != pr::Error::None) return fail(std::string("bad State from peer: ") + pr::to_string(e));
        bool role_changed;
        {
            std::lock_guard l(mu_);
            role_changed = s->peer_known && s->peer.role != st.role;
            if (s->established && st.role == pr::Role::Primary && role_ == pr::Role::Primary) {
                // Both Primary while connected: never apply each other's writes.
                s->peer = st;
                s->peer_known = true;
            } else {
                s->peer = st;
                s->peer_known = true;
            }
        }
        if (s->established && st.role == pr::Role::Primary && role_ == pr::Role::Primary)
            return fail("both nodes are Primary");
        if (role_changed) emit({{"type", "peer_role"}, {"role", pr::to_string(st.role)}});
        return true;
    }
    case pr::Type::Bitmap: {
        if (s->established) return fail("peer sent a bitmap after the handshake");
        uint64_t n = payload.size() / 8;
        if (payload.size() % 8) return fail("bad Bitmap frame length");
        uint64_t words = (bitmap_->blocks() + 63) / 64;
        if (h.offset > words || n > words - h.offset)
            return fail("peer sent bitmap words " + std::to_string(h.offset) + "+" + std::to_string(n) +
                        " past the end of the bitmap (" + std::to_string(words) + " words)");
        if (s->peer_words.size() < h.offset + n) s->peer_words.resize(h.offset + n);
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t v = 0;
            for (int b = 0; b < 8; ++b) v = (v << 8) | payload[i * 8 + b];
            s->peer_words[h.offset + i] = v;
        }
        return true;
    }
    case pr::Type::BitmapDone: {
        if (!s->peer_known) return fail("peer sent no State before its bitmap");
        std::unique_lock l(mu_);
        pr::State me = local_state_locked();
        Decision d = decide(NodeView{me.gen, me.disk, me.role, crashed_primary_},
                            NodeView{s->peer.gen, s->peer.disk, s->peer.role, (s->peer.flags & pr::kStateCrashedPrimary) != 0});
        std::string what = d.reason;
        switch (d.decision) {
        case SyncDecision::InSync:
        case SyncDecision::NoUpToDate:
            s->established = true;
            break;
        case SyncDecision::SourceFromBitmap:
        case SyncDecision::SourceFull: {
            if (d.decision == SyncDecision::SourceFull) bitmap_->set_all();
            else if (!s->peer_words.empty()) bitmap_->merge_words(0, s->peer_words);
            s->established = true;
            s->sync = Session::Sync::Source;
            s->sync_total = bitmap_->count() * layout_.block_size;
            s->sync_started = Clock::now();
            flush_bitmap();
            s->resync_thread = std::thread([this, s] { resync_loop(s); });
            break;
        }
        case SyncDecision::TargetFromBitmap:
        case SyncDecision::TargetFull:
            if (role_ == pr::Role::Primary) {
                l.unlock();
                return fail("refused: " + cfg_.peer_node + " has newer data but this node is Primary (" + what + ")");
            }
            s->established = true;
            s->sync = Session::Sync::Target;
            s->sync_total = 0;  // known from the source's progress
            s->sync_started = Clock::now();
            sb_.disk = pr::Disk::Inconsistent;
            persist_locked();
            break;
        case SyncDecision::SplitBrain:
            l.unlock();
            return fail("refused: split brain: " + what);
        case SyncDecision::Unrelated:
            l.unlock();
            return fail("refused: unrelated data: " + what);
        }
        s->peer_words.clear();
        s->peer_words.shrink_to_fit();
        log::notice("replica " + cfg_.replica.name + ": " + what);
        l.unlock();
        if (s->sync != Session::Sync::None)
            emit({{"type", "sync"}, {"state", "started"}, {"role", s->sync == Session::Sync::Source ? "source" : "target"},
                  {"bytes", s->sync_total}});
        return true;
    }
    case pr::Type::Write:
    case pr::Type::ResyncData:
    case pr::Type::Trim: {
        {
            std::lock_guard l(mu_);
            if (role_ == pr::Role::Primary) return fail(std::string("peer sent ") + pr::to_string(h.type) + " while this node is Primary");
        }
        if (!s->established) return fail(std::string("peer sent ") + pr::to_string(h.type) + " before the handshake finished");
        auto op = std::make_unique<Applier::Op>();
        op->h = h;
        if (h.type == pr::Type::Trim) {
            pr::TrimBody tb;
            if (auto e = pr::decode(payload, tb); e != pr::Error::None) return fail("bad Trim from peer");
            if (h.offset > layout_.data_size || tb.length > layout_.data_size - h.offset) return fail("peer sent a trim past the end");
            op->len = tb.length;
        } else {
            if (h.offset % 512 || payload.size() % 512 || h.offset + payload.size() > layout_.data_size)
                return fail("peer sent a write outside the device or unaligned");
            op->len = payload.size();
            op->buf = std::move(payload);  // no copy: the disk write goes from the receive buffer
            received_ += op->len;
            if (h.type == pr::Type::ResyncData) s->sync_done += op->len;
        }
        if (h.type == pr::Type::Write && (h.flags & pr::kFlagAckOnReceive)) {
            try {
                s->link->send(pr::Header{pr::Type::WriteAck, 0, h.id, h.offset, 0, 0});
            } catch (const std::exception&) {
            }
        }
        if (!s->applier->apply_inline(op)) s->applier->submit(std::move(op));
        return true;
    }
    case pr::Type::Flush: {
        s->applier->drain();
        int err = ::fdatasync(data_fd_) == 0 ? 0 : errno;
        try {
            s->link->send(pr::Header{pr::Type::FlushAck, 0, h.id, 0, 0, static_cast<uint32_t>(err)});
        } catch (const std::exception&) {
        }
        return true;
    }
    case pr::Type::WriteAck: {
        std::shared_ptr<PendingWrite> w;
        {
            std::lock_guard l(s->pmu);
            auto it = s->writes.find(h.id);
            if (it == s->writes.end()) return true;  // protocol A, or already given up
            w = it->second;
            s->writes.erase(it);
        }
        if (h.aux != 0) {
            bitmap_->set(w->offset, std::max<uint64_t>(w->length, 1));
            log::warning("replica " + cfg_.replica.name + ": " + cfg_.peer_node + " could not write at " +
                         std::to_string(w->offset) + ": " + errno_text(static_cast<int>(h.aux)) + " (marked out of sync)");
        }
        {
            std::lock_guard l(w->m);
            w->remote_done = true;
        }
        complete_write(w);
        return true;
    }
    case pr::Type::FlushAck: {
        std::shared_ptr<PendingFlush> f;
        {
            std::lock_guard l(s->pmu);
            auto it = s->flushes.find(h.id);
            if (it == s->flushes.end()) return true;
            f = it->second;
            s->flushes.erase(it);
        }
        bool done;
        {
            std::lock_guard l(f->m);
            f->remote_done = true;
            if (h.aux) f->err = static_cast<int>(h.aux);
            done = f->local_done && !f->completed;
            if (done) f->completed = true;
        }
        if (done) {
            if (f->err) f->c->fail(f->err);
            else f->c->done();
        }
        return true;
    }
    case pr::Type::ResyncAck: {
        std::lock_guard l(s->rmu);
        auto it = s->resync_inflight.find(h.id);
        if (it == s->resync_inflight.end()) return true;
        auto [off, len] = it->second;
        s->resync_inflight.erase(it);
        s->resync_inflight_bytes -= len;
        if (h.aux == 0) {
            bitmap_->clear(off, len);
            s->sync_done += len;
        } else {
            log::warning("replica " + cfg_.replica.name + ": " + cfg_.peer_node + " could not write resync data at " +
                         std::to_string(off) + ": " + errno_text(static_cast<int>(h.aux)));
        }
        s->rcv.notify_all();
        return true;
    }
    case pr::Type::SyncDone: {
        pr::State src;
        if (auto e = pr::decode(payload, src); e != pr::Error::None) return fail("bad SyncDone from peer");
        {
            std::lock_guard l(mu_);
            if (s->sync != Session::Sync::Target) return true;
            sb_.gen = on_sync_finished_target(sb_.gen, src.gen);
            sb_.disk = pr::Disk::UpToDate;
            bitmap_->clear(0, layout_.data_size);
            flush_bitmap();
            persist_locked();
            s->sync = Session::Sync::None;
            s->peer = src;
        }
        send_state(s);  // the source learns we are UpToDate now
        log::notice("replica " + cfg_.replica.name + ": resync from " + cfg_.peer_node + " finished: " +
                    std::to_string(s->sync_done.load()) + " bytes; data UpToDate");
        emit({{"type", "sync"}, {"state", "finished"}, {"role", "target"}, {"bytes", s->sync_done.load()}});
        return true;
    }
    case pr::Type::Ping:
        try {
            s->link->send(pr::Header{pr::Type::Pong, 0, h.id, 0, 0, 0});
        } catch (const std::exception&) {
        }
        return true;
    case pr::Type::Pong:
        return true;
    default:
        return fail(std::string("unexpected ") + pr::to_string(h.type) + " frame from peer");
    }
}

// ---- resync (source side) ------------------------------------------------------------------------

// Several readers, so that one reads from the disk while another sends: each takes the next dirty
// run under the cursor's lock, then reads and sends it under its stripe locks (an application
// write to the same range is then either entirely before the read or sent after our data).
struct Engine::ResyncCursor {
    std::mutex m;
    std::condition_variable cv;
    uint64_t next = 0;  // first block not yet handed out in this pass
    unsigned busy = 0;  // readers between taking a run and sending it
    bool finished = false;
    Clock::time_point t_rate = Clock::now(), last_flush = Clock::now();
    double tokens = 0;
};

bool Engine::resync_reader(const std::shared_ptr<Session>& s, ResyncCursor& cur) {
    IoBuffer buf(kResyncChunk);
    const uint64_t bs = layout_.block_size;
    const uint64_t blocks = bitmap_->blocks();
    const uint64_t rate = cfg_.replica.resync_rate;
    for (;;) {
        uint64_t off = 0, len = 0;
        {
            std::unique_lock l(cur.m);
            if (s->dead) return false;
            if (cur.finished) return true;
            std::optional<uint64_t> b = cur.next < blocks ? bitmap_->next_set(cur.next) : std::nullopt;
            if (!b) {
                // End of a pass: once no reader holds a run and every run sent is acknowledged,
                // done if nothing is left, else look again from the start.
                cur.cv.wait(l, [&] { return s->dead || cur.finished || cur.busy == 0; });
                if (s->dead) return false;
                if (cur.finished) return true;
                {
                    std::unique_lock r(s->rmu);
                    s->rcv.wait(r, [&] { return s->dead || s->resync_inflight.empty(); });
                }
                if (s->dead) return false;
                if (bitmap_->count() == 0) {
                    cur.finished = true;
                    cur.cv.notify_all();
                    return true;
                }
                cur.next = 0;
                continue;
            }
            uint64_t first = *b, n = 1;
            while (n < kResyncChunk / bs && first + n < blocks && bitmap_->test(first + n)) ++n;
            off = first * bs;
            len = std::min<uint64_t>(n * bs, layout_.data_size - off);
            cur.next = first + n;
            ++cur.busy;
            if (rate) {  // under the lock: the rate is the sum over the readers
                auto now = Clock::now();
                cur.tokens = std::min<double>(cur.tokens + std::chrono::duration<double>(now - cur.t_rate).count() * double(rate),
                                              double(rate));
                cur.t_rate = now;
                if (cur.tokens < double(len)) {
                    std::this_thread::sleep_for(std::chrono::duration<double>((double(len) - cur.tokens) / double(rate)));
                    cur.tokens = double(len);
                }
                cur.tokens -= double(len);
            }
            if (Clock::now() - cur.last_flush > 1s) {
                flush_bitmap();
                cur.last_flush = Clock::now();
            }
        }
        auto release = [&] {
            std::lock_guard l(cur.m);
            --cur.busy;
            cur.cv.notify_all();
        };
        // Back off for application I/O: with writes in flight, one request at a time.
        {
            std::unique_lock l(s->rmu);
            s->rcv.wait(l, [&] {
                if (s->dead) return true;
                uint64_t cap = app_inflight_.load() > 0 ? kResyncChunk : kResyncWindow;
                return s->resync_inflight_bytes + len <= cap || s->resync_inflight_bytes == 0;
            });
        }
        if (s->dead) {
            release();
            return false;
        }
        uint64_t id = next_id_++;
        bool ok = true;
        {
            std::shared_lock io(io_mu_);
            if (s->dead) {
                release();
                return false;
            }
            auto st = stripes_for(off, len);
            for (size_t i : st) stripes_[i].lock();
            try {
                local_read(off, len, buf.data());
            } catch (const std::system_error& e) {
                log::error("replica " + cfg_.replica.name + ": resync: " + e.what());
                ok = false;
            }
            if (ok) {
                {
                    std::lock_guard l(s->rmu);
                    s->resync_inflight.emplace(id, std::make_pair(off, len));
                    s->resync_inflight_bytes += len;
                }
                try {
                    s->link->send(pr::Header{pr::Type::ResyncData, 0, id, off, static_cast<uint32_t>(len), 0}, {buf.data(), len});
                    sent_ += len;
                } catch (const std::exception&) {
                    s->link->shutdown();
                }
            }
            for (size_t i : st) stripes_[i].unlock();
        }
        release();
        if (!ok) std::this_thread::sleep_for(100ms);
    }
}

void Engine::resync_loop(std::shared_ptr<Session> s) {
    ResyncCursor cur;
    std::vector<std::thread> more;
    for (unsigned i = 1; i < kResyncReaders; ++i) more.emplace_back([&] { resync_reader(s, cur); });
    bool finished = resync_reader(s, cur);
    {
        // A reader that gave up (the session died) must not leave the others waiting.
        std::lock_guard l(cur.m);
        cur.cv.notify_all();
    }
    for (auto& t : more) t.join();
    if (!finished) return;
    // Everything acknowledged: the peer is a copy of us.
    pr::State st;
    {
        std::lock_guard l(mu_);
        if (s->dead) return;
        sb_.gen = on_sync_finished_source(sb_.gen);
        flush_bitmap();
        persist_locked();
        s->sync = Session::Sync::None;
        st = local_state_locked();
    }
    auto body = pr::encode(st);
    try {
        s->link->send(pr::Header{pr::Type::SyncDone, 0, 0, 0, static_cast<uint32_t>(body.size()), 0}, body);
    } catch (const std::exception&) {
        s->link->shutdown();
        return;
    }
    double secs = std::chrono::duration<double>(Clock::now() - s->sync_started).count();
    log::notice("replica " + cfg_.replica.name + ": resync to " + cfg_.peer_node + " finished: " +
                std::to_string(s->sync_done.load()) + " bytes in " + std::to_string(secs) + " s");
    emit({{"type", "sync"}, {"state", "finished"}, {"role", "source"}, {"bytes", s->sync_done.load()}, {"seconds", secs}});
}

// ---- status and events ---------------------------------------------------------------------------

void Engine::on_event(std::function<void(const Json&)> cb) {
    std::lock_guard l(ev_mu_);
    ev_subs_.push_back(std::move(cb));
}

void Engine::emit(Json ev) {
    // Named apart from duetd's own events, which `hactl events` shows in the same stream.
    ev["type"] = "replica_" + ev.value("type", std::string("event"));
    ev["replica"] = cfg_.replica.name;
    ev["node"] = cfg_.node;
    std::vector<std::function<void(const Json&)>> subs;
    {
        std::lock_guard l(ev_mu_);
        subs = ev_subs_;
    }
    for (auto& f : subs) f(ev);
}

Engine::Json Engine::status() const {
    std::lock_guard l(mu_);
    Json j;
    j["replica"] = cfg_.replica.name;
    j["pid"] = ::getpid();
    j["node"] = cfg_.node;
    j["peer"] = cfg_.peer_node;
    j["role"] = pr::to_string(role_);
    j["disk"] = pr::to_string(sb_.disk);
    j["protocol"] = std::string(1, cfg_.replica.protocol);
    j["device"] = cfg_.replica.device;
    j["loop"] = device_ ? Json(device_->loop_path()) : Json(nullptr);
    j["size"] = layout_.data_size;
    j["backing"] = me_->disk;
    std::shared_ptr<Session> s = session_;
    bool up = s && !s->dead && s->established;
    j["connection"] = up ? "Connected" : (want_connected_ ? "Connecting" : "StandAlone");
    j["peer_address"] = peer_->address + ":" + std::to_string(peer_->port);
    j["encrypted"] = up && s->link && s->link->encrypted();
    j["peer_role"] = up && s->peer_known ? Json(pr::to_string(s->peer.role)) : Json(nullptr);
    j["peer_disk"] = up && s->peer_known ? Json(pr::to_string(s->peer.disk)) : Json(nullptr);
    Json sync = nullptr;
    if (up && s->sync != Session::Sync::None) {
        sync = Json::object();
        double secs = std::max(0.001, std::chrono::duration<double>(Clock::now() - s->sync_started).count());
        uint64_t done = s->sync_done.load();
        uint64_t total = s->sync == Session::Sync::Source ? s->sync_total : (s->peer_known ? s->peer.out_of_sync * layout_.block_size : 0);
        uint64_t left = s->sync == Session::Sync::Source ? bitmap_->count() * layout_.block_size : (total > done ? total - done : 0);
        double rate = double(done) / secs;
        sync["role"] = s->sync == Session::Sync::Source ? "source" : "target";
        sync["total"] = total;
        sync["done"] = done;
        sync["left"] = left;
        sync["rate"] = static_cast<uint64_t>(rate);
        sync["eta_s"] = rate > 0 ? Json(static_cast<uint64_t>(double(left) / rate)) : Json(nullptr);
    }
    j["sync"] = sync;
    j["counters"] = {{"sent", sent_.load()}, {"received", received_.load()}, {"written", written_.load()},
                     {"read", read_.load()}, {"out_of_sync", bitmap_->count() * layout_.block_size},
                     {"al_transactions", al_->transactions()}};
    j["gen"] = {{"current", hex(sb_.gen.current)}, {"bitmap", hex(sb_.gen.bitmap)},
                {"history", {hex(sb_.gen.history[0]), hex(sb_.gen.history[1])}}};
    j["last_error"] = last_error_.empty() ? Json(nullptr) : Json(last_error_);
    return j;
}

}  // namespace duet::replication
