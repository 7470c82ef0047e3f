#include <gtest/gtest.h>

#include <random>

#include "daemon/cluster/policy.hpp"

using namespace duet::cluster;
using duet::proto::GroupState;
using duet::proto::holds;

namespace {
GroupView up(bool home_is_me, GroupState mine, GroupState theirs) {
    GroupView v;
    v.home_is_me = home_is_me;
    v.mine = mine;
    v.peer = PeerLiveness::Up;
    v.peer_known = true;
    v.theirs = theirs;
    return v;
}
}  // namespace

TEST(Policy, BothUpNothingRunsHomeClaimsOtherAcks) {
    auto home = up(true, GroupState::Stopped, GroupState::Stopped);
    EXPECT_EQ(decide(home), Decision::Claim);
    auto other = up(false, GroupState::Stopped, GroupState::Claiming);
    other.peer_claim = 5;
    EXPECT_EQ(decide(other), Decision::Nothing);
    EXPECT_EQ(acknowledge_claim(other), 5u);
    home.mine = GroupState::Claiming;
    home.my_claim = 5;
    EXPECT_EQ(decide(home), Decision::Nothing) << "waits for the acknowledgement";
    home.peer_ack = 4;
    EXPECT_EQ(decide(home), Decision::Nothing) << "an acknowledgement of an older claim is worthless";
    home.peer_ack = 5;
    EXPECT_EQ(decide(home), Decision::Start);
}

TEST(Policy, AnAcknowledgementIsAPromiseNotToCompete) {
    // I acknowledged the peer's claim 9; then my view changes (the peer went standby): I must not
    // claim while claim 9 stands, since the peer may start on my acknowledgement.
    auto me = up(false, GroupState::Stopped, GroupState::Claiming);
    me.peer_claim = 9;
    me.my_ack = 9;
    me.peer_standby = true;
    EXPECT_EQ(placement(me), Placement::Here);
    EXPECT_EQ(decide(me), Decision::Nothing);
    me.peer_claim = 10;  // a new claim I have not acknowledged yet
    EXPECT_EQ(decide(me), Decision::Claim);
}

TEST(Policy, NothingHappensBeforeThePeerIsKnown) {
    GroupView v;
    v.home_is_me = true;
    EXPECT_EQ(decide(v), Decision::Nothing) << "within initdead: wait";
    v.mine = GroupState::Running;  // adopted after a duetd restart
    EXPECT_EQ(decide(v), Decision::Nothing) << "keeps it";
}

TEST(Policy, PeerDeadTakeOver) {
    GroupView v;
    v.peer = PeerLiveness::Dead;
    EXPECT_EQ(decide(v), Decision::Start) << "initdead passed, or the peer died: take everything";
    v.mine = GroupState::Claiming;
    EXPECT_EQ(decide(v), Decision::Start);
    v.mine = GroupState::Failed;
    EXPECT_EQ(decide(v), Decision::Nothing) << "not a group this node failed";
    v.mine = GroupState::Stopped;
    v.theirs_last = GroupState::Blocked;
    EXPECT_EQ(decide(v), Decision::Nothing) << "a group blocked on the peer is never started";
}

TEST(Policy, HolderKeepsItWithoutAutoFailback) {
    auto home = up(true, GroupState::Stopped, GroupState::Running);  // home came back
    EXPECT_EQ(placement(home), Placement::There);
    EXPECT_EQ(decide(home), Decision::Nothing);
    auto holder = up(false, GroupState::Running, GroupState::Stopped);
    EXPECT_EQ(decide(holder), Decision::Nothing);
}

TEST(Policy, APeerThatIsProbingDoesNotTakeItAway) {
    // beta runs the group; alpha (its home) restarted and is probing: beta keeps it.
    auto holder = up(false, GroupState::Running, GroupState::Probing);
    EXPECT_EQ(placement(holder), Placement::Here);
    EXPECT_EQ(decide(holder), Decision::Nothing);
    // Nor one stopping a remnant it found after a restart.
    auto holder2 = up(false, GroupState::Running, GroupState::Stopping);
    EXPECT_EQ(decide(holder2), Decision::Nothing);
    // And the probing home, once it finds nothing running, does not claim it back.
    auto home = up(true, GroupState::Stopped, GroupState::Running);
    EXPECT_EQ(decide(home), Decision::Nothing);
}

TEST(Policy, AutoFailbackMovesItHome) {
    auto home = up(true, GroupState::Stopped, GroupState::Running);
    home.auto_failback = true;
    EXPECT_EQ(decide(home), Decision::Claim) << "claims while the peer still holds it";
    auto holder = up(false, GroupState::Running, GroupState::Claiming);
    holder.peer_claim = 3;
    holder.auto_failback = true;
    EXPECT_EQ(decide(holder), Decision::Stop);
    EXPECT_EQ(acknowledge_claim(holder), 0u) << "no ack while it still holds the group";
    holder.mine = GroupState::Stopped;
    EXPECT_EQ(acknowledge_claim(holder), 3u);
}

