// The dirty bitmap: range arithmetic, exact counting under concurrent set/clear from 4 threads,
// merging a peer's words, and flush/load writing only the changed 4 KiB pages.
#include "tests/unit/replication/temp_file.hpp"
#include "daemon/replication/bitmap.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daemon/replication/metadata.hpp"

namespace duet::replication {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr uint64_t kPageBits = 4096 * 8;  // blocks per on-disk page

using testing::TempFile;

uint64_t popcount_all(const Bitmap& b) {
    uint64_t n = 0;
    for (uint64_t w : b.words(0, b.word_count())) n += static_cast<uint64_t>(std::popcount(w));
    return n;
}

bool disk_bit(const std::vector<uint8_t>& area, uint64_t block) { return (area[block / 8] >> (block % 8)) & 1; }

TEST(Bitmap, Geometry) {
    Bitmap a(1 * GiB, 4096);
    EXPECT_EQ(a.blocks(), 262144u);
    EXPECT_EQ(a.word_count(), 4096u);
    EXPECT_EQ(a.page_count(), 8u);
    EXPECT_EQ(a.disk_bytes(), 32768u);
    Bitmap b(100000, 65536);  // a partial last block
    EXPECT_EQ(b.blocks(), 2u);
    EXPECT_EQ(b.word_count(), 1u);
    EXPECT_EQ(b.page_count(), 1u);
    EXPECT_THROW(Bitmap(1 * MiB, 3000), std::invalid_argument);
}

TEST(Bitmap, SetMarksEveryTouchedBlock) {
    Bitmap b(1 * MiB, 4096);  // 256 blocks
    EXPECT_EQ(b.set(0, 1), 1u);
    EXPECT_TRUE(b.test(0));
    EXPECT_EQ(b.set(4095, 2), 1u);  // the last byte of block 0 and the first of block 1
    EXPECT_TRUE(b.test(1));
    EXPECT_FALSE(b.test(2));
    EXPECT_EQ(b.set(0, 8192), 0u);  // nothing new
    EXPECT_EQ(b.count(), 2u);
    // Across word boundaries: blocks 60..130.
    EXPECT_EQ(b.set(60 * 4096, 71 * 4096), 71u);
    EXPECT_EQ(b.count(), 73u);
    for (uint64_t i = 0; i < 256; ++i) EXPECT_EQ(b.test(i), i < 2 || (i >= 60 && i <= 130)) << i;
    EXPECT_EQ(b.set(0, 0), 0u);
    EXPECT_EQ(b.set(1 * MiB - 1, 1), 1u);
    EXPECT_TRUE(b.test(255));
    EXPECT_THROW(b.set(1 * MiB - 1, 2), std::out_of_range);
    EXPECT_THROW(b.set(1 * MiB, 1), std::out_of_range);
    EXPECT_THROW(b.set(1, UINT64_MAX), std::out_of_range);
    EXPECT_THROW(b.test(256), std::out_of_range);
    EXPECT_EQ(popcount_all(b), b.count());
}

TEST(Bitmap, ClearIsBlockAligned) {
    Bitmap b(1 * MiB, 4096);
    b.set(0, 1 * MiB);
    EXPECT_EQ(b.count(), 256u);
    EXPECT_EQ(b.clear(4096, 3 * 4096), 3u);
    EXPECT_FALSE(b.test(1));
    EXPECT_FALSE(b.test(3));
    EXPECT_TRUE(b.test(4));
    EXPECT_EQ(b.clear(4096, 4096), 0u);
    try {
        b.clear(100, 4096);
        ADD_FAILURE() << "unaligned clear accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_THAT(e.what(), HasSubstr("not aligned to the 4096-byte blocks"));
    }
    EXPECT_THROW(b.clear(0, 100), std::invalid_argument);
    EXPECT_EQ(b.count(), 253u);
    EXPECT_EQ(b.clear(0, 1 * MiB), 253u);
    EXPECT_EQ(b.count(), 0u);

    // The partial last block clears with a range ending at the end of the data.
    Bitmap p(100000, 65536);
    p.set(0, 100000);
    EXPECT_EQ(p.count(), 2u);
    EXPECT_EQ(p.clear(65536, 100000 - 65536), 1u);
    EXPECT_EQ(p.count(), 1u);
}

TEST(Bitmap, NextSet) {
    Bitmap b(64 * MiB, 4096);  // 16384 blocks
    EXPECT_EQ(b.next_set(0), std::nullopt);
    for (uint64_t blk : {5ull, 63ull, 64ull, 1000ull, 16383ull}) b.set(blk * 4096, 1);
    std::vector<uint64_t> seen;
    for (auto n = b.next_set(0); n; n = b.next_set(*n + 1)) seen.push_back(*n);
    EXPECT_EQ(seen, (std::vector<uint64_t>{5, 63, 64, 1000, 16383}));
    EXPECT_EQ(b.next_set(6), 63u);
    EXPECT_EQ(b.next_set(1001), 16383u);
    EXPECT_EQ(b.next_set(16384), std::nullopt);
    EXPECT_EQ(b.next_set(UINT64_MAX), std::nullopt);
}

TEST(Bitmap, SetAllStopsAtTheLastBlock) {
    Bitmap b(100 * 4096, 4096);  // 100 blocks: the second word has 36 valid bits
    b.set(3 * 4096, 1);
    b.set_all();
    EXPECT_EQ(b.count(), 100u);
    const auto w = b.words(0, 2);
    EXPECT_EQ(w[0], ~uint64_t{0});
    EXPECT_EQ(w[1], (uint64_t{1} << 36) - 1);
    EXPECT_EQ(b.next_set(99), 99u);
}

TEST(Bitmap, MergeWordsOrsInThePeersBits) {
    Bitmap b(100 * 4096, 4096);
    b.set(0, 4096);
    const std::vector<uint64_t> peer{0b1011, ~uint64_t{0}};  // second word: bits past block 99 ignored
    b.merge_words(0, peer);
    EXPECT_EQ(b.count(), 3u + 36u);
    EXPECT_TRUE(b.test(0));
    EXPECT_TRUE(b.test(1));
    EXPECT_FALSE(b.test(2));
    EXPECT_TRUE(b.test(3));
    EXPECT_TRUE(b.test(99));
    EXPECT_EQ(b.words(1, 1)[0], (uint64_t{1} << 36) - 1);
    b.merge_words(1, std::vector<uint64_t>{1});
    EXPECT_EQ(b.count(), 39u);
    EXPECT_THROW(b.merge_words(1, peer), std::out_of_range);
    EXPECT_THROW(b.merge_words(3, std::vector<uint64_t>{}), std::out_of_range);
    EXPECT_THROW(b.words(1, 2), std::out_of_range);
    EXPECT_EQ(popcount_all(b), b.count());
}

TEST(Bitmap, ConcurrentSetAndClearKeepAnExactCount) {
    // 4 threads on the same words: thread t owns blocks b with b % 4 == t, so every word is
    // shared by all four. Each sets its blocks in a random order, one block or a 2-block range
    // at a time (overlapping the neighbour's blocks, which they also set), then clears its own
    // blocks with (b / 4) % 3 == 0 while the others still set. A fifth thread flushes throughout.
    const uint64_t blocks = 4 * kPageBits + 123;  // several pages and a partial last word
    Bitmap bm(blocks * 4096, 4096);
    TempFile f(bm.disk_bytes());
    std::atomic<bool> stop{false};
    std::thread flusher([&] {
        while (!stop.load()) bm.flush(f.fd(), 0);
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            std::vector<uint64_t> mine;
            for (uint64_t b = static_cast<uint64_t>(t); b < blocks; b += 4) mine.push_back(b);
            std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
            std::shuffle(mine.begin(), mine.end(), rng);
            for (uint64_t b : mine) {
                if (b + 1 < blocks && rng() % 2) bm.set(b * 4096, 2 * 4096);  // also sets a neighbour's block
                else bm.set(b * 4096 + 17, 1);
            }
            for (uint64_t b : mine)
                if ((b / 4) % 3 == 0) bm.clear(b * 4096, 4096);
        });
    }
    for (auto& th : threads) th.join();
    stop = true;
    flusher.join();

