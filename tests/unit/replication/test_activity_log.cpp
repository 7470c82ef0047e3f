// The activity log: fast path, LRU eviction (with the callback before the extent leaves the disk),
// waiting when every slot is busy, recovery after a simulated crash and after a torn transaction,
// and the on-disk safety property under 4 concurrent writers.
#include "tests/unit/replication/temp_file.hpp"
#include "daemon/replication/activity_log.hpp"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace duet::replication {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr uint64_t MiB = 1024 * 1024;
constexpr uint64_t X = 4 * MiB;  // one extent
uint64_t E(uint64_t n) { return n * X; }

using testing::TempFile;

// A 64 MiB replica (16 extents) with internal metadata and a 4-slot log.
struct Fixture {
    TempFile file{64 * MiB};
    Layout layout = compute_layout(64 * MiB, true, 0, 4096, 4);
    Fixture() { create_md(file.fd(), layout, "r0"); }
    std::vector<uint64_t> on_disk() const { return ActivityLog::recover(file.fd(), layout); }
    // One whole write: begin + end.
    static void touch(ActivityLog& al, uint64_t off, uint64_t len = 4096) {
        al.begin_write(off, len);
        al.end_write(off, len);
    }
};

TEST(ActivityLog, FastPathWritesNothing) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    EXPECT_TRUE(f.on_disk().empty());
    al.begin_write(E(2) + 100, 4096);
    EXPECT_EQ(al.transactions(), 1u);
    EXPECT_THAT(f.on_disk(), ElementsAre(E(2)));
    // More writes to the same extent, overlapping and in flight at once: no transaction.
    al.begin_write(E(2), X);
    al.begin_write(E(2) + X - 1, 1);
    EXPECT_EQ(al.transactions(), 1u);
    al.end_write(E(2) + 100, 4096);
    al.end_write(E(2), X);
    al.end_write(E(2) + X - 1, 1);
    Fixture::touch(al, E(2) + 8192);
    EXPECT_EQ(al.transactions(), 1u);
    // A write across two extents adds the missing one in one transaction.
    Fixture::touch(al, E(3) - 4096, 8192);
    EXPECT_EQ(al.transactions(), 2u);
    EXPECT_THAT(f.on_disk(), ElementsAre(E(2), E(3)));
    EXPECT_THAT(al.active(), ElementsAre(E(2), E(3)));
    EXPECT_EQ(al.sequence(), 2u);
}

TEST(ActivityLog, EvictsTheLeastRecentlyUsedAfterTheCallback) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    std::vector<uint64_t> evicted;
    al.on_evict([&](uint64_t first, uint64_t len) {
        EXPECT_EQ(len, X);
        // Called before the transaction without it: the disk still lists it.
        const auto disk = f.on_disk();
        EXPECT_NE(std::find(disk.begin(), disk.end(), first), disk.end()) << "evicted extent already gone on disk";
        evicted.push_back(first);
    });
    for (uint64_t e : {0, 1, 2, 3}) Fixture::touch(al, E(e));
    EXPECT_EQ(al.transactions(), 4u);
    EXPECT_TRUE(evicted.empty());
    Fixture::touch(al, E(4));  // full: the least recently used (0) goes
    EXPECT_THAT(evicted, ElementsAre(E(0)));
    EXPECT_THAT(f.on_disk(), ElementsAre(E(1), E(2), E(3), E(4)));
    Fixture::touch(al, E(1));  // now 2 is the least recently used
    EXPECT_EQ(al.transactions(), 5u);
    Fixture::touch(al, E(5));
    EXPECT_THAT(evicted, ElementsAre(E(0), E(2)));
    EXPECT_THAT(f.on_disk(), ElementsAre(E(1), E(3), E(4), E(5)));
    // A write needing two new extents evicts two in one transaction.
    Fixture::touch(al, E(7) - 4096, 8192);
    EXPECT_THAT(evicted, ElementsAre(E(0), E(2), E(3), E(4)));
    EXPECT_THAT(f.on_disk(), ElementsAre(E(1), E(5), E(6), E(7)));
    EXPECT_EQ(al.transactions(), 7u);
}

