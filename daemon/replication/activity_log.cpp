// The activity log. docs/replication.md, "Activity log".
//
// A transaction is one 4 KiB block holding the complete set of active extents; block `seq % ring`
// of the ring receives transaction `seq`. Recovery takes the valid block with the highest seq. A
// torn transaction falls back to the previous one, which is safe: the writes waiting for the torn
// one had not been issued, and the extents it evicted are still listed in the previous one (a
// superset).
#include "daemon/replication/activity_log.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace duet::replication {

namespace {

constexpr std::array<uint8_t, 4> kAlMagic{'D', 'U', 'A', 'L'};
constexpr uint32_t kAlFormat = 1;
constexpr size_t kHeader = 24;  // magic, format, seq, extent size, count
constexpr size_t kCrcOffset = kMdBlock - 4;
static_assert(kHeader + 4 * kMaxAlSlots <= kCrcOffset, "a full transaction fits in one block");

void put_le(uint8_t* p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

struct Transaction {
    uint64_t seq = 0;
    std::vector<uint32_t> extents;
};

// Decodes one ring block; nullopt when it is empty, torn, corrupt or not for this layout.
std::optional<Transaction> decode(const uint8_t* b, const Layout& l) {
    if (!std::equal(kAlMagic.begin(), kAlMagic.end(), b)) return std::nullopt;
    if (get_le(b + kCrcOffset, 4) != crc32c(std::span<const uint8_t>(b, kCrcOffset))) return std::nullopt;
    if (get_le(b + 4, 4) != kAlFormat || get_le(b + 16, 4) != l.al_extent_size) return std::nullopt;
    const uint64_t count = get_le(b + 20, 4);
    if (count > l.al_slots) return std::nullopt;
    Transaction t;
    t.seq = get_le(b + 8, 8);
    for (uint64_t i = 0; i < count; ++i) {
        const auto e = static_cast<uint32_t>(get_le(b + kHeader + 4 * i, 4));
        if (e >= l.extents()) return std::nullopt;
        t.extents.push_back(e);
    }
    return t;
}

std::vector<std::optional<Transaction>> read_ring(int fd, const Layout& l) {
    const uint64_t ring = l.al_size / kMdBlock;
    AlignedBuffer buf(l.al_size);
    pread_all(fd, buf.data(), l.al_size, l.al_offset, "reading the activity log");
    std::vector<std::optional<Transaction>> out;
    for (uint64_t i = 0; i < ring; ++i) out.push_back(decode(buf.data() + i * kMdBlock, l));
    return out;
}

}  // namespace

ActivityLog::ActivityLog(int fd, const Layout& layout, uint64_t start_seq)
    : fd_(fd), layout_(layout), seq_(start_seq) {
    if (layout.al_size < 2 * kMdBlock)
        throw std::invalid_argument("activity log: the ring needs at least two blocks");
    for (const auto& t : read_ring(fd, layout))
        if (t) seq_ = std::max(seq_, t->seq);
}

void ActivityLog::on_evict(EvictFn fn) {
    std::lock_guard lock(mu_);
    evict_ = std::move(fn);
}

void ActivityLog::extents_of(uint64_t offset, uint64_t length, uint32_t& first, uint32_t& last) const {
    if (length == 0 || offset >= layout_.data_size || length > layout_.data_size - offset)
        throw std::invalid_argument("activity log: write of " + std::to_string(length) + " bytes at " +
                                    std::to_string(offset) + " is empty or outside the " +
                                    std::to_string(layout_.data_size) + "-byte device");
    first = static_cast<uint32_t>(offset / layout_.al_extent_size);
    last = static_cast<uint32_t>((offset + length - 1) / layout_.al_extent_size);
    if (uint64_t{last} - first + 1 > layout_.al_slots)
        throw std::invalid_argument("activity log: write of " + std::to_string(length) + " bytes spans " +
                                    std::to_string(uint64_t{last} - first + 1) + " extents but the log holds only " +
                                    std::to_string(layout_.al_slots));
}

void ActivityLog::begin_write(uint64_t offset, uint64_t length) {
    uint32_t first = 0, last = 0;
    extents_of(offset, length, first, last);
    std::unique_lock lock(mu_);
    while (true) {
        std::vector<uint32_t> missing;
        bool leaving = false;
        for (uint32_t e = first; e <= last; ++e) {
            auto it = active_.find(e);
            if (it == active_.end()) missing.push_back(e);
            else if (it->second.leaving) leaving = true;
        }
        if (missing.empty() && !leaving) {
            // Fast path: count a reference, refresh LRU positions.
            for (uint32_t e = first; e <= last; ++e) {
                auto& x = active_[e];
                ++x.refs;
                lru_.splice(lru_.end(), lru_, x.lru);
            }
            return;
        }
        if (writing_) {  // one transaction at a time; it may add our extents, or be evicting them
            changed_.wait(lock);
            continue;
        }
        const uint64_t need = active_.size() + missing.size();
        std::vector<uint32_t> evict;
        if (need > layout_.al_slots) {
            const uint64_t n = need - layout_.al_slots;
            for (uint32_t e : lru_) {
                if (evict.size() == n) break;
                if (active_.at(e).refs == 0 && (e < first || e > last)) evict.push_back(e);
            }
            if (evict.size() < n) {  // every slot is busy: wait for an end_write
                changed_.wait(lock);
                continue;
            }
        }
        // The new on-disk set: what stays, plus what this write needs.
        std::vector<uint32_t> next;
        for (const auto& [e, x] : active_)
            if (std::find(evict.begin(), evict.end(), e) == evict.end()) next.push_back(e);
        next.insert(next.end(), missing.begin(), missing.end());
        std::sort(next.begin(), next.end());
        const uint64_t seq = seq_ + 1;
        writing_ = true;
        // Evicted extents have no write in flight, and none may start until they are gone.
        for (uint32_t e : evict) active_.at(e).leaving = true;
        EvictFn evict_fn = evict_;
        lock.unlock();
        try {
            if (evict_fn)
                for (uint32_t e : evict) evict_fn(uint64_t{e} * layout_.al_extent_size, layout_.al_extent_size);
            write_transaction(seq, next);
        } catch (...) {
            lock.lock();
            for (uint32_t e : evict) active_.at(e).leaving = false;
            writing_ = false;
            changed_.notify_all();
            throw;
        }
        lock.lock();
        seq_ = seq;
        transactions_.fetch_add(1);
        for (uint32_t e : evict) {
            lru_.erase(active_.at(e).lru);
            active_.erase(e);
        }
        for (uint32_t e : missing) {
            Extent x;
            x.lru = lru_.insert(lru_.end(), e);
            active_.emplace(e, x);
        }
        writing_ = false;
        changed_.notify_all();
        // Loop: the fast path now takes the references.
    }
}

void ActivityLog::end_write(uint64_t offset, uint64_t length) {
    uint32_t first = 0, last = 0;
    extents_of(offset, length, first, last);
    std::lock_guard lock(mu_);
    bool freed = false;
    for (uint32_t e = first; e <= last; ++e) {
        auto it = active_.find(e);
        if (it == active_.end() || it->second.refs == 0)
            throw std::logic_error("activity log: end_write for extent " + std::to_string(e) +
                                   " without a matching begin_write");
        if (--it->second.refs == 0) freed = true;
    }
    if (freed) changed_.notify_all();
}

void ActivityLog::write_transaction(uint64_t seq, const std::vector<uint32_t>& extents) {
    AlignedBuffer b(kMdBlock);
    std::copy(kAlMagic.begin(), kAlMagic.end(), b.data());
    put_le(b.data() + 4, kAlFormat, 4);
    put_le(b.data() + 8, seq, 8);
    put_le(b.data() + 16, layout_.al_extent_size, 4);
    put_le(b.data() + 20, extents.size(), 4);
    for (size_t i = 0; i < extents.size(); ++i) put_le(b.data() + kHeader + 4 * i, extents[i], 4);
    put_le(b.data() + kCrcOffset, crc32c(std::span<const uint8_t>(b.data(), kCrcOffset)), 4);
    const uint64_t ring = layout_.al_size / kMdBlock;
    pwrite_all(fd_, b.data(), kMdBlock, layout_.al_offset + (seq % ring) * kMdBlock,
               "writing an activity-log transaction");
    datasync(fd_, "writing an activity-log transaction");
}

std::vector<uint64_t> ActivityLog::recover(int fd, const Layout& layout) {
    std::optional<Transaction> newest;
    for (auto& t : read_ring(fd, layout))
        if (t && (!newest || t->seq > newest->seq)) newest = std::move(t);
    std::vector<uint64_t> out;
    if (!newest) return out;
    for (uint32_t e : newest->extents) out.push_back(uint64_t{e} * layout.al_extent_size);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

void ActivityLog::clear_on_disk() {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [this] { return !writing_; });
    for (const auto& [e, x] : active_)
        if (x.refs != 0)
            throw std::logic_error("activity log: cleared with writes in flight on extent " + std::to_string(e));
    std::vector<uint32_t> all(lru_.begin(), lru_.end());
    writing_ = true;
    for (auto& [e, x] : active_) x.leaving = true;
    EvictFn evict_fn = evict_;
    lock.unlock();
    try {
        if (evict_fn)
            for (uint32_t e : all) evict_fn(uint64_t{e} * layout_.al_extent_size, layout_.al_extent_size);
        AlignedBuffer zeros(layout_.al_size);
        pwrite_all(fd_, zeros.data(), zeros.size(), layout_.al_offset, "clearing the activity log");
        datasync(fd_, "clearing the activity log");
    } catch (...) {
        lock.lock();
        for (auto& [e, x] : active_) x.leaving = false;
        writing_ = false;
        changed_.notify_all();
        throw;
    }
    lock.lock();
    active_.clear();
    lru_.clear();
    writing_ = false;
    changed_.notify_all();
}

uint64_t ActivityLog::sequence() const {
    std::lock_guard lock(mu_);
    return seq_;
}

std::vector<uint64_t> ActivityLog::active() const {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> out;
    for (const auto& [e, x] : active_) out.push_back(uint64_t{e} * layout_.al_extent_size);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace duet::replication