TEST(Policy, StandbyGivesUpToAPeerThatCanTakeIt) {
    auto me = up(true, GroupState::Running, GroupState::Stopped);
    me.my_standby = true;
    EXPECT_EQ(decide(me), Decision::Stop);
    auto peer = up(false, GroupState::Stopped, GroupState::Running);
    peer.peer_standby = true;
    EXPECT_EQ(decide(peer), Decision::Claim);
    // But not to a peer that failed the group.
    me.theirs = GroupState::Failed;
    EXPECT_EQ(decide(me), Decision::Nothing) << "standby does not switch the service off";
}

TEST(Policy, FailedGroupMovesToThePeer) {
    auto me = up(true, GroupState::Failed, GroupState::Stopped);
    EXPECT_EQ(placement(me), Placement::There);
    auto peer = up(false, GroupState::Stopped, GroupState::Failed);
    EXPECT_EQ(decide(peer), Decision::Claim);
    EXPECT_EQ(placement(up(true, GroupState::Failed, GroupState::Failed)), Placement::Nowhere);
}

TEST(Policy, BlockedIsNeverTouched) {
    EXPECT_EQ(decide(up(false, GroupState::Stopped, GroupState::Blocked)), Decision::Nothing);
    EXPECT_EQ(decide(up(true, GroupState::Blocked, GroupState::Stopped)), Decision::Nothing);
}

TEST(Policy, MaintenanceManagesNothingAndKeepsWhatItHolds) {
    auto me = up(true, GroupState::Running, GroupState::Stopped);
    me.maintenance = true;
    me.my_standby = true;
    EXPECT_EQ(decide(me), Decision::Nothing);
    auto peer = up(false, GroupState::Stopped, GroupState::Running);
    peer.peer_maintenance = true;
    peer.peer_standby = true;
    EXPECT_EQ(decide(peer), Decision::Nothing) << "the peer's resources are left alone";
}

TEST(Policy, BothClaimingTheHomeWins) {
    auto home = up(true, GroupState::Claiming, GroupState::Claiming);
    auto other = up(false, GroupState::Claiming, GroupState::Claiming);
    home.my_claim = other.peer_claim = 1;
    other.my_claim = home.peer_claim = 2;
    EXPECT_EQ(decide(home), Decision::Nothing);
    EXPECT_EQ(acknowledge_claim(home), 0u);
    EXPECT_EQ(decide(other), Decision::Withdraw);
    other.mine = GroupState::Stopped;  // applied
    EXPECT_EQ(acknowledge_claim(other), 1u);
}

// Two nodes exchanging reports through a delayed, in-order "network", with random standby,
// failures and cleanups. Invariant: while both are alive and in contact, never both hold the group.
TEST(Policy, SimulatedPairNeverRunsAGroupTwice) {
    std::mt19937 rng(42);
    uint32_t next_claim = 0;
    int runs_with_service = 0;
    for (int run = 0; run < 2000; ++run) {
        struct Node {
            GroupState state = GroupState::Stopped;
            bool standby = false;
            uint32_t claim = 0, ack = 0;
        } n[2];
        const bool afb = rng() % 2;
        Node heard[2] = {n[1], n[0]};  // what each node last heard from the other
        int running_steps = 0;
        for (int step = 0; step < 400; ++step) {
            const int who = static_cast<int>(rng() % 2);
            const int r = static_cast<int>(rng() % 100);
            if (r < 12) n[who].standby = !n[who].standby;
            if (r == 12 && n[who].state == GroupState::Running) n[who].state = GroupState::Failed;  // via its stop
            if (r == 13 && n[who].state == GroupState::Failed) n[who].state = GroupState::Stopped;  // cleanup
            if (r >= 70) heard[1 - who] = n[who];  // a report arrives (in order, often late)
            GroupView v;
            v.home_is_me = who == 0;
            v.auto_failback = afb;
            v.mine = n[who].state;
            v.my_claim = n[who].claim;
            v.my_ack = n[who].ack;
            v.my_standby = n[who].standby;
            v.peer = PeerLiveness::Up;
            v.peer_known = true;
            v.theirs = heard[who].state;
            v.peer_standby = heard[who].standby;
            v.peer_claim = heard[who].claim;
            v.peer_ack = heard[who].ack;
            switch (decide(v)) {
                case Decision::Claim: n[who].state = GroupState::Claiming; n[who].claim = ++next_claim; break;
                case Decision::Start: n[who].state = GroupState::Running; n[who].claim = 0; break;
                case Decision::Stop: n[who].state = GroupState::Stopped; break;
                case Decision::Withdraw: n[who].state = GroupState::Stopped; n[who].claim = 0; break;
                case Decision::Nothing: break;
            }
            v.mine = n[who].state;
            v.my_claim = n[who].claim;
            n[who].ack = acknowledge_claim(v);
            ASSERT_FALSE(holds(n[0].state) && holds(n[1].state))
                << "run " << run << " step " << step << ": both nodes hold the group";
            running_steps += n[0].state == GroupState::Running || n[1].state == GroupState::Running;
        }
        runs_with_service += running_steps > 200;
    }
    // And the group does run most of the time (liveness, loosely).
    EXPECT_GT(runs_with_service, 1000);
}