TEST(ActivityLog, BusyExtentsAreNeverEvictedAWriterWaitsForAFreeSlot) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    for (uint64_t e : {0, 1, 2, 3}) al.begin_write(E(e), 4096);  // all four slots busy
    std::atomic<bool> done{false};
    std::thread writer([&] {
        al.begin_write(E(9), 4096);
        done = true;
    });
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(done.load()) << "a write got a slot while every slot was busy";
    EXPECT_THAT(f.on_disk(), ElementsAre(E(0), E(1), E(2), E(3)));
    al.end_write(E(2), 4096);  // frees exactly one slot
    writer.join();
    EXPECT_TRUE(done.load());
    EXPECT_THAT(f.on_disk(), ElementsAre(E(0), E(1), E(3), E(9)));
    for (uint64_t e : {0, 1, 3, 9}) al.end_write(E(e), 4096);
}

TEST(ActivityLog, BadCalls) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    EXPECT_THAT([&] { al.begin_write(0, 5 * X); },
                ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("spans 5 extents but the log holds only 4")));
    EXPECT_THROW(al.begin_write(f.layout.data_size, 1), std::invalid_argument);
    EXPECT_THROW(al.begin_write(0, 0), std::invalid_argument);
    EXPECT_THROW(al.end_write(E(1), 1), std::logic_error);
    Fixture::touch(al, E(1));
    EXPECT_THROW(al.end_write(E(1), 1), std::logic_error);  // one end too many
    EXPECT_EQ(al.transactions(), 1u);
}

TEST(ActivityLog, RecoverAfterACrash) {
    Fixture f;
    uint64_t seq = 0;
    {
        ActivityLog al(f.file.fd(), f.layout, 0);
        for (uint64_t e : {3, 8, 1, 12, 8, 5}) Fixture::touch(al, E(e));
        al.begin_write(E(15), 4096);  // in flight when the node dies
        seq = al.sequence();
        // "Crash": the object goes away without clear_on_disk.
    }
    EXPECT_THAT(ActivityLog::recover(f.file.fd(), f.layout), ElementsAre(E(5), E(8), E(12), E(15)));

    // Restarted with a stale start sequence (the superblock's, older than the ring): its first
    // transaction still wins over everything already on disk.
    ActivityLog again(f.file.fd(), f.layout, 0);
    EXPECT_EQ(again.sequence(), seq);
    EXPECT_TRUE(again.active().empty());
    Fixture::touch(again, E(0));
    EXPECT_EQ(again.sequence(), seq + 1);
    EXPECT_THAT(f.on_disk(), ElementsAre(E(0)));
    // A start sequence past the ring's is honoured too.
    ActivityLog later(f.file.fd(), f.layout, 1000);
    Fixture::touch(later, E(6));
    EXPECT_EQ(later.sequence(), 1001u);
    EXPECT_THAT(f.on_disk(), ElementsAre(E(6)));
}

TEST(ActivityLog, TornLastTransactionFallsBackToThePreviousOne) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    for (uint64_t e : {0, 1, 2, 3}) Fixture::touch(al, E(e));
    Fixture::touch(al, E(4));  // evicts 0
    ASSERT_THAT(f.on_disk(), ElementsAre(E(1), E(2), E(3), E(4)));
    // Tear the newest block: its second half never reached the disk.
    const uint64_t ring = f.layout.al_size / 4096;
    const uint64_t newest = f.layout.al_offset + (al.sequence() % ring) * 4096;
    f.file.write(newest + 2048, std::vector<uint8_t>(2048, 0));
    // The previous transaction: a superset of what had writes in flight before the torn one.
    EXPECT_THAT(f.on_disk(), ElementsAre(E(0), E(1), E(2), E(3)));
    // Any single flipped byte is rejected the same way.
    for (size_t i : {0u, 9u, 20u, 24u, 4000u, 4095u}) {
        Fixture g;
        ActivityLog al2(g.file.fd(), g.layout, 0);
        Fixture::touch(al2, E(1));
        Fixture::touch(al2, E(2));
        const uint64_t at = g.layout.al_offset + (al2.sequence() % ring) * 4096;
        auto b = g.file.read(at, 4096);
        b[i] ^= 0x10;
        g.file.write(at, b);
        EXPECT_THAT(g.on_disk(), ElementsAre(E(1))) << "byte " << i;
    }
}

