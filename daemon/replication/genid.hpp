// Generation identifiers: which node's data descends from which, decided when two nodes connect,
// and the changes to a node's identifiers as its data moves on. Pure functions, no I/O except
// random_generation(). Rules and table: docs/replication.md, "Generation identifiers".
#pragma once

#include <cstdint>
#include <string>

#include "proto/replication.hpp"

namespace duet::replication {

// The generation a just-created replica has: it holds no data anyone chose yet.
inline constexpr uint64_t kJustCreated = 4;

// What one side brings to the comparison.
struct NodeView {
    proto::repl::GenIds gen;
    proto::repl::Disk disk = proto::repl::Disk::Inconsistent;
    proto::repl::Role role = proto::repl::Role::Secondary;
    bool crashed_primary = false;  // was Primary when it last stopped uncleanly (Superblock::crashed_primary)
};

// Seen from the local node ("Source" = the local node sends data to the peer).
enum class SyncDecision {
    InSync,            // same data: nothing to do
    SourceFromBitmap,  // send the blocks set in the union of both bitmaps
    TargetFromBitmap,  // receive them
    SourceFull,        // send every block
    TargetFull,        // receive every block
    SplitBrain,        // both sides have changes the other lacks (or another conflicting claim): refuse
    Unrelated,         // the data sets share no history: refuse
    NoUpToDate,        // neither side has data to sync from (e.g. both just created): wait for the operator
};
const char* to_string(SyncDecision d);  // "in sync", "source (bitmap)", ...
// The same decision seen from the peer: sources and targets swap, the rest stays.
SyncDecision mirror(SyncDecision d);

struct Decision {
    SyncDecision decision = SyncDecision::NoUpToDate;
    std::string reason;  // for the log and status: which rule, with the generations involved
};

// The decision table (first matching row wins; every row is symmetric, so
// decide(b, a).decision == mirror(decide(a, b).decision) always holds).
Decision decide(const NodeView& local, const NodeView& peer);
// The same without crash information (neither side a crashed Primary).
Decision decide(const proto::repl::GenIds& local_gen, proto::repl::Disk local_disk, proto::repl::Role local_role,
                const proto::repl::GenIds& peer_gen, proto::repl::Disk peer_disk, proto::repl::Role peer_role);

// ---- transitions --------------------------------------------------------------------------

// A new data generation starts: a Primary lost its peer, or was promoted without one. The old
// current becomes the bitmap generation (the bitmap now tracks changes since it) unless the bitmap
// already tracks an older one, in which case the old current is pushed into the history. A
// just-created current is not a data generation and is dropped. `fresh` must not be 0 or
// kJustCreated (std::invalid_argument).
proto::repl::GenIds on_new_current(const proto::repl::GenIds& g, uint64_t fresh);
// The sync source finished a resync: its bitmap generation moves into the history.
proto::repl::GenIds on_sync_finished_source(const proto::repl::GenIds& source);
// The sync target finished: its own identifiers are replaced by the source's, as they are after
// the source's on_sync_finished_source (passing the source's before or after gives the same
// result). Its data now is the source's; its old generations no longer describe it.
proto::repl::GenIds on_sync_finished_target(const proto::repl::GenIds& target, const proto::repl::GenIds& source);

// A fresh random generation identifier (never 0 or kJustCreated).
uint64_t random_generation();

// "C:B:H0:H1" in hex, for logs.
std::string to_string(const proto::repl::GenIds& g);

}  // namespace duet::replication
