#include <gtest/gtest.h>

#include "daemon/cluster/chain.hpp"

using namespace duet::cluster;

namespace {
// Runs an operation to its end with the given return codes, in order; returns the steps taken.
std::vector<Step> run(Chain& c, std::optional<Step> first, std::vector<int> rcs) {
    std::vector<Step> steps;
    size_t k = 0;
    for (auto s = first; s; s = c.on_result(k < rcs.size() ? rcs[k++] : 0)) steps.push_back(*s);
    return steps;
}
}  // namespace

TEST(Chain, StartsLeftToRight) {
    Chain c(3, 2);
    auto steps = run(c, c.start(), {});
    EXPECT_EQ(steps, (std::vector<Step>{{0, Act::Start}, {1, Act::Start}, {2, Act::Start}}));
    EXPECT_EQ(c.outcome(), Outcome::Started);
    EXPECT_FALSE(c.busy());
}

TEST(Chain, StopsRightToLeft) {
    Chain c(3, 2);
    auto steps = run(c, c.stop(), {});
    EXPECT_EQ(steps, (std::vector<Step>{{2, Act::Stop}, {1, Act::Stop}, {0, Act::Stop}}));
    EXPECT_EQ(c.outcome(), Outcome::Stopped);
}

TEST(Chain, FailedStartRollsBackIncludingTheFailedResource) {
    Chain c(4, 2);
    auto steps = run(c, c.start(), {0, 0, 1 /* third fails */, 0, 0, 0});
    EXPECT_EQ(steps, (std::vector<Step>{{0, Act::Start}, {1, Act::Start}, {2, Act::Start},
                                        {2, Act::Stop}, {1, Act::Stop}, {0, Act::Stop}}));
    EXPECT_EQ(c.outcome(), Outcome::StartFailed);
    EXPECT_EQ(c.failed_resource(), 2u);
    EXPECT_EQ(c.failed_rc(), 1);
}

TEST(Chain, FirstResourceFailing) {
    Chain c(2, 0);
    auto steps = run(c, c.start(), {5, 0});
    EXPECT_EQ(steps, (std::vector<Step>{{0, Act::Start}, {0, Act::Stop}}));
    EXPECT_EQ(c.outcome(), Outcome::StartFailed);
    EXPECT_EQ(c.failed_rc(), 5);
}

TEST(Chain, StopIsRetriedThenBlocks) {
    Chain c(3, 2);
    auto steps = run(c, c.stop(), {0, 1, 1, 1});
    EXPECT_EQ(steps, (std::vector<Step>{{2, Act::Stop}, {1, Act::Stop}, {1, Act::Stop}, {1, Act::Stop}}));
    EXPECT_EQ(c.outcome(), Outcome::Blocked);
    EXPECT_EQ(c.failed_resource(), 1u) << "resource 0 is not touched: the one above it may still run";
}

TEST(Chain, StopRetrySucceeds) {
    Chain c(2, 2);
    auto steps = run(c, c.stop(), {1, 0, 0});
    EXPECT_EQ(steps, (std::vector<Step>{{1, Act::Stop}, {1, Act::Stop}, {0, Act::Stop}}));
    EXPECT_EQ(c.outcome(), Outcome::Stopped);
}

TEST(Chain, RollbackThatCannotStopBlocks) {
    Chain c(2, 1);
    auto steps = run(c, c.start(), {0, 1, 1, 1});
    EXPECT_EQ(steps, (std::vector<Step>{{0, Act::Start}, {1, Act::Start}, {1, Act::Stop}, {1, Act::Stop}}));
    EXPECT_EQ(c.outcome(), Outcome::Blocked);
    EXPECT_EQ(c.failed_resource(), 1u);
}

TEST(Chain, ProbeFindsWhatRuns) {
    Chain c(3, 0);
    run(c, c.probe(), {0, 0, 0});
    EXPECT_EQ(c.outcome(), Outcome::ProbedRunning);
    run(c, c.probe(), {7, 7, 7});
    EXPECT_EQ(c.outcome(), Outcome::ProbedStopped);
    run(c, c.probe(), {0, 7, 1});
    EXPECT_EQ(c.outcome(), Outcome::ProbedPartial);
    EXPECT_EQ(c.running(), (std::vector<bool>{true, false, true})) << "rc 1 (failed) may still be active";
    run(c, c.probe(), {5, 6, 7});
    EXPECT_EQ(c.outcome(), Outcome::ProbedStopped) << "not installed / not configured cannot run";
}

TEST(Chain, MisuseIsAnError) {
    EXPECT_THROW(Chain(0, 1), std::invalid_argument);
    Chain c(1, 0);
    EXPECT_THROW(c.on_result(0), std::logic_error);
    c.start();
    EXPECT_THROW(c.stop(), std::logic_error);
}