    // A neighbour's set can land after the owner's clear, so the exact final set depends on the
    // interleaving; the invariant is that count() equals the bits actually set, and every block
    // that was never cleared is set.
    EXPECT_EQ(bm.count(), popcount_all(bm));
    for (uint64_t b = 0; b < blocks; ++b) {
        if ((b / 4) % 3 != 0) {
            ASSERT_TRUE(bm.test(b)) << b;
        }
    }
    // The same with nothing racing: clearing the cleared set again leaves exactly the rest.
    for (uint64_t b = 0; b < blocks; ++b)
        if ((b / 4) % 3 == 0) bm.clear(b * 4096, 4096);
    uint64_t expected = 0;
    for (uint64_t b = 0; b < blocks; ++b) expected += (b / 4) % 3 != 0;
    EXPECT_EQ(bm.count(), expected);
    EXPECT_EQ(popcount_all(bm), expected);

    // Whatever the flusher missed, the last flush writes; the disk then matches memory.
    bm.flush(f.fd(), 0);
    Bitmap loaded(blocks * 4096, 4096);
    loaded.load(f.fd(), 0);
    EXPECT_EQ(loaded.words(0, loaded.word_count()), bm.words(0, bm.word_count()));
    EXPECT_EQ(loaded.count(), expected);
}

