// Generation identifiers: every row of the decision table from both sides, the mirror property
// over a large space of states, the transition functions, and two-node simulations with data in
// which every sync the table orders must leave both copies identical.
#include "daemon/replication/genid.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace duet::replication {
namespace {

using ::testing::HasSubstr;
using proto::repl::Disk;
using proto::repl::GenIds;
using proto::repl::Role;
using D = SyncDecision;

constexpr uint64_t JC = kJustCreated;
constexpr uint64_t X = 0xA1A1, Y = 0xB2B2, Z = 0xC3C3, W = 0xD4D4, V = 0xE5E5;

NodeView n(GenIds g, Disk d = Disk::UpToDate, Role r = Role::Secondary, bool crashed = false) {
    return NodeView{g, d, r, crashed};
}
const Role P = Role::Primary;
const Role S = Role::Secondary;

struct Row {
    std::string name;
    NodeView local;
    NodeView peer;
    D expected;
    std::string reason_has;  // a fragment the reason must contain
};

std::vector<Row> table() {
    return {
        // 1. diskless
        {"local diskless", n({X}, Disk::Diskless), n({X}), D::NoUpToDate, "this node has no disk"},
        {"peer diskless", n({X}), n({X}, Disk::Diskless), D::NoUpToDate, "the peer has no disk"},
        // 2. two Primaries
        {"both primary", n({X}, Disk::UpToDate, P), n({X}, Disk::UpToDate, P), D::SplitBrain, "both nodes are Primary"},
        {"both primary, diverged", n({Y, X}, Disk::UpToDate, P), n({Z, X}, Disk::UpToDate, P), D::SplitBrain,
         "both nodes are Primary"},
        // 3-5. just created
        {"both just created", n({JC}, Disk::Inconsistent), n({JC}, Disk::Inconsistent), D::NoUpToDate,
         "--overwrite-data-of-peer"},
        {"both just created, local forced", n({JC}, Disk::UpToDate, P), n({JC}, Disk::Inconsistent), D::SourceFull,
         "forced UpToDate"},
        {"both just created, both forced", n({JC}), n({JC}), D::SplitBrain, "both nodes were forced"},
        {"local just created", n({JC}, Disk::Inconsistent), n({X}), D::TargetFull, "this node has just-created"},
        {"local just created, peer outdated", n({JC}, Disk::Inconsistent), n({X}, Disk::Outdated), D::TargetFull, ""},
        {"local just created, peer forced new current", n({JC}, Disk::Inconsistent), n({Y, 0}, Disk::UpToDate, P),
         D::TargetFull, ""},
        {"local just created, peer inconsistent", n({JC}, Disk::Inconsistent), n({X}, Disk::Inconsistent),
         D::NoUpToDate, "its disk is Inconsistent"},
        {"local just created but forced, peer has data", n({JC}, Disk::UpToDate), n({X}), D::Unrelated,
         "forced UpToDate on just-created metadata"},
        {"just created target is primary", n({X}), n({JC}, Disk::Inconsistent, P), D::SplitBrain, "is Primary"},
        // 6-9. same generation
        {"in sync", n({X}), n({X}), D::InSync, "in sync"},
        {"in sync, primary and secondary", n({X}, Disk::UpToDate, P), n({X}), D::InSync, ""},
        {"in sync, peer outdated", n({X}), n({X}, Disk::Outdated), D::InSync, ""},
        {"in sync, different bitmaps (lost sync-finish)", n({Y, X}), n({Y}), D::InSync, ""},
        {"same, local inconsistent", n({X}, Disk::Inconsistent), n({X}), D::TargetFull, "Inconsistent"},
        {"same, both inconsistent", n({X}, Disk::Inconsistent), n({X}, Disk::Inconsistent), D::NoUpToDate,
         "both disks are Inconsistent"},
        {"same, local crashed primary", n({X}, Disk::UpToDate, S, true), n({X}), D::SourceFromBitmap,
         "crashed as Primary"},
        {"same, both crashed", n({X}, Disk::UpToDate, S, true), n({X}, Disk::UpToDate, S, true), D::SplitBrain,
         "both nodes were Primary when they crashed"},
        {"same, crashed source but target primary", n({X}, Disk::UpToDate, S, true), n({X}, Disk::UpToDate, P),
         D::SplitBrain, "is Primary"},
        // 10-12. one side moved on
        {"local moved on", n({Y, X}, Disk::UpToDate, P), n({X}), D::SourceFromBitmap, "this node moved on"},
        {"local moved on, secondary now", n({Y, X}), n({X}, Disk::Outdated), D::SourceFromBitmap, ""},
        {"peer moved on after a failover", n({X}, Disk::UpToDate, S, true), n({Y, X}, Disk::UpToDate, P),
         D::TargetFromBitmap, "this node crashed as Primary there"},
        {"local moved on, history kept", n({Y, X, {W, V}}), n({X, 0, {W, V}}), D::SourceFromBitmap, ""},
        {"moved on twice while away", n({Z, X, {Y, 0}}), n({X}), D::SourceFromBitmap, ""},
        {"interrupted resync resumes", n({Y, X}), n({X}, Disk::Inconsistent), D::SourceFromBitmap, ""},
        {"moved on but source inconsistent", n({Y, X}, Disk::Inconsistent), n({X}), D::NoUpToDate,
         "its disk is Inconsistent"},
        {"moved on but target primary", n({Y, X}), n({X}, Disk::UpToDate, P), D::SplitBrain,
         "the peer would be the sync target and is Primary"},
        {"bitmaps point at each other", n({Y, X}), n({X, Y}), D::SplitBrain, "conflicting histories"},
        // 13. split brain
        {"both moved on from X", n({Y, X}), n({Z, X}), D::SplitBrain, "both nodes moved on from generation"},
        {"both moved on, local primary", n({Y, X}, Disk::UpToDate, P), n({Z, X}), D::SplitBrain, ""},
        // 14-16. history
        {"peer's current in local history", n({Y, 0, {X, 0}}), n({X}), D::SourceFull, "history"},
        {"peer's current in local's older history", n({Y, 0, {W, X}}), n({X}), D::SourceFull, ""},
        {"local current in peer history", n({X}), n({Y, 0, {X, 0}}), D::TargetFull, ""},
        {"history cycle", n({Y, 0, {X, 0}}), n({X, 0, {Y, 0}}), D::Unrelated, "conflicting histories"},
        {"history, target primary", n({Y, 0, {X, 0}}), n({X}, Disk::UpToDate, P), D::SplitBrain, "is Primary"},
        {"history, source inconsistent", n({Y, 0, {X, 0}}, Disk::Inconsistent), n({X}), D::NoUpToDate, ""},
        // 17-18. common ancestor or nothing
        {"common ancestor in history", n({Y, 0, {X, 0}}), n({Z, 0, {X, 0}}), D::SplitBrain, "common ancestor"},
        {"common ancestor, bitmap vs history", n({Y, X}), n({Z, 0, {X, 0}}), D::SplitBrain, "common ancestor"},
        {"unrelated", n({Y}), n({Z}), D::Unrelated, "share no history"},
        {"unrelated with bitmaps", n({Y, X}), n({Z, W}), D::Unrelated, "unrelated data"},
        {"just-created in history is no ancestor", n({Y, 0, {JC, 0}}), n({Z, 0, {JC, 0}}), D::Unrelated, ""},
    };
}

TEST(GenIdTable, EveryRowFromBothSides) {
    for (const Row& r : table()) {
        SCOPED_TRACE(r.name);
        const Decision here = decide(r.local, r.peer);
        EXPECT_EQ(here.decision, r.expected) << to_string(here.decision) << ": " << here.reason;
        EXPECT_THAT(here.reason, HasSubstr(r.reason_has));
        EXPECT_FALSE(here.reason.empty());
        const Decision there = decide(r.peer, r.local);
        EXPECT_EQ(there.decision, mirror(r.expected)) << to_string(there.decision) << ": " << there.reason;
        EXPECT_FALSE(there.reason.empty());
    }
}

TEST(GenIdTable, MirrorHoldsEverywhere) {
    // Every combination of a set of identifier tuples, disk states, roles and crash flags.
    const std::vector<GenIds> gens{
        {JC},          {X},           {Y},           {Y, X},          {Z, X},         {X, Y},
        {Y, 0, {X, 0}}, {Z, 0, {X, 0}}, {X, 0, {Y, 0}}, {Z, X, {Y, 0}}, {Y, W, {V, X}}, {W, 0, {0, X}},
        {Y, X, {W, V}}, {JC, 0, {X, 0}}, {V, Z},
    };
    const Disk disks[] = {Disk::Diskless, Disk::Inconsistent, Disk::Outdated, Disk::Consistent, Disk::UpToDate};
    std::vector<NodeView> views;
    for (const auto& g : gens)
        for (Disk d : disks)
            for (Role r : {S, P})
                for (bool c : {false, true}) views.push_back(n(g, d, r, c));
    size_t pairs = 0;
    std::set<D> seen;
    for (const auto& a : views)
        for (const auto& b : views) {
            const D ab = decide(a, b).decision;
            const D ba = decide(b, a).decision;
            ASSERT_EQ(ba, mirror(ab)) << to_string(a.gen) << " vs " << to_string(b.gen);
            seen.insert(ab);
            ++pairs;
        }
    EXPECT_EQ(pairs, views.size() * views.size());
    EXPECT_EQ(seen.size(), 8u);  // every decision occurs
}

TEST(GenIdTable, SafetyInvariants) {
    // Whatever the identifiers: a Primary is never a sync target, an Inconsistent disk never a
    // source, and two Primaries never sync.
    const std::vector<GenIds> gens{{JC}, {X}, {Y, X}, {Z, X}, {Y, 0, {X, 0}}, {X, 0, {Y, 0}}, {W}};
    for (const auto& ga : gens)
        for (const auto& gb : gens)
            for (Disk da : {Disk::Inconsistent, Disk::Outdated, Disk::UpToDate})
                for (Disk db : {Disk::Inconsistent, Disk::Outdated, Disk::UpToDate})
                    for (Role ra : {S, P})
                        for (Role rb : {S, P})
                            for (bool ca : {false, true}) {
                                const D d = decide(n(ga, da, ra, ca), n(gb, db, rb)).decision;
                                const bool a_src = d == D::SourceFull || d == D::SourceFromBitmap;
                                const bool a_tgt = d == D::TargetFull || d == D::TargetFromBitmap;
                                if (a_tgt) {
                                    EXPECT_NE(ra, P);
                                    EXPECT_NE(db, Disk::Inconsistent);
                                }
                                if (a_src) {
                                    EXPECT_NE(rb, P);
                                    EXPECT_NE(da, Disk::Inconsistent);
                                }
                                if (ra == P && rb == P) {
                                    EXPECT_EQ(d, D::SplitBrain);
                                }
                            }
}

TEST(GenIdTable, Names) {
    EXPECT_STREQ(to_string(D::SourceFromBitmap), "source (bitmap)");
    EXPECT_STREQ(to_string(D::SplitBrain), "split brain");
    EXPECT_EQ(to_string(GenIds{0xAB, 0, {1, 2}}), "00000000000000AB:0000000000000000:0000000000000001:0000000000000002");
    EXPECT_EQ(mirror(D::InSync), D::InSync);
    EXPECT_EQ(mirror(D::TargetFull), D::SourceFull);
    // The six-argument form is the table without crash information.
    EXPECT_EQ(decide(GenIds{X}, Disk::UpToDate, S, GenIds{Y, X}, Disk::UpToDate, P).decision, D::TargetFromBitmap);
    EXPECT_EQ(decide(GenIds{X}, Disk::UpToDate, P, GenIds{Y, X}, Disk::UpToDate, S).decision, D::SplitBrain);
}

// ---- transitions ------------------------------------------------------------------------------

TEST(GenIdTransitions, NewCurrent) {
    EXPECT_EQ(on_new_current(GenIds{JC}, Y), (GenIds{Y, 0, {0, 0}}));
    EXPECT_EQ(on_new_current(GenIds{X, 0, {W, V}}, Y), (GenIds{Y, X, {W, V}}));
    // The bitmap already tracks changes since W: it stays, the old current goes to history.
    EXPECT_EQ(on_new_current(GenIds{X, W, {V, Z}}, Y), (GenIds{Y, W, {X, V}}));
    EXPECT_THROW(on_new_current(GenIds{X}, 0), std::invalid_argument);
    EXPECT_THROW(on_new_current(GenIds{X}, JC), std::invalid_argument);
}

TEST(GenIdTransitions, SyncFinished) {
    const GenIds src{Y, X, {W, V}};
    EXPECT_EQ(on_sync_finished_source(src), (GenIds{Y, 0, {X, W}}));
    EXPECT_EQ(on_sync_finished_source(GenIds{Y, 0, {W, V}}), (GenIds{Y, 0, {W, V}}));  // full sync: no bitmap
    // The target ends with the source's identifiers, whether it gets them before or after the
    // source's own update, and whatever it had.
    EXPECT_EQ(on_sync_finished_target(GenIds{X}, src), (GenIds{Y, 0, {X, W}}));
    EXPECT_EQ(on_sync_finished_target(GenIds{Z, X, {V, 0}}, on_sync_finished_source(src)), (GenIds{Y, 0, {X, W}}));
    // After a finished sync both sides are in sync.
    EXPECT_EQ(decide(n(on_sync_finished_source(src)), n(on_sync_finished_target(GenIds{X}, src))).decision, D::InSync);
}

TEST(GenIdTransitions, RandomGeneration) {
    std::set<uint64_t> seen;
    for (int i = 0; i < 100; ++i) {
        const uint64_t g = random_generation();
        EXPECT_NE(g, 0u);
        EXPECT_NE(g, JC);
        seen.insert(g);
    }
    EXPECT_EQ(seen.size(), 100u);
}

// ---- two-node simulation ------------------------------------------------------------------------

// Two nodes with 16 blocks of data each, driven as the engine drives them: writes on the Primary
// go to both when connected and into the bitmap when not; a Primary that loses its peer or is
// promoted alone starts a new generation; connecting runs decide() and performs what it says.
class Sim {
public:
    static constexpr uint64_t kBlocks = 16;
    struct Node {
        std::string name;
        GenIds gen{JC};
        Disk disk = Disk::Inconsistent;
        Role role = S;
        bool crashed = false;
        bool up = true;
        std::vector<int> data = std::vector<int>(kBlocks, 0);
        std::set<uint64_t> dirty;  // the bitmap
    };
    Node a{"A"}, b{"B"};
    bool connected = false;
    size_t last_sync_blocks = 0;