TEST(ActivityLog, ClearOnDisk) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    std::vector<uint64_t> evicted;
    al.on_evict([&](uint64_t first, uint64_t) { evicted.push_back(first); });
    Fixture::touch(al, E(1));
    Fixture::touch(al, E(7));
    al.begin_write(E(7), 1);
    EXPECT_THROW(al.clear_on_disk(), std::logic_error);  // a write in flight
    al.end_write(E(7), 1);
    al.clear_on_disk();
    std::sort(evicted.begin(), evicted.end());
    EXPECT_THAT(evicted, ElementsAre(E(1), E(7)));
    EXPECT_TRUE(f.on_disk().empty());
    EXPECT_TRUE(al.active().empty());
    const auto ring = f.file.read(f.layout.al_offset, f.layout.al_size);
    EXPECT_EQ(std::count(ring.begin(), ring.end(), 0), static_cast<long>(ring.size()));
    // Usable again afterwards, and numbering goes on.
    const uint64_t seq = al.sequence();
    Fixture::touch(al, E(2));
    EXPECT_EQ(al.sequence(), seq + 1);
    EXPECT_THAT(f.on_disk(), ElementsAre(E(2)));
}

TEST(ActivityLog, FailedEvictionLeavesTheLogAsItWas) {
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    bool fail = true;
    al.on_evict([&](uint64_t, uint64_t) {
        if (fail) throw std::runtime_error("bitmap flush failed");
    });
    for (uint64_t e : {0, 1, 2, 3}) Fixture::touch(al, E(e));
    EXPECT_THROW(al.begin_write(E(4), 1), std::runtime_error);
    EXPECT_THAT(al.active(), ElementsAre(E(0), E(1), E(2), E(3)));
    EXPECT_THAT(f.on_disk(), ElementsAre(E(0), E(1), E(2), E(3)));
    Fixture::touch(al, E(0));  // the fast path still works
    fail = false;
    Fixture::touch(al, E(4));
    EXPECT_THAT(f.on_disk(), ElementsAre(E(0), E(2), E(3), E(4)));
}

TEST(ActivityLog, ConcurrentWritersAlwaysFindTheirExtentOnDisk) {
    // The safety property: between begin_write and end_write, the extent is in the newest valid
    // transaction on disk, whatever the other writers make the log evict.
    Fixture f;
    ActivityLog al(f.file.fd(), f.layout, 0);
    std::atomic<int> violations{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t) * 7 + 1);
            for (int i = 0; i < 150; ++i) {
                const uint64_t e = rng() % 12;
                const uint64_t len = rng() % 2 ? 4096 : 8192;
                const uint64_t off = std::min(E(e) + X - 4096, f.layout.data_size - len);  // may cross into e+1
                al.begin_write(off, len);
                const auto disk = ActivityLog::recover(f.file.fd(), f.layout);
                for (uint64_t x = off / X; x <= (off + len - 1) / X; ++x)
                    if (std::find(disk.begin(), disk.end(), E(x)) == disk.end()) ++violations;
                al.end_write(off, len);
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(violations.load(), 0);
    EXPECT_LE(al.active().size(), 4u);
    EXPECT_GT(al.transactions(), 10u);
}

}  // namespace
}  // namespace duet::replication
