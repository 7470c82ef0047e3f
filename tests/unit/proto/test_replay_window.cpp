// ReplayWindow: per-sender anti-replay window over (generation, sequence).
#include "proto/heartbeat.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>

namespace duet::proto {
namespace {

using V = ReplayWindow::Verdict;
constexpr uint64_t W = ReplayWindow::kWindow;

TEST(ReplayWindow, FirstPacketIsAcceptedWhateverItsNumbers) {
    for (uint64_t seq : {uint64_t{0}, uint64_t{1}, uint64_t{12345}, UINT64_MAX}) {
        ReplayWindow w;
        EXPECT_EQ(w.check_and_update(7, seq), V::Accept);
        EXPECT_EQ(w.generation(), 7u);
        EXPECT_EQ(w.highest(), seq);
        EXPECT_EQ(w.check_and_update(7, seq), V::Replay);
    }
}

TEST(ReplayWindow, InOrderAcceptedAndEveryReplayRejected) {
    ReplayWindow w;
    for (uint64_t s = 0; s < 1000; ++s) {
        ASSERT_EQ(w.check_and_update(1, s), V::Accept) << s;
        ASSERT_EQ(w.check_and_update(1, s), V::Replay) << s;
        EXPECT_EQ(w.highest(), s);
    }
    for (uint64_t s = 0; s < 1000; ++s) ASSERT_EQ(w.check_and_update(1, s), V::Replay) << s;
}

TEST(ReplayWindow, OutOfOrderWithinWindow) {
    // Copies over several paths: 10 and 11 arrive before 9, 8 and 12.
    ReplayWindow w;
    EXPECT_EQ(w.check_and_update(1, 10), V::Accept);
    EXPECT_EQ(w.check_and_update(1, 11), V::Accept);
    EXPECT_EQ(w.check_and_update(1, 9), V::Accept);
    EXPECT_EQ(w.check_and_update(1, 8), V::Accept);
    EXPECT_EQ(w.check_and_update(1, 12), V::Accept);
    for (uint64_t s = 8; s <= 12; ++s) EXPECT_EQ(w.check_and_update(1, s), V::Replay) << s;
    EXPECT_EQ(w.highest(), 12u);
}

TEST(ReplayWindow, WholeWindowBackwards) {
    ReplayWindow w;
    const uint64_t top = 1000;
    ASSERT_EQ(w.check_and_update(1, top), V::Accept);
    for (uint64_t d = 1; d < W; ++d) ASSERT_EQ(w.check_and_update(1, top - d), V::Accept) << d;
    for (uint64_t d = 0; d < W; ++d) ASSERT_EQ(w.check_and_update(1, top - d), V::Replay) << d;
    EXPECT_EQ(w.highest(), top);
}

TEST(ReplayWindow, TooOldIsRejectedAtTheExactEdge) {
    ReplayWindow w;
    ASSERT_EQ(w.check_and_update(1, 1000), V::Accept);
    EXPECT_EQ(w.check_and_update(1, 1000 - W), V::Replay);       // 256 behind: outside
    EXPECT_EQ(w.check_and_update(1, 1000 - W + 1), V::Accept);   // 255 behind: inside
    EXPECT_EQ(w.check_and_update(1, 0), V::Replay);
}

TEST(ReplayWindow, AdvancingClearsReusedSlots) {
    // Every number 0..255 seen, then a jump to 300: 45..255 stay seen, 256..299 are new.
    ReplayWindow w;
    for (uint64_t s = 0; s < W; ++s) ASSERT_EQ(w.check_and_update(1, s), V::Accept);
    ASSERT_EQ(w.check_and_update(1, 300), V::Accept);
    for (uint64_t s = 0; s <= 44; ++s) EXPECT_EQ(w.check_and_update(1, s), V::Replay) << s;
    for (uint64_t s = 45; s < W; ++s) EXPECT_EQ(w.check_and_update(1, s), V::Replay) << s;
    for (uint64_t s = W; s < 300; ++s) EXPECT_EQ(w.check_and_update(1, s), V::Accept) << s;
    EXPECT_EQ(w.check_and_update(1, 300), V::Replay);
}

TEST(ReplayWindow, JumpsOfWindowSizeAndMore) {
    for (uint64_t jump : {W - 1, W, W + 1, 64 * W, uint64_t{1} << 40}) {
        ReplayWindow w;
        ASSERT_EQ(w.check_and_update(3, 500), V::Accept);
        ASSERT_EQ(w.check_and_update(3, 501), V::Accept);
        ASSERT_EQ(w.check_and_update(3, 500 + jump), V::Accept) << jump;
        // Everything between the old top and the new top that is inside the window is unseen.
        for (uint64_t s = 502; s < 500 + jump && s < 502 + 2 * W; ++s) {
            const bool inside = (500 + jump) - s < W;
            ASSERT_EQ(w.check_and_update(3, s), inside ? V::Accept : V::Replay) << "jump " << jump << " seq " << s;
        }
        // The old numbers are seen (jump < W - 1 keeps them inside) or too old: never accepted.
        EXPECT_EQ(w.check_and_update(3, 500), V::Replay) << jump;
        EXPECT_EQ(w.check_and_update(3, 501), V::Replay) << jump;
    }
}

TEST(ReplayWindow, WordBoundaries) {
    ReplayWindow w;
    ASSERT_EQ(w.check_and_update(1, 255), V::Accept);
    for (uint64_t s : {63u, 64u, 127u, 128u, 191u, 192u, 0u}) EXPECT_EQ(w.check_and_update(1, s), V::Accept) << s;
    for (uint64_t s : {63u, 64u, 127u, 128u, 191u, 192u, 0u}) EXPECT_EQ(w.check_and_update(1, s), V::Replay) << s;
    for (uint64_t s : {62u, 65u, 126u, 129u, 190u, 193u, 1u}) EXPECT_EQ(w.check_and_update(1, s), V::Accept) << s;
}

TEST(ReplayWindow, NewerGenerationResets) {
    ReplayWindow w;
    ASSERT_EQ(w.check_and_update(100, 5000), V::Accept);
    ASSERT_EQ(w.check_and_update(100, 4999), V::Accept);
    // The peer restarted: its sequence starts again from 0.
    EXPECT_EQ(w.check_and_update(101, 0), V::Accept);
    EXPECT_EQ(w.generation(), 101u);
    EXPECT_EQ(w.highest(), 0u);
    EXPECT_EQ(w.check_and_update(101, 0), V::Replay);
    EXPECT_EQ(w.check_and_update(101, 1), V::Accept);
    // A numbers seen in the old generation mean nothing in the new one.
    EXPECT_EQ(w.check_and_update(101, 4999 - 4000), V::Accept);
    // A jump of several generations is fine too.
    EXPECT_EQ(w.check_and_update(2000000000, 3), V::Accept);
    EXPECT_EQ(w.check_and_update(2000000000, 2), V::Accept);
}

TEST(ReplayWindow, OlderGenerationRejected) {
    ReplayWindow w;
    ASSERT_EQ(w.check_and_update(100, 10), V::Accept);
    EXPECT_EQ(w.check_and_update(99, 11), V::OldGeneration);
    EXPECT_EQ(w.check_and_update(99, 10), V::OldGeneration);
    EXPECT_EQ(w.check_and_update(0, 1000000), V::OldGeneration);
    // Nothing changed.
    EXPECT_EQ(w.generation(), 100u);
    EXPECT_EQ(w.highest(), 10u);
    EXPECT_EQ(w.check_and_update(100, 10), V::Replay);
    EXPECT_EQ(w.check_and_update(100, 11), V::Accept);
    // Going forward and back: the older one stays rejected.
    ASSERT_EQ(w.check_and_update(101, 0), V::Accept);
    EXPECT_EQ(w.check_and_update(100, 12), V::OldGeneration);
}

TEST(ReplayWindow, WrapAroundEdges) {
    {   // near the top of uint64_t
        ReplayWindow w;
        ASSERT_EQ(w.check_and_update(1, UINT64_MAX - 1), V::Accept);
        EXPECT_EQ(w.check_and_update(1, UINT64_MAX), V::Accept);
        EXPECT_EQ(w.check_and_update(1, UINT64_MAX), V::Replay);
        EXPECT_EQ(w.check_and_update(1, UINT64_MAX - (W - 1)), V::Accept);
        EXPECT_EQ(w.check_and_update(1, UINT64_MAX - W), V::Replay);
        // Sequence numbers do not wrap within a generation: 0 after the top is ancient.
        EXPECT_EQ(w.check_and_update(1, 0), V::Replay);
        EXPECT_EQ(w.check_and_update(1, W - 1), V::Replay);
    }
    {   // window at the bottom: no underflow
        ReplayWindow w;
        ASSERT_EQ(w.check_and_update(1, 3), V::Accept);
        EXPECT_EQ(w.check_and_update(1, 0), V::Accept);
        EXPECT_EQ(w.check_and_update(1, 0), V::Replay);
        EXPECT_EQ(w.check_and_update(1, 2), V::Accept);
    }
    {   // from the bottom straight to the top
        ReplayWindow w;
        ASSERT_EQ(w.check_and_update(1, 0), V::Accept);
        EXPECT_EQ(w.check_and_update(1, UINT64_MAX), V::Accept);
        EXPECT_EQ(w.check_and_update(1, 0), V::Replay);
        EXPECT_EQ(w.check_and_update(1, UINT64_MAX - 1), V::Accept);
    }
    {   // generation at its maximum
        ReplayWindow w;
        ASSERT_EQ(w.check_and_update(UINT64_MAX, 1), V::Accept);
        EXPECT_EQ(w.check_and_update(UINT64_MAX - 1, 2), V::OldGeneration);
        EXPECT_EQ(w.check_and_update(0, 2), V::OldGeneration);
        EXPECT_EQ(w.check_and_update(UINT64_MAX, 2), V::Accept);
    }
}

// A straightforward model (a set of every accepted pair) against the bitmap, on random traffic with
// reordering, duplicates, jumps and generation changes.
TEST(ReplayWindow, MatchesReferenceModel) {
    std::mt19937_64 rng(4242);
    for (int run = 0; run < 50; ++run) {
        ReplayWindow w;
        bool any = false;
        uint64_t gen = 0, top = 0;
        std::set<uint64_t> seen;  // accepted sequence numbers of the current generation
        uint64_t g = 1 + rng() % 3, s = rng() % 1000;
        for (int i = 0; i < 5000; ++i) {
            switch (rng() % 20) {
                case 0: g += 1; s = rng() % 5; break;                       // restart
                case 1: if (g > 0) g -= 1; break;                           // stale generation
                case 2: s += W - 2 + rng() % 5; break;                      // jump around the window size
                case 3: s += rng() % 100000; break;                         // big jump
                case 4: case 5: case 6: s -= std::min<uint64_t>(s, rng() % (W + 20)); break;  // old/reorder
                default: s += rng() % 4; break;                             // mostly forward, dups
            }
            V expected;
            if (!any || g > gen) {
                expected = V::Accept;
                any = true;
                gen = g;
                top = s;
                seen = {s};
            } else if (g < gen) {
                expected = V::OldGeneration;
            } else if (s > top) {
                expected = V::Accept;
                top = s;
                seen.insert(s);
            } else if (top - s >= W || seen.count(s)) {
                expected = V::Replay;
            } else {
                expected = V::Accept;
                seen.insert(s);
            }
            ASSERT_EQ(w.check_and_update(g, s), expected) << "run " << run << " step " << i << " gen " << g
                                                          << " seq " << s << " top " << top;
            ASSERT_EQ(w.generation(), gen);
            ASSERT_EQ(w.highest(), top);
        }
    }
}

}  // namespace
}  // namespace duet::proto
