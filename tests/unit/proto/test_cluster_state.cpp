#include <gtest/gtest.h>

#include <random>

#include "proto/cluster_state.hpp"

using namespace duet::proto;

namespace {

ClusterState sample() {
    ClusterState s;
    s.maintenance = true;
    s.acked_request = 7;
    s.request = Request{9, RequestKind::Standby, {"web", "IPaddr::198.51.100.20"}};
    s.groups = {GroupReport{"web", GroupState::Running, false, 0, 41, 2},
                GroupReport{"IPaddr::198.51.100.20", GroupState::Claiming, true, 0xfffffffe, 0, 0},
                GroupReport{"db", GroupState::Blocked, false, 0, 0, 65535}};
    return s;
}

}  // namespace

TEST(ClusterState, RoundTrip) {
    auto s = sample();
    std::string err;
    auto d = decode_cluster_state(encode(s), err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(*d, s);
}

TEST(ClusterState, EmptyRoundTrip) {
    std::string err;
    auto d = decode_cluster_state(encode(ClusterState{}), err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(*d, ClusterState{});
}

TEST(ClusterState, EveryStateRoundTrips) {
    for (int st = 0; st <= static_cast<int>(GroupState::Blocked); ++st) {
        ClusterState s;
        s.groups = {GroupReport{"g", static_cast<GroupState>(st), st % 2 == 0, static_cast<uint32_t>(st * 3),
                                static_cast<uint32_t>(st), static_cast<uint16_t>(st)}};
        std::string err;
        auto d = decode_cluster_state(encode(s), err);
        ASSERT_TRUE(d) << err;
        EXPECT_EQ(*d, s);
    }
}

TEST(ClusterState, HoldsIsWhatMayBeActive) {
    EXPECT_FALSE(holds(GroupState::Stopped));
    EXPECT_FALSE(holds(GroupState::Claiming));
    EXPECT_FALSE(holds(GroupState::Failed));
    EXPECT_TRUE(holds(GroupState::Probing));
    EXPECT_TRUE(holds(GroupState::Starting));
    EXPECT_TRUE(holds(GroupState::Running));
    EXPECT_TRUE(holds(GroupState::Stopping));
    EXPECT_TRUE(holds(GroupState::Blocked));
}

TEST(ClusterState, EveryTruncationIsRejected) {
    auto bytes = encode(sample());
    for (size_t n = 0; n < bytes.size(); ++n) {
        std::string err;
        EXPECT_FALSE(decode_cluster_state(std::span(bytes.data(), n), err)) << "length " << n;
        EXPECT_FALSE(err.empty());
    }
}

TEST(ClusterState, RejectsBadFields) {
    auto good = encode(sample());
    std::string err;
    auto with = [&](size_t at, uint8_t v) {
        auto b = good;
        b[at] = v;
        return decode_cluster_state(b, err);
    };
    EXPECT_FALSE(with(0, 2));
    EXPECT_NE(err.find("version 2"), std::string::npos);
    EXPECT_FALSE(with(1, 2));  // unknown flag bit
    EXPECT_EQ(err, "bad flags");
    EXPECT_FALSE(with(10, 4));  // request kind
    EXPECT_EQ(err, "bad request kind");
    auto trailing = good;
    trailing.push_back(0);
    EXPECT_FALSE(decode_cluster_state(trailing, err));
    EXPECT_EQ(err, "trailing bytes");
}

TEST(ClusterState, RejectsUnprintableNames) {
    ClusterState s;
    s.groups = {GroupReport{"ab", GroupState::Running, false, 0, 0, 0}};
    auto b = encode(s);
    // version, flags, acked(4), seq(4), kind, count=0, group count, name len, 'a', 'b'
    ASSERT_EQ(b[14], 'a');
    b[14] = ' ';
    std::string err;
    EXPECT_FALSE(decode_cluster_state(b, err));
    EXPECT_EQ(err, "bad group name");
}

TEST(ClusterState, EncodeRefusesWhatCannotBeSent) {
    ClusterState s;
    s.groups.resize(kMaxGroups + 1, GroupReport{"g", GroupState::Stopped, false, 0, 0, 0});
    EXPECT_THROW(encode(s), std::invalid_argument);
    ClusterState t;
    t.groups = {GroupReport{std::string(kGroupNameMax + 1, 'x'), GroupState::Stopped, false, 0, 0, 0}};
    EXPECT_THROW(encode(t), std::invalid_argument);
}

TEST(ClusterState, RandomBytesNeverCrashAndDecodedReencodesIdentically) {
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::vector<uint8_t> b(rng() % 64);
        for (auto& x : b) x = static_cast<uint8_t>(rng());
        if (!b.empty()) b[0] = 1;
        std::string err;
        if (auto d = decode_cluster_state(b, err)) {
            EXPECT_EQ(encode(*d), b);
        }
    }
}
