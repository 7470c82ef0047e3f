// Membership state machine in simulated time: no clock, no sleeps.
#include "daemon/membership/membership.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <sstream>

namespace duet::membership {
namespace {

using namespace std::chrono_literals;
using K = Event::Kind;

constexpr Time T0{100000};  // an arbitrary origin, not zero

Settings settings(std::vector<std::string> paths = {"eth0", "eth1"}) {
    Settings s;
    s.keepalive = 1000ms;
    s.warntime = 5000ms;
    s.deadtime = 10000ms;
    s.initdead = 30000ms;
    s.paths = std::move(paths);
    return s;
}

std::string describe(const Event& e) {
    std::ostringstream o;
    o << to_string(e.kind) << "@" << e.at.count();
    if (e.path >= 0) o << " path " << e.path;
    if (e.gap.count() != 0) o << " gap " << e.gap.count();
    if (e.generation != 0) o << " gen " << e.generation;
    return o.str();
}

std::vector<std::string> describe(const std::vector<Event>& evs) {
    std::vector<std::string> out;
    for (const auto& e : evs) out.push_back(describe(e));
    return out;
}

std::string at(Time t) { return "@" + std::to_string(t.count()); }

TEST(Membership, InitialState) {
    Membership m(settings(), T0);
    EXPECT_EQ(m.peer().state, PeerState::Unknown);
    EXPECT_EQ(m.peer().since, T0);
    EXPECT_FALSE(m.peer().last_heard);
    ASSERT_EQ(m.paths().size(), 2u);
    EXPECT_EQ(m.paths()[0].name, "eth0");
    EXPECT_EQ(m.paths()[1].name, "eth1");
    EXPECT_EQ(m.paths()[0].state, PathState::Unknown);
    EXPECT_EQ(m.next_deadline(), T0 + 30000ms);
}

TEST(Membership, InitdeadExpiresWithNoContactAtTheExactMillisecond) {
    Membership m(settings(), T0);
    EXPECT_TRUE(m.on_tick(T0).empty());
    EXPECT_TRUE(m.on_tick(T0 + 29999ms).empty());
    EXPECT_EQ(m.peer().state, PeerState::Unknown);
    EXPECT_THAT(describe(m.on_tick(T0 + 30000ms)), ::testing::ElementsAre("peer-dead" + at(T0 + 30000ms) + " gap 30000"));
    EXPECT_EQ(m.peer().state, PeerState::Dead);
    EXPECT_EQ(m.peer().since, T0 + 30000ms);
    EXPECT_EQ(m.peer().deaths, 1u);
    EXPECT_EQ(m.next_deadline(), Time::max());
    EXPECT_TRUE(m.on_tick(T0 + 30001ms).empty());
    EXPECT_TRUE(m.on_tick(T0 + 100000ms).empty());
}

TEST(Membership, ContactBeforeInitdead) {
    Membership m(settings(), T0);
    EXPECT_THAT(describe(m.on_heartbeat(0, T0 + 5000ms, 77, 1)),
                ::testing::ElementsAre("path-up" + at(T0 + 5000ms) + " path 0 gen 77", "peer-up" + at(T0 + 5000ms) + " gen 77"));
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_EQ(m.peer().since, T0 + 5000ms);
    EXPECT_EQ(m.peer().generation, 77u);
    EXPECT_EQ(m.peer().reported_state, 1);
    EXPECT_EQ(m.paths()[0].state, PathState::Up);
    EXPECT_EQ(m.paths()[1].state, PathState::Unknown);
    // From now on deadtime rules, not initdead: heartbeats every second keep it up past initdead.
    for (Time t = T0 + 6000ms; t <= T0 + 60000ms; t += 1000ms) {
        ASSERT_TRUE(m.on_tick(t).empty()) << t.count();
        ASSERT_TRUE(m.on_heartbeat(0, t, 77, 2).empty()) << t.count();
    }
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_EQ(m.peer().reported_state, 2);
    EXPECT_EQ(m.peer().deaths, 0u);
    EXPECT_EQ(m.paths()[0].received, 56u);
    EXPECT_EQ(m.next_deadline(), T0 + 60000ms + 5000ms);
}

TEST(Membership, WarntimeWarnsExactlyOncePerSilence) {
    Membership m(settings(), T0);
    const Time t = T0 + 1000ms;
    m.on_heartbeat(0, t, 1, 2);
    EXPECT_EQ(m.next_deadline(), t + 5000ms);
    EXPECT_TRUE(m.on_tick(t + 4999ms).empty());
    EXPECT_THAT(describe(m.on_tick(t + 5000ms)), ::testing::ElementsAre("peer-late" + at(t + 5000ms) + " gap 5000 gen 1"));
    EXPECT_EQ(m.next_deadline(), t + 10000ms);  // the warning is not pending any more
    EXPECT_TRUE(m.on_tick(t + 5000ms).empty());
    EXPECT_TRUE(m.on_tick(t + 6000ms).empty());
    EXPECT_TRUE(m.on_tick(t + 9999ms).empty());
    EXPECT_EQ(m.peer().state, PeerState::Up);
    // The silence ends: the heartbeat is late; a new silence warns again.
    const Time t2 = t + 8000ms;
    EXPECT_THAT(describe(m.on_heartbeat(0, t2, 1, 2)), ::testing::ElementsAre("late-heartbeat" + at(t2) + " path 0 gap 8000 gen 1"));
    EXPECT_EQ(m.peer().late, 1u);
    EXPECT_EQ(m.paths()[0].late, 1u);
    EXPECT_TRUE(m.on_tick(t2 + 4999ms).empty());
    EXPECT_THAT(describe(m.on_tick(t2 + 5000ms)), ::testing::ElementsAre("peer-late" + at(t2 + 5000ms) + " gap 5000 gen 1"));
}

TEST(Membership, DeathExactlyAtLastHeardPlusDeadtime) {
    Membership m(settings({"eth0"}), T0);
    const Time t = T0 + 2000ms;
    m.on_heartbeat(0, t, 1, 2);
    m.on_tick(t + 5000ms);  // the warning
    EXPECT_EQ(m.next_deadline(), t + 10000ms);
    EXPECT_TRUE(m.on_tick(t + 9999ms).empty());
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_THAT(describe(m.on_tick(t + 10000ms)),
                ::testing::ElementsAre("path-down" + at(t + 10000ms) + " path 0 gap 10000",
                                       "peer-dead" + at(t + 10000ms) + " gap 10000 gen 1"));
    EXPECT_EQ(m.peer().state, PeerState::Dead);
    EXPECT_EQ(m.peer().since, t + 10000ms);
    EXPECT_EQ(m.peer().deaths, 1u);
    EXPECT_EQ(m.paths()[0].state, PathState::Down);
    EXPECT_EQ(m.next_deadline(), Time::max());
    EXPECT_TRUE(m.on_tick(t + 20000ms).empty());
}

TEST(Membership, HeartbeatOneMillisecondBeforeDeathKeepsThePeer) {
    Membership m(settings({"eth0"}), T0);
    const Time t = T0;
    m.on_heartbeat(0, t, 1, 2);
    m.on_tick(t + 5000ms);
    EXPECT_THAT(describe(m.on_heartbeat(0, t + 9999ms, 1, 2)),
                ::testing::ElementsAre("late-heartbeat" + at(t + 9999ms) + " path 0 gap 9999 gen 1"));
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_EQ(m.paths()[0].state, PathState::Up);
    EXPECT_TRUE(m.on_tick(t + 10000ms).empty());
    EXPECT_EQ(m.next_deadline(), t + 9999ms + 5000ms);
}

TEST(Membership, HeartbeatAtTheDeathPointWithoutATickComesFromADeadPeer) {
    // The caller's timer has not fired yet; the heartbeat still sees the deadline that passed.
    Membership m(settings({"eth0"}), T0);
    m.on_heartbeat(0, T0, 1, 2);
    const Time t = T0 + 10000ms;
    EXPECT_THAT(describe(m.on_heartbeat(0, t, 1, 2)),
                ::testing::ElementsAre("peer-late" + at(T0 + 5000ms) + " gap 5000 gen 1",
                                       "path-down" + at(t) + " path 0 gap 10000",
                                       "peer-dead" + at(t) + " gap 10000 gen 1",
                                       "path-up" + at(t) + " path 0 gen 1",
                                       "peer-up" + at(t) + " gen 1"));
    EXPECT_EQ(m.peer().deaths, 1u);
    EXPECT_EQ(m.peer().state, PeerState::Up);
}

TEST(Membership, PeerReturnsAfterDeath) {
    Membership m(settings(), T0);
    m.on_heartbeat(0, T0, 5, 2);
    m.on_heartbeat(1, T0, 5, 2);
    m.on_tick(T0 + 60000ms);
    ASSERT_EQ(m.peer().state, PeerState::Dead);
    const Time back = T0 + 70000ms;
    auto evs = m.on_heartbeat(1, back, 5, 1);
    // The return is not a late heartbeat: the silence was an outage, reported as a death.
    EXPECT_THAT(describe(evs), ::testing::ElementsAre("path-up" + at(back) + " path 1 gen 5",
                                                      "peer-up" + at(back) + " gen 5"));
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_EQ(m.peer().since, back);
    EXPECT_EQ(m.peer().deaths, 1u);
    EXPECT_EQ(m.peer().restarts, 0u);
    EXPECT_EQ(m.paths()[0].state, PathState::Down);
    EXPECT_EQ(m.paths()[1].state, PathState::Up);
    // Returning with a new generation after death is a return, not a restart.
    m.on_tick(back + 10000ms);
    ASSERT_EQ(m.peer().state, PeerState::Dead);
    const auto evs2 = m.on_heartbeat(0, back + 20000ms, 6, 1);
    ASSERT_FALSE(evs2.empty());
    EXPECT_EQ(describe(evs2.back()), "peer-up" + at(back + 20000ms) + " gen 6");
    EXPECT_EQ(m.peer().restarts, 0u);
    EXPECT_EQ(m.peer().deaths, 2u);
    EXPECT_EQ(m.peer().generation, 6u);
}

TEST(Membership, PeerRestartedWithinDeadtime) {
    Membership m(settings(), T0);
    m.on_heartbeat(0, T0, 1000, 2);
    m.on_heartbeat(0, T0 + 1000ms, 1000, 2);
    const Time since = m.peer().since.value();
    // The peer restarted quickly: new generation, no silence long enough to matter.
    EXPECT_THAT(describe(m.on_heartbeat(0, T0 + 3000ms, 1003, 1)),
                ::testing::ElementsAre("peer-restarted" + at(T0 + 3000ms) + " gen 1003"));
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_EQ(m.peer().generation, 1003u);
    EXPECT_EQ(m.peer().restarts, 1u);
    EXPECT_EQ(m.peer().deaths, 0u);
    EXPECT_EQ(m.peer().since, since);
    EXPECT_EQ(m.peer().reported_state, 1);
    // The same generation again is nothing new.
    EXPECT_TRUE(m.on_heartbeat(1, T0 + 3001ms, 1003, 2).size() == 1);  // only eth1's path-up
    EXPECT_EQ(m.peer().restarts, 1u);
}

TEST(Membership, OnePathLostPeerStaysUp) {
    Membership m(settings(), T0);
    Time t = T0;
    for (; t <= T0 + 10000ms; t += 1000ms) {
        m.on_heartbeat(0, t, 1, 2);
        m.on_heartbeat(1, t, 1, 2);
    }
    const Time last0 = t - 1000ms;
    // eth0 is cut; eth1 keeps going.
    std::vector<Event> all;
    for (; t <= T0 + 40000ms; t += 1000ms) {
        for (auto& e : m.on_tick(t)) all.push_back(e);
        for (auto& e : m.on_heartbeat(1, t, 1, 2)) all.push_back(e);
    }
    EXPECT_THAT(describe(all), ::testing::ElementsAre("path-down" + at(last0 + 10000ms) + " path 0 gap 10000"));
    EXPECT_EQ(m.peer().state, PeerState::Up);
    EXPECT_EQ(m.paths()[0].state, PathState::Down);
    EXPECT_EQ(m.paths()[1].state, PathState::Up);
    // eth0 comes back: the path's outage was reported as path-down; its return is no late heartbeat
    // and adds no gap sample (the histogram is for tuning deadtime, not a record of outages).
    const Time back = t;
    const auto gaps_before = m.paths()[0].gaps.total;
    EXPECT_THAT(describe(m.on_heartbeat(0, back, 1, 2)), ::testing::ElementsAre("path-up" + at(back) + " path 0 gen 1"));
    EXPECT_EQ(m.paths()[0].late, 0u);
    EXPECT_EQ(m.paths()[0].gaps.total, gaps_before);
    EXPECT_EQ(m.peer().late, 0u);
}

TEST(Membership, AllPathsLostPeerDead) {
    Membership m(settings(), T0);
    m.on_heartbeat(0, T0, 1, 2);
    m.on_heartbeat(1, T0 + 500ms, 1, 2);
    // Ticks at every deadline, in turn.
    std::vector<std::string> seen;
    for (int i = 0; i < 10 && m.next_deadline() != Time::max(); ++i) {
        const auto evs = m.on_tick(m.next_deadline());
        EXPECT_FALSE(evs.empty());
        for (const auto& d : describe(evs)) seen.push_back(d);
    }
    EXPECT_THAT(seen, ::testing::ElementsAre("peer-late" + at(T0 + 5500ms) + " gap 5000 gen 1",
                                             "path-down" + at(T0 + 10000ms) + " path 0 gap 10000",
                                             "path-down" + at(T0 + 10500ms) + " path 1 gap 10000",
                                             "peer-dead" + at(T0 + 10500ms) + " gap 10000 gen 1"));
    EXPECT_EQ(m.next_deadline(), Time::max());
}

TEST(Membership, LateHeartbeatCounting) {
    Membership m(settings(), T0);
    m.on_heartbeat(0, T0, 1, 2);
    m.on_heartbeat(1, T0, 1, 2);
    // eth0 gap 6000 (> warntime), but eth1 heard 1000 before: the peer was not silent.
    m.on_heartbeat(1, T0 + 5000ms, 1, 2);
    auto evs = m.on_heartbeat(0, T0 + 6000ms, 1, 2);
    EXPECT_THAT(describe(evs), ::testing::ElementsAre("late-heartbeat" + at(T0 + 6000ms) + " path 0 gap 6000 gen 1"));
    EXPECT_EQ(m.paths()[0].late, 1u);
    EXPECT_EQ(m.paths()[1].late, 0u);
    EXPECT_EQ(m.peer().late, 0u);
    // A gap of exactly warntime is not late.
    EXPECT_TRUE(m.on_heartbeat(1, T0 + 10000ms, 1, 2).empty());
    EXPECT_EQ(m.paths()[1].late, 0u);
    // Silence on both, then eth1 after 7000: late on the path and for the peer.
    evs = m.on_heartbeat(1, T0 + 17000ms, 1, 2);
    EXPECT_THAT(describe(evs), ::testing::ElementsAre("peer-late" + at(T0 + 15000ms) + " gap 5000 gen 1",
                                                      "path-down" + at(T0 + 16000ms) + " path 0 gap 10000",
                                                      "late-heartbeat" + at(T0 + 17000ms) + " path 1 gap 7000 gen 1"));
    EXPECT_EQ(m.paths()[1].late, 1u);
    EXPECT_EQ(m.peer().late, 1u);
    // eth0, last heard at 6000 and down since 16000, now at 17001: the path comes back up; its
    // outage was reported as path-down, so this is no late heartbeat.
    EXPECT_THAT(describe(m.on_heartbeat(0, T0 + 17001ms, 1, 2)),
                ::testing::ElementsAre("path-up" + at(T0 + 17001ms) + " path 0 gen 1"));
    EXPECT_EQ(m.paths()[0].late, 1u);
    EXPECT_EQ(m.peer().late, 1u);
    EXPECT_EQ(m.paths()[0].received, 3u);
    EXPECT_EQ(m.paths()[1].received, 4u);
}

TEST(GapHistogram, BucketBoundaries) {
    GapHistogram h;
    // Bucket i counts gaps < kBounds[i] and >= kBounds[i-1].
    h.add(0ms);
    h.add(9ms);
    EXPECT_EQ(h.counts[0], 2u);
    h.add(10ms);
    h.add(19ms);
    EXPECT_EQ(h.counts[1], 2u);
    h.add(20ms);
    EXPECT_EQ(h.counts[2], 1u);
    h.add(999ms);
    EXPECT_EQ(h.counts[6], 1u);
    h.add(1000ms);
    EXPECT_EQ(h.counts[7], 1u);
    h.add(59999ms);
    EXPECT_EQ(h.counts[11], 1u);
    h.add(60000ms);
    h.add(std::chrono::hours(24 * 365));
    EXPECT_EQ(h.counts[12], 2u);
    EXPECT_EQ(h.total, 10u);
    EXPECT_EQ(h.max, std::chrono::hours(24 * 365));
    uint64_t sum = 0;
    for (auto c : h.counts) sum += c;
    EXPECT_EQ(sum, h.total);
    // Every bound: the value just below goes to bucket i, the bound itself to i+1.
    for (size_t i = 0; i + 1 < GapHistogram::kBounds.size(); ++i) {
        GapHistogram g;
        g.add(Millis{GapHistogram::kBounds[i] - 1});
        g.add(Millis{GapHistogram::kBounds[i]});
        EXPECT_EQ(g.counts[i], 1u) << i;
        EXPECT_EQ(g.counts[i + 1], 1u) << i;
        EXPECT_EQ(g.max, Millis{GapHistogram::kBounds[i]});
    }
}

TEST(Membership, PathHistogramRecordsInterArrivalGaps) {
    Membership m(settings(), T0);
    m.on_heartbeat(0, T0, 1, 2);                 // first: no gap yet
    m.on_heartbeat(0, T0 + 1000ms, 1, 2);        // 1000 -> bucket 7 (1000..1999)
    m.on_heartbeat(0, T0 + 2500ms, 1, 2);        // 1500 -> bucket 7
    m.on_heartbeat(0, T0 + 2505ms, 1, 2);        // 5    -> bucket 0
    m.on_heartbeat(0, T0 + 9505ms, 1, 2);        // 7000 -> bucket 9 (5000..9999)
    const auto& g = m.paths()[0].gaps;
    EXPECT_EQ(g.total, 4u);
    EXPECT_EQ(g.counts[7], 2u);
    EXPECT_EQ(g.counts[0], 1u);
    EXPECT_EQ(g.counts[9], 1u);
    EXPECT_EQ(g.max, 7000ms);
    EXPECT_EQ(m.paths()[1].gaps.total, 0u);
    EXPECT_EQ(m.paths()[0].last_heard, T0 + 9505ms);
    EXPECT_EQ(m.peer().last_heard, T0 + 9505ms);
}

TEST(Membership, VeryLateTickEmitsEverythingInOrder) {
    // Suspended for an hour: one tick must report what happened, when it happened.
    Membership m(settings(), T0);
    m.on_heartbeat(1, T0 + 100ms, 9, 2);
    m.on_heartbeat(1, T0 + 2000ms, 9, 2);
    m.on_heartbeat(0, T0 + 3000ms, 9, 2);
    const auto evs = m.on_tick(T0 + 3600000ms);
    EXPECT_THAT(describe(evs), ::testing::ElementsAre("peer-late" + at(T0 + 8000ms) + " gap 5000 gen 9",
                                                      "path-down" + at(T0 + 12000ms) + " path 1 gap 10000",
                                                      "path-down" + at(T0 + 13000ms) + " path 0 gap 10000",
                                                      "peer-dead" + at(T0 + 13000ms) + " gap 10000 gen 9"));
    EXPECT_EQ(m.peer().since, T0 + 13000ms);
    EXPECT_TRUE(m.on_tick(T0 + 3600001ms).empty());
}

TEST(Membership, VeryLateTickDuringInitdead) {
    Membership m(settings(), T0);
    EXPECT_THAT(describe(m.on_tick(T0 + 3600000ms)), ::testing::ElementsAre("peer-dead" + at(T0 + 30000ms) + " gap 30000"));
}

TEST(Membership, SetTimingsLongerDeadtime) {
    Membership m(settings(), T0);
    m.on_heartbeat(0, T0, 1, 2);
    m.set_timings(2000ms, 15000ms, 40000ms, 120000ms);
    EXPECT_EQ(m.settings().deadtime, 40000ms);
    EXPECT_EQ(m.settings().keepalive, 2000ms);
    EXPECT_EQ(m.settings().paths.size(), 2u);
    EXPECT_EQ(m.next_deadline(), T0 + 15000ms);
    EXPECT_TRUE(m.on_tick(T0 + 14999ms).empty());
    EXPECT_THAT(describe(m.on_tick(T0 + 39999ms)), ::testing::ElementsAre("peer-late" + at(T0 + 15000ms) + " gap 15000 gen 1"));
    EXPECT_EQ(m.next_deadline(), T0 + 40000ms);
    EXPECT_EQ(m.on_tick(T0 + 40000ms).back().kind, K::PeerDead);
}

TEST(Membership, SetTimingsShorterDeadtimeAppliesFromLastHeard) {
    Membership m(settings({"eth0"}), T0);
    m.on_heartbeat(0, T0, 1, 2);
    EXPECT_TRUE(m.on_tick(T0 + 2500ms).empty());
    m.set_timings(500ms, 1000ms, 2000ms, 5000ms);
    // Both deadlines, recomputed from last_heard, have already passed: the next tick reports them.
    EXPECT_EQ(m.next_deadline(), T0 + 1000ms);
    EXPECT_THAT(describe(m.on_tick(T0 + 2600ms)), ::testing::ElementsAre("peer-late" + at(T0 + 1000ms) + " gap 1000 gen 1",
                                                                         "path-down" + at(T0 + 2000ms) + " path 0 gap 2000",
                                                                         "peer-dead" + at(T0 + 2000ms) + " gap 2000 gen 1"));
}

TEST(Membership, SetTimingsChangesInitdead) {
    Membership m(settings(), T0);
    m.set_timings(1000ms, 5000ms, 10000ms, 90000ms);
    EXPECT_EQ(m.next_deadline(), T0 + 90000ms);
    EXPECT_TRUE(m.on_tick(T0 + 30000ms).empty());
    EXPECT_EQ(describe(m.on_tick(T0 + 90000ms)), std::vector<std::string>{"peer-dead" + at(T0 + 90000ms) + " gap 90000"});
}

TEST(Membership, WarntimeNotBelowDeadtimeNeverWarns) {
    Settings s = settings({"eth0"});
    s.warntime = s.deadtime;
    Membership m(s, T0);
    m.on_heartbeat(0, T0, 1, 2);
    EXPECT_EQ(m.next_deadline(), T0 + 10000ms);
    EXPECT_THAT(describe(m.on_tick(T0 + 10000ms)),
                ::testing::ElementsAre("path-down" + at(T0 + 10000ms) + " path 0 gap 10000",
                                       "peer-dead" + at(T0 + 10000ms) + " gap 10000 gen 1"));
}

TEST(Membership, RejectsBadInput) {
    EXPECT_THROW(Membership(settings({}), T0), std::invalid_argument);
    Settings s = settings();
    s.deadtime = 0ms;
    EXPECT_THROW(Membership(s, T0), std::invalid_argument);
    s = settings();
    s.warntime = -1ms;
    EXPECT_THROW(Membership(s, T0), std::invalid_argument);
    s = settings();
    s.keepalive = 0ms;
    EXPECT_THROW(Membership(s, T0), std::invalid_argument);
    s = settings();
    s.initdead = -1ms;
    EXPECT_THROW(Membership(s, T0), std::invalid_argument);

    Membership m(settings(), T0);
    EXPECT_THROW(m.on_heartbeat(2, T0, 1, 2), std::out_of_range);
    EXPECT_THROW(m.on_heartbeat(-1, T0, 1, 2), std::out_of_range);
    EXPECT_THROW(m.set_timings(1000ms, 5000ms, 0ms, 1000ms), std::invalid_argument);
    EXPECT_EQ(m.settings().deadtime, 10000ms);  // unchanged after a refused change
}

TEST(Membership, NamesOfStatesAndEvents) {
    EXPECT_STREQ(to_string(PeerState::Dead), "dead");
    EXPECT_STREQ(to_string(PathState::Down), "down");
    std::set<std::string> names;
    for (auto k : {K::PeerUp, K::PeerRestarted, K::PeerLate, K::PeerDead, K::PathUp, K::PathDown, K::LateHeartbeat})
        names.insert(to_string(k));
    EXPECT_EQ(names.size(), 7u);
}

// The same random traffic, driven three ways: a tick every millisecond, ticks only at
// next_deadline(), and no ticks at all between heartbeats. All must report the same events with
// the same times, and next_deadline() must never promise nothing while something is still due.
TEST(Membership, TickScheduleDoesNotChangeTheOutcome) {
    std::mt19937_64 rng(31337);
    uint64_t deaths = 0, restarts = 0, late = 0;
    for (int run = 0; run < 20; ++run) {
        struct Beat {
            Time t;
            int path;
            uint64_t gen;
        };
        std::vector<Beat> beats;
        Time t = T0 + Millis{int64_t(rng() % 40000)};
        uint64_t gen = 1;
        const Time end = T0 + 200000ms;
        while (t < end - 20000ms) {
            const int r = int(rng() % 100);
            if (r < 3) t += Millis{int64_t(5000 + rng() % 20000)};  // long silence
            else t += Millis{int64_t(rng() % 2000)};
            if (r == 50) ++gen;
            beats.push_back({t, int(rng() % 3), gen});
        }
        Settings s = settings({"a", "b", "c"});

        Membership every(s, T0), on_deadline(s, T0), lazy(s, T0);
        std::vector<std::string> ev_every, ev_deadline, ev_lazy;
        auto add = [](std::vector<std::string>& to, const std::vector<Event>& evs) {
            for (auto& d : describe(evs)) to.push_back(d);
        };

        size_t bi = 0;
        for (Time now = T0; now <= end; now += 1ms) {
            while (bi < beats.size() && beats[bi].t == now) {
                add(ev_every, every.on_heartbeat(beats[bi].path, now, beats[bi].gen, 2));
                ++bi;
            }
            add(ev_every, every.on_tick(now));
        }

        for (const auto& b : beats) {
            while (on_deadline.next_deadline() <= b.t) {
                const Time d = on_deadline.next_deadline();
                const auto evs = on_deadline.on_tick(d);
                ASSERT_FALSE(evs.empty()) << "a deadline that produced nothing at " << d.count();
                add(ev_deadline, evs);
            }
            add(ev_deadline, on_deadline.on_heartbeat(b.path, b.t, b.gen, 2));
            add(ev_lazy, lazy.on_heartbeat(b.path, b.t, b.gen, 2));
        }
        while (on_deadline.next_deadline() <= end) add(ev_deadline, on_deadline.on_tick(on_deadline.next_deadline()));
        add(ev_lazy, lazy.on_tick(end));

        ASSERT_EQ(ev_deadline, ev_every) << "run " << run;
        ASSERT_EQ(ev_lazy, ev_every) << "run " << run;
        EXPECT_EQ(every.peer().deaths, lazy.peer().deaths);
        EXPECT_EQ(every.peer().late, lazy.peer().late);
        EXPECT_EQ(every.peer().restarts, on_deadline.peer().restarts);
        deaths += every.peer().deaths;
        restarts += every.peer().restarts;
        late += every.peer().late;
    }
    // The traffic did exercise deaths, restarts and late heartbeats.
    EXPECT_GT(deaths, 0u);
    EXPECT_GT(restarts, 0u);
    EXPECT_GT(late, 0u);
}

TEST(Membership, RestartWithinDeadtimeIsNoLateHeartbeat) {
    Membership m(settings({"eth0"}), T0);
    m.on_heartbeat(0, T0, 1, 2);
    const Time t = T0 + 7000ms;  // past warntime (5000), before deadtime (10000), new generation
    EXPECT_THAT(describe(m.on_heartbeat(0, t, 2, 1)),
                ::testing::ElementsAre("peer-late" + at(T0 + 5000ms) + " gap 5000 gen 1", "peer-restarted" + at(t) + " gen 2"));
    EXPECT_EQ(m.paths()[0].late, 0u);
    EXPECT_EQ(m.peer().late, 0u);
    EXPECT_EQ(m.paths()[0].gaps.total, 0u);
    // The next gap of the new generation counts again.
    EXPECT_THAT(describe(m.on_heartbeat(0, t + 6000ms, 2, 2)),
                ::testing::ElementsAre("peer-late" + at(t + 5000ms) + " gap 5000 gen 2", "late-heartbeat" + at(t + 6000ms) + " path 0 gap 6000 gen 2"));
    EXPECT_EQ(m.paths()[0].gaps.total, 1u);
}

}  // namespace
}  // namespace duet::membership
