// The dirty bitmap. On disk: little-endian 64-bit words, word w at byte 8*w; bit b of the device
// is bit b%64 of word b/64 (so also bit b%8 of byte b/8). docs/replication.md, "Bitmap".
#include "daemon/replication/bitmap.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

#include "daemon/replication/metadata.hpp"

namespace duet::replication {

namespace {

constexpr uint64_t kAll = ~uint64_t{0};
constexpr uint64_t kMaxRunPages = 256;  // flush writes at most 1 MiB per pwrite

void store_le(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t load_le(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

}  // namespace

Bitmap::Bitmap(uint64_t data_size, uint32_t block_size)
    : data_size_(data_size), block_size_(block_size) {
    if (block_size == 0 || (block_size & (block_size - 1)) != 0)
        throw std::invalid_argument("bitmap: block size " + std::to_string(block_size) + " is not a power of two");
    blocks_ = (data_size + block_size - 1) / block_size;
    words_ = (blocks_ + 63) / 64;
    pages_ = (words_ + kWordsPerPage - 1) / kWordsPerPage;
    bits_ = std::make_unique<std::atomic<uint64_t>[]>(words_);
    dirty_ = std::make_unique<std::atomic<uint64_t>[]>((pages_ + 63) / 64);
}

uint64_t Bitmap::tail_mask(uint64_t word_index) const {
    if (word_index + 1 < words_ || blocks_ % 64 == 0) return kAll;
    return (uint64_t{1} << (blocks_ % 64)) - 1;
}

void Bitmap::mark_dirty(uint64_t word_index) {
    const uint64_t page = word_index / kWordsPerPage;
    const uint64_t bit = uint64_t{1} << (page % 64);
    auto& d = dirty_[page / 64];
    // Loading first avoids bouncing the cache line when the page is already dirty. The order
    // (word update, then this load, both sequentially consistent) guarantees that a flush which
    // cleared the dirty bit before our load reads the word after our update.
    if ((d.load() & bit) == 0) d.fetch_or(bit);
}

uint64_t Bitmap::or_word(uint64_t index, uint64_t mask) {
    const uint64_t old = bits_[index].fetch_or(mask);
    const uint64_t added = static_cast<uint64_t>(std::popcount(mask & ~old));
    if (added != 0) {
        count_.fetch_add(added);
        mark_dirty(index);
    }
    return added;
}

uint64_t Bitmap::andnot_word(uint64_t index, uint64_t mask) {
    const uint64_t old = bits_[index].fetch_and(~mask);
    const uint64_t removed = static_cast<uint64_t>(std::popcount(mask & old));
    if (removed != 0) {
        count_.fetch_sub(removed);
        mark_dirty(index);
    }
    return removed;
}

template <typename F>
void Bitmap::for_each_word(uint64_t first_bit, uint64_t end_bit, F&& f) {
    while (first_bit < end_bit) {
        const uint64_t w = first_bit / 64;
        const uint64_t lo = first_bit % 64;
        const uint64_t hi = std::min<uint64_t>(64, end_bit - w * 64);  // exclusive, within the word
        const uint64_t mask = (hi == 64 ? kAll : (uint64_t{1} << hi) - 1) & (kAll << lo);
        f(w, mask);
        first_bit = w * 64 + hi;
    }
}

uint64_t Bitmap::set(uint64_t offset, uint64_t length) {
    if (length == 0) return 0;
    if (offset >= data_size_ || length > data_size_ - offset)
        throw std::out_of_range("bitmap: range of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                                " is outside the " + std::to_string(data_size_) + "-byte device");
    uint64_t added = 0;
    const uint64_t first = offset / block_size_;
    const uint64_t end = (offset + length + block_size_ - 1) / block_size_;
    for_each_word(first, end, [&](uint64_t w, uint64_t mask) { added += or_word(w, mask); });
    return added;
}

uint64_t Bitmap::clear(uint64_t offset, uint64_t length) {
    if (length == 0) return 0;
    if (offset >= data_size_ || length > data_size_ - offset)
        throw std::out_of_range("bitmap: range of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                                " is outside the " + std::to_string(data_size_) + "-byte device");
    const uint64_t end_byte = offset + length;
    if (offset % block_size_ != 0 || (end_byte % block_size_ != 0 && end_byte != data_size_))
        throw std::invalid_argument("bitmap: clear of " + std::to_string(length) + " bytes at " +
                                    std::to_string(offset) + " is not aligned to the " +
                                    std::to_string(block_size_) + "-byte blocks");
    uint64_t removed = 0;
    const uint64_t first = offset / block_size_;
    const uint64_t end = (end_byte + block_size_ - 1) / block_size_;
    for_each_word(first, end, [&](uint64_t w, uint64_t mask) { removed += andnot_word(w, mask); });
    return removed;
}

bool Bitmap::test(uint64_t block) const {
    if (block >= blocks_)
        throw std::out_of_range("bitmap: block " + std::to_string(block) + " past the last (" +
                                std::to_string(blocks_) + " blocks)");
    return (bits_[block / 64].load(std::memory_order_relaxed) >> (block % 64)) & 1;
}

std::optional<uint64_t> Bitmap::next_set(uint64_t from_block) const {
    if (from_block >= blocks_) return std::nullopt;
    uint64_t w = from_block / 64;
    uint64_t word = bits_[w].load(std::memory_order_relaxed) & (kAll << (from_block % 64));
    while (true) {
        if (word != 0) {
            const uint64_t block = w * 64 + static_cast<uint64_t>(std::countr_zero(word));
            if (block >= blocks_) return std::nullopt;
            return block;
        }
        if (++w >= words_) return std::nullopt;
        word = bits_[w].load(std::memory_order_relaxed);
    }
}

void Bitmap::set_all() {
    for (uint64_t w = 0; w < words_; ++w) or_word(w, tail_mask(w));
}

void Bitmap::merge_words(uint64_t first_word, std::span<const uint64_t> words) {
    if (first_word > words_ || words.size() > words_ - first_word)
        throw std::out_of_range("bitmap: " + std::to_string(words.size()) + " words at word " +
                                std::to_string(first_word) + " run past the last word (" + std::to_string(words_) +
                                ")");
    for (size_t i = 0; i < words.size(); ++i) {
        const uint64_t w = first_word + i;
        const uint64_t mask = words[i] & tail_mask(w);
        if (mask != 0) or_word(w, mask);
    }
}

std::vector<uint64_t> Bitmap::words(uint64_t first, uint64_t n) const {
    if (first > words_ || n > words_ - first)
        throw std::out_of_range("bitmap: " + std::to_string(n) + " words at word " + std::to_string(first) +
                                " run past the last word (" + std::to_string(words_) + ")");
    std::vector<uint64_t> out(n);
    for (uint64_t i = 0; i < n; ++i) out[i] = bits_[first + i].load(std::memory_order_relaxed);
    return out;
}

void Bitmap::load(int fd, uint64_t offset) {
    const uint64_t chunk_pages = kMaxRunPages;
    AlignedBuffer buf(chunk_pages * 4096);
    uint64_t total = 0;
    for (uint64_t page = 0; page < pages_; page += chunk_pages) {
        const uint64_t n = std::min(chunk_pages, pages_ - page);
        pread_all(fd, buf.data(), n * 4096, offset + page * 4096, "reading the bitmap");
        const uint64_t first_word = page * kWordsPerPage;
        const uint64_t last_word = std::min(words_, first_word + n * kWordsPerPage);
        for (uint64_t w = first_word; w < last_word; ++w) {
            const uint64_t v = load_le(buf.data() + (w - first_word) * 8) & tail_mask(w);
            bits_[w].store(v);
            total += static_cast<uint64_t>(std::popcount(v));
        }
    }
    count_.store(total);
    for (uint64_t i = 0; i < (pages_ + 63) / 64; ++i) dirty_[i].store(0);
}

uint64_t Bitmap::dirty_pages() const {
    uint64_t n = 0;
    for (uint64_t i = 0; i < (pages_ + 63) / 64; ++i) n += static_cast<uint64_t>(std::popcount(dirty_[i].load()));
    return n;
}

uint64_t Bitmap::flush(int fd, uint64_t offset) {
    // Take the dirty set first, then read the words: a bit changed after our read marks its page
    // dirty again (see mark_dirty), so it is written by the next flush.
    std::vector<uint64_t> pages;
    for (uint64_t i = 0; i < (pages_ + 63) / 64; ++i) {
        uint64_t d = dirty_[i].exchange(0);
        while (d != 0) {
            const int b = std::countr_zero(d);
            d &= d - 1;
            pages.push_back(i * 64 + static_cast<uint64_t>(b));
        }
    }
    if (pages.empty()) return 0;

    size_t done = 0;  // pages[0, done) are written
    try {
        AlignedBuffer buf(kMaxRunPages * 4096);
        while (done < pages.size()) {
            // A run of consecutive dirty pages, written with one pwrite.
            size_t run = 1;
            while (done + run < pages.size() && run < kMaxRunPages && pages[done + run] == pages[done] + run) ++run;
            std::fill(buf.data(), buf.data() + run * 4096, uint8_t{0});
            const uint64_t first_word = pages[done] * kWordsPerPage;
            const uint64_t last_word = std::min(words_, first_word + run * kWordsPerPage);
            for (uint64_t w = first_word; w < last_word; ++w) store_le(buf.data() + (w - first_word) * 8, bits_[w].load());
            pwrite_all(fd, buf.data(), run * 4096, offset + pages[done] * 4096, "writing the bitmap");
            done += run;
        }
        datasync(fd, "writing the bitmap");
    } catch (...) {
        // Unwritten pages, and written ones that may not be stable, stay dirty.
        for (uint64_t p : pages) dirty_[p / 64].fetch_or(uint64_t{1} << (p % 64));
        throw;
    }
    pages_written_.fetch_add(pages.size());
    return pages.size();
}

}  // namespace duet::replication
