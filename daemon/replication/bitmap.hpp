// The dirty bitmap: one bit per block (Layout::block_size bytes of data) that may differ from the
// peer. Format and rules: docs/replication.md, "Bitmap".
//
// Thread safety: set, clear, test, count, next_set, set_all, merge_words and words may be called
// from any number of threads at once; each bit lives in an atomic 64-bit word updated with
// fetch_or/fetch_and, and the count of set bits is kept exact from what each update changed.
// load and flush are for one thread at a time (the engine's metadata writer); flush may run while
// other threads set and clear bits.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace duet::replication {

class Bitmap {
public:
    static constexpr uint64_t kWordsPerPage = 4096 / 8;  // one on-disk 4 KiB page

    // `data_size` bytes of data, `block_size` (a power of two) bytes per bit. All bits clear.
    Bitmap(uint64_t data_size, uint32_t block_size);
    Bitmap(const Bitmap&) = delete;
    Bitmap& operator=(const Bitmap&) = delete;

    uint64_t data_size() const { return data_size_; }
    uint32_t block_size() const { return block_size_; }
    uint64_t blocks() const { return blocks_; }
    uint64_t word_count() const { return words_; }
    uint64_t page_count() const { return pages_; }
    // On-disk bytes: whole 4 KiB pages.
    uint64_t disk_bytes() const { return pages_ * 4096; }

    // Marks every block that [offset, offset + length) touches. Returns how many bits were newly
    // set. Throws std::out_of_range past the end of the data.
    uint64_t set(uint64_t offset, uint64_t length);
    // Clears the blocks of [offset, offset + length), which must be block-aligned (its end may
    // also be the end of the data): the engine clears a block only once it knows the whole block
    // is in sync. Returns how many bits were cleared. Throws std::invalid_argument when unaligned.
    uint64_t clear(uint64_t offset, uint64_t length);

    bool test(uint64_t block) const;
    uint64_t count() const { return count_.load(); }
    // The first set block at or after `from_block`.
    std::optional<uint64_t> next_set(uint64_t from_block) const;
    void set_all();

    // ORs in `words` (a peer's bitmap) starting at word `first_word`. Bits past the last block
    // are ignored.
    void merge_words(uint64_t first_word, std::span<const uint64_t> words);
    // A copy of `n` words from `first` (for sending to the peer).
    std::vector<uint64_t> words(uint64_t first, uint64_t n) const;

    // Replaces the whole bitmap with the on-disk one at `offset`; nothing is dirty afterwards.
    // Bits past the last block are ignored. Not concurrent with anything else.
    void load(int fd, uint64_t offset);
    // Writes the 4 KiB pages changed since the last flush (or load), then fdatasync. Returns the
    // number of pages written; 0 writes and syncs nothing. If it throws, the pages it could not
    // make stable stay dirty for the next flush.
    uint64_t flush(int fd, uint64_t offset);
    uint64_t dirty_pages() const;
    uint64_t pages_written() const { return pages_written_.load(); }

private:
    // Range of bits [first, last) -> per-word masks.
    template <typename F>
    void for_each_word(uint64_t first_bit, uint64_t end_bit, F&& f);
    uint64_t or_word(uint64_t index, uint64_t mask);      // returns bits newly set
    uint64_t andnot_word(uint64_t index, uint64_t mask);  // returns bits cleared
    void mark_dirty(uint64_t word_index);
    uint64_t tail_mask(uint64_t word_index) const;        // valid bits of a word

    uint64_t data_size_;
    uint32_t block_size_;
    uint64_t blocks_;
    uint64_t words_;
    uint64_t pages_;
    std::unique_ptr<std::atomic<uint64_t>[]> bits_;
    std::unique_ptr<std::atomic<uint64_t>[]> dirty_;  // one bit per on-disk page
    std::atomic<uint64_t> count_{0};
    std::atomic<uint64_t> pages_written_{0};
};

}  // namespace duet::replication