TEST(Bitmap, ConcurrentDisjointSetsCountExactly) {
    // With no clears, the final state is known exactly: every block set once by each of its
    // owners, the count exactly the number of blocks, however the updates interleave.
    const uint64_t blocks = 2 * kPageBits;
    Bitmap bm(blocks * 4096, 4096);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int round = 0; round < 2; ++round)
                for (uint64_t b = static_cast<uint64_t>(t); b < blocks; b += 4) bm.set(b * 4096, 4096);
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(bm.count(), blocks);
    std::vector<std::thread> clearers;
    for (int t = 0; t < 4; ++t)
        clearers.emplace_back([&, t] {
            for (uint64_t b = static_cast<uint64_t>(t); b < blocks; b += 4)
                if (b % 8 < 4) bm.clear(b * 4096, 4096);
        });
    for (auto& th : clearers) th.join();
    EXPECT_EQ(bm.count(), blocks / 2);
    EXPECT_EQ(popcount_all(bm), blocks / 2);
}

TEST(Bitmap, FlushWritesOnlyChangedPages) {
    const uint64_t pages = 10;
    Bitmap bm(pages * kPageBits * 4096, 4096);
    ASSERT_EQ(bm.page_count(), pages);
    const uint64_t base = 8192;  // the bitmap area starts here in the file
    TempFile f(base + pages * 4096 + 4096);
    // Sentinel everywhere: a page flush did not write keeps it.
    f.fill(0, base + pages * 4096 + 4096, 0x5A);
    EXPECT_EQ(bm.flush(f.fd(), base), 0u);  // nothing dirty: nothing written

    bm.set(3 * 4096, 1);                         // page 0, block 3
    bm.set((5 * kPageBits + 70) * 4096, 4096);   // page 5, block 70 of it
    EXPECT_EQ(bm.dirty_pages(), 2u);
    EXPECT_EQ(bm.flush(f.fd(), base), 2u);
    EXPECT_EQ(bm.dirty_pages(), 0u);
    auto area = f.read(base, pages * 4096);
    for (uint64_t p = 0; p < pages; ++p) {
        const auto* page = &area[p * 4096];
        if (p == 0 || p == 5) {
            // Little-endian words: block b is bit b % 8 of byte b / 8.
            std::vector<uint8_t> expect(4096, 0);
            if (p == 0) expect[0] = 1 << 3;
            if (p == 5) expect[70 / 8] = 1 << (70 % 8);
            EXPECT_TRUE(std::equal(expect.begin(), expect.end(), page)) << "page " << p;
        } else {
            EXPECT_EQ(std::count(page, page + 4096, 0x5A), 4096) << "page " << p << " was written";
        }
    }
    EXPECT_EQ(f.read(0, base), std::vector<uint8_t>(base, 0x5A));                  // before the area
    EXPECT_EQ(f.read(base + pages * 4096, 4096), std::vector<uint8_t>(4096, 0x5A));  // after it

    // Unchanged bits do not dirty anything.
    bm.set(3 * 4096, 10);
    EXPECT_EQ(bm.flush(f.fd(), base), 0u);

    // A clear in page 5 and a run of pages 7..9: page 0 is not rewritten.
    f.fill(base, 4096, 0x5A);
    bm.clear((5 * kPageBits + 70) * 4096, 4096);
    bm.set(7 * kPageBits * 4096, 3 * kPageBits * 4096);
    EXPECT_EQ(bm.flush(f.fd(), base), 4u);
    EXPECT_EQ(bm.pages_written(), 6u);
    EXPECT_EQ(f.read(base, 4096), std::vector<uint8_t>(4096, 0x5A));
    area = f.read(base, pages * 4096);
    EXPECT_FALSE(disk_bit(area, 5 * kPageBits + 70));
    for (uint64_t blk = 7 * kPageBits; blk < 10 * kPageBits; blk += 997) EXPECT_TRUE(disk_bit(area, blk)) << blk;

    // Round trip into a fresh bitmap. Pages never written still hold the test's sentinel, where
    // a real area holds create-md's zeros: zero them (and rewrite page 0) first.
    for (uint64_t p : {1, 2, 3, 4, 6}) f.fill(base + p * 4096, 4096, 0);
    bm.set(0, 4096);
    EXPECT_EQ(bm.flush(f.fd(), base), 1u);
    Bitmap loaded(pages * kPageBits * 4096, 4096);
    loaded.load(f.fd(), base);
    EXPECT_EQ(loaded.words(0, loaded.word_count()), bm.words(0, bm.word_count()));
    EXPECT_EQ(loaded.count(), bm.count());
    EXPECT_EQ(loaded.dirty_pages(), 0u);
}

