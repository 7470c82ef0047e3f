// The activity log: the set of "hot" extents (Layout::al_extent_size bytes each) that may hold
// writes in flight. It is on disk BEFORE a write reaches an extent not yet in it, so after a crash
// of a Primary exactly these extents are resynced. Format: docs/replication.md, "Activity log".
//
// Thread safety: begin_write and end_write may be called from any number of threads. When every
// extent a write touches is already active, begin_write only counts a reference (no I/O).
// Otherwise one thread at a time writes a transaction; others needing a change wait for it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "daemon/replication/metadata.hpp"

namespace duet::replication {

class ActivityLog {
public:
    using EvictFn = std::function<void(uint64_t extent_first_byte, uint64_t extent_len)>;

    // `fd` is the metadata descriptor (not owned; must outlive this object). Transactions are
    // numbered after both `start_seq` and the newest one already in the on-disk ring, so a new
    // transaction always wins over the ones before it. Starts with no active extent: after a
    // crash, call recover() and mark its extents in the bitmap (and flush it) first.
    ActivityLog(int fd, const Layout& layout, uint64_t start_seq);
    ActivityLog(const ActivityLog&) = delete;
    ActivityLog& operator=(const ActivityLog&) = delete;

    // Called (outside the log's lock, from the thread writing the transaction) before an extent
    // leaves the log on disk: the engine makes the extent's bitmap bits stable there.
    void on_evict(EvictFn fn);

    // Before writing [offset, offset + length): makes sure every extent it touches is in the
    // on-disk log, evicting least-recently-used extents that have no write in flight, and waiting
    // when every slot is busy. Throws std::invalid_argument for a range outside the data or one
    // spanning more extents than the log holds; I/O errors as std::system_error (nothing is
    // counted then, the write must not proceed).
    void begin_write(uint64_t offset, uint64_t length);
    // After that write completed (or failed).
    void end_write(uint64_t offset, uint64_t length);

    // The extents (first byte offsets, ascending) of the newest valid transaction on disk. Torn
    // or corrupt transaction blocks are skipped.
    static std::vector<uint64_t> recover(int fd, const Layout& layout);

    // After a clean shutdown (no write in flight, else std::logic_error): every active extent is
    // evicted (on_evict is called for each) and the on-disk ring is zeroed.
    void clear_on_disk();

    uint64_t transactions() const { return transactions_.load(); }  // written since construction
    uint64_t sequence() const;  // sequence number of the newest transaction (written or found on disk)
    std::vector<uint64_t> active() const;  // active extents' first byte offsets, ascending

private:
    struct Extent {
        uint32_t refs = 0;
        bool leaving = false;  // being evicted by the transaction in progress: takes no new writes
        std::list<uint32_t>::iterator lru;  // position in lru_ (front = least recently used)
    };
    void extents_of(uint64_t offset, uint64_t length, uint32_t& first, uint32_t& last) const;
    void write_transaction(uint64_t seq, const std::vector<uint32_t>& extents);

    int fd_;
    Layout layout_;
    EvictFn evict_;
    mutable std::mutex mu_;
    std::condition_variable changed_;
    std::unordered_map<uint32_t, Extent> active_;
    std::list<uint32_t> lru_;
    bool writing_ = false;  // a transaction is being written (one at a time)
    uint64_t seq_;          // newest sequence number used
    std::atomic<uint64_t> transactions_{0};
};

}  // namespace duet::replication