    explicit Sim(uint64_t gen_base) : next_(gen_base) {}
    Node& other(Node& x) { return &x == &a ? b : a; }

    // First sync: --overwrite-data-of-peer on `x`, as the engine does it.
    void force_primary(Node& x) {
        x.disk = Disk::UpToDate;
        x.gen = on_new_current(x.gen, fresh());
        for (uint64_t i = 0; i < kBlocks; ++i) x.dirty.insert(i);
        x.role = P;
    }
    void promote(Node& x) {
        ASSERT_EQ(x.disk, Disk::UpToDate);
        ASSERT_FALSE(connected && other(x).role == P);
        if (!connected) x.gen = on_new_current(x.gen, fresh());
        x.role = P;
    }
    void demote(Node& x) { x.role = S; }
    void write(Node& x, uint64_t block, int value) {
        ASSERT_EQ(x.role, P);
        x.data[block] = value;
        if (connected) other(x).data[block] = value;
        else x.dirty.insert(block);
    }
    // The Primary dies with a write on its own disk only; its activity log names the block's
    // extent, which recovery puts into the bitmap.
    void crash_during_write(Node& x, uint64_t block, int value) {
        ASSERT_EQ(x.role, P);
        x.data[block] = value;
        x.dirty.insert(block);
        x.up = false;  // a dead node starts no new generation; the survivor may
        disconnect();
        x.crashed = true;
        x.role = S;
    }
    void restart(Node& x) { x.up = true; }
    void disconnect() {
        if (!connected) return;
        connected = false;
        for (Node* x : {&a, &b})
            if (x->up && x->role == P) x->gen = on_new_current(x->gen, fresh());
    }
    static NodeView view(const Node& x) { return NodeView{x.gen, x.disk, x.role, x.crashed}; }