TEST(Bitmap, LoadIgnoresBitsPastTheLastBlock) {
    Bitmap bm(100 * 4096, 4096);
    TempFile f(4096);
    f.fill(0, 4096, 0xFF);
    bm.load(f.fd(), 0);
    EXPECT_EQ(bm.count(), 100u);
    EXPECT_EQ(bm.words(1, 1)[0], (uint64_t{1} << 36) - 1);
    TempFile shorter(100);
    EXPECT_THROW(bm.load(shorter.fd(), 0), std::system_error);
}

TEST(Bitmap, FailedFlushKeepsPagesDirty) {
    Bitmap bm(2 * kPageBits * 4096, 4096);
    TempFile f(2 * 4096);
    bm.set(0, 4096);
    bm.set(kPageBits * 4096, 4096);
    const int ro = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ro, 0);
    EXPECT_THROW(bm.flush(ro, 0), std::system_error);
    ::close(ro);
    EXPECT_EQ(bm.dirty_pages(), 2u);
    EXPECT_EQ(bm.flush(f.fd(), 0), 2u);
    Bitmap loaded(2 * kPageBits * 4096, 4096);
    loaded.load(f.fd(), 0);
    EXPECT_EQ(loaded.count(), 2u);
}

}  // namespace
}  // namespace duet::replication