    // Connects, syncs what decide() says. `interrupt_after` stops the sync after that many blocks
    // (the link fails). Returns the decision seen from A.
    D connect(size_t interrupt_after = SIZE_MAX) {
        const Decision da = decide(view(a), view(b));
        const Decision db = decide(view(b), view(a));
        EXPECT_EQ(db.decision, mirror(da.decision));
        switch (da.decision) {
            case D::InSync: connected = true; break;
            case D::SourceFull:
            case D::SourceFromBitmap: sync(a, b, da.decision == D::SourceFull, interrupt_after); break;
            case D::TargetFull:
            case D::TargetFromBitmap: sync(b, a, da.decision == D::TargetFull, interrupt_after); break;
            default: break;  // refused: stays disconnected
        }
        return da.decision;
    }
    bool same_data() const { return a.data == b.data; }

private:
    void sync(Node& src, Node& tgt, bool full, size_t interrupt_after) {
        // The source merges the target's bitmap (or marks everything), then sends block by block.
        if (full)
            for (uint64_t i = 0; i < kBlocks; ++i) src.dirty.insert(i);
        src.dirty.insert(tgt.dirty.begin(), tgt.dirty.end());
        connected = true;
        tgt.disk = Disk::Inconsistent;
        last_sync_blocks = 0;
        for (auto it = src.dirty.begin(); it != src.dirty.end();) {
            if (last_sync_blocks == interrupt_after) {
                disconnect();
                return;
            }
            tgt.data[*it] = src.data[*it];
            tgt.dirty.erase(*it);
            it = src.dirty.erase(it);
            ++last_sync_blocks;
        }
        src.gen = on_sync_finished_source(src.gen);
        tgt.gen = on_sync_finished_target(tgt.gen, src.gen);
        tgt.disk = Disk::UpToDate;
        tgt.dirty.clear();
        src.crashed = tgt.crashed = false;
    }
    uint64_t fresh() { return ++next_; }
    uint64_t next_;
};

// Both created, A forced, full sync; A Primary, connected, data in sync.
void initial_sync(Sim& s) {
    ASSERT_EQ(s.connect(), D::NoUpToDate);
    s.force_primary(s.a);
    s.a.data[0] = 42;
    ASSERT_EQ(s.connect(), D::SourceFull);
    ASSERT_EQ(s.last_sync_blocks, Sim::kBlocks);
    ASSERT_TRUE(s.same_data());
    ASSERT_EQ(s.a.gen, s.b.gen);
    ASSERT_EQ(s.b.disk, Disk::UpToDate);
}

TEST(GenIdScenario, PrimaryWritesWhileDisconnectedThenResyncsFromTheBitmap) {
    Sim s(0x1000);
    initial_sync(s);
    s.write(s.a, 1, 10);  // replicated
    EXPECT_TRUE(s.same_data());
    s.disconnect();
    s.write(s.a, 3, 30);
    s.write(s.a, 5, 50);
    s.write(s.a, 3, 31);
    EXPECT_EQ(s.connect(), D::SourceFromBitmap);
    EXPECT_EQ(s.last_sync_blocks, 2u);  // blocks 3 and 5, not the disk
    EXPECT_TRUE(s.same_data());
    EXPECT_EQ(s.a.gen, s.b.gen);
    // Again, with nothing written while apart: nothing to copy.
    s.disconnect();
    EXPECT_EQ(s.connect(), D::SourceFromBitmap);
    EXPECT_EQ(s.last_sync_blocks, 0u);
    s.disconnect();
    s.demote(s.a);
    EXPECT_EQ(s.connect(), D::SourceFromBitmap);
    s.disconnect();  // both Secondary: no new generation
    EXPECT_EQ(s.connect(), D::InSync);
}

TEST(GenIdScenario, BothPromotedWhileDisconnectedIsSplitBrain) {
    Sim s(0x2000);
    initial_sync(s);
    s.disconnect();
    s.promote(s.b);
    s.write(s.a, 2, 20);
    s.write(s.b, 2, 21);
    EXPECT_EQ(s.connect(), D::SplitBrain);  // both Primary
    s.demote(s.a);
    s.demote(s.b);
    EXPECT_EQ(s.connect(), D::SplitBrain);  // both moved on from the same generation
    EXPECT_FALSE(s.connected);
    // Resolved by discarding B's changes: B's metadata is recreated.
    s.b.gen = GenIds{JC};
    s.b.disk = Disk::Inconsistent;
    s.b.dirty.clear();
    EXPECT_EQ(s.connect(), D::SourceFull);
    EXPECT_TRUE(s.same_data());
    EXPECT_EQ(s.b.data[2], 20);
}

TEST(GenIdScenario, FailoverMakesTheOldPrimaryATarget) {
    Sim s(0x3000);
    initial_sync(s);
    s.crash_during_write(s.a, 7, 70);  // reached A's disk only
    s.promote(s.b);
    s.write(s.b, 2, 22);
    s.write(s.b, 9, 99);
    s.restart(s.a);
    EXPECT_EQ(s.connect(), D::TargetFromBitmap);
    EXPECT_EQ(s.last_sync_blocks, 3u);  // 2 and 9 from B's bitmap, 7 from A's activity log
    EXPECT_TRUE(s.same_data());
    EXPECT_EQ(s.a.data[7], 0);  // A's unacknowledged write is gone: B's data wins
    EXPECT_EQ(s.a.gen, s.b.gen);
    // And back: B Primary, connected, A Secondary.
    s.write(s.b, 4, 44);
    EXPECT_TRUE(s.same_data());
}

TEST(GenIdScenario, CrashedPrimaryWithoutFailoverSendsItsActivityLog) {
    Sim s(0x4000);
    initial_sync(s);
    s.crash_during_write(s.a, 9, 90);
    s.restart(s.a);
    EXPECT_EQ(s.connect(), D::SourceFromBitmap);
    EXPECT_EQ(s.last_sync_blocks, 1u);
    EXPECT_TRUE(s.same_data());
    EXPECT_EQ(s.b.data[9], 90);
}

TEST(GenIdScenario, InterruptedResyncResumes) {
    Sim s(0x5000);
    initial_sync(s);
    s.disconnect();
    for (uint64_t i = 1; i <= 8; ++i) s.write(s.a, i, static_cast<int>(100 + i));
    EXPECT_EQ(s.connect(3), D::SourceFromBitmap);  // the link fails after 3 blocks
    EXPECT_FALSE(s.connected);
    EXPECT_EQ(s.b.disk, Disk::Inconsistent);
    s.write(s.a, 12, 112);
    EXPECT_EQ(s.connect(), D::SourceFromBitmap);
    EXPECT_EQ(s.last_sync_blocks, 6u);  // the 5 left and block 12
    EXPECT_TRUE(s.same_data());
    EXPECT_EQ(s.b.disk, Disk::UpToDate);
}

TEST(GenIdScenario, InterruptedFirstSyncRestartsFull) {
    Sim s(0x6000);
    ASSERT_EQ(s.connect(), D::NoUpToDate);
    s.force_primary(s.a);
    EXPECT_EQ(s.connect(5), D::SourceFull);
    EXPECT_FALSE(s.connected);
    EXPECT_EQ(s.connect(), D::SourceFull);  // B is still just created
    EXPECT_TRUE(s.same_data());
}

TEST(GenIdScenario, UnrelatedDataIsRefused) {
    Sim one(0x7000), two(0x8000);
    initial_sync(one);
    initial_sync(two);
    for (bool primary : {false, true}) {
        NodeView a = Sim::view(one.a);
        a.role = primary ? P : S;
        const Decision d = decide(a, Sim::view(two.b));
        EXPECT_EQ(d.decision, D::Unrelated) << d.reason;
        EXPECT_THAT(d.reason, HasSubstr("unrelated data"));
    }
}

}  // namespace
}  // namespace duet::replication
