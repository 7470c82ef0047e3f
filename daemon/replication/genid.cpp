// Generation identifiers. The table is in docs/replication.md, "Generation identifiers"; the rows
// below are in the same order. Every row tests a condition and its mirror image, so the peer,
// deciding with the arguments swapped, reaches the mirrored decision.
#include "daemon/replication/genid.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <system_error>

namespace duet::replication {

namespace {

using proto::repl::Disk;
using proto::repl::GenIds;
using proto::repl::Role;

std::string h(uint64_t v) {
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(v));
    return buf;
}

bool in_history(const GenIds& g, uint64_t v) { return v != 0 && (g.history[0] == v || g.history[1] == v); }

// Ancestors a node remembers: its bitmap generation and its history.
bool share_ancestor(const GenIds& a, const GenIds& b) {
    const uint64_t as[] = {a.bitmap, a.history[0], a.history[1]};
    const uint64_t bs[] = {b.bitmap, b.history[0], b.history[1]};
    for (uint64_t x : as)
        for (uint64_t y : bs)
            if (x != 0 && x != kJustCreated && x == y) return true;
    return false;
}

bool consistent(Disk d) { return d == Disk::Outdated || d == Disk::Consistent || d == Disk::UpToDate; }

const char* who(bool local) { return local ? "this node" : "the peer"; }

// A sync from `local_is_source`'s side, after the two checks every sync needs: the source has
// consistent data, and the target is not Primary (its data is in use and would be overwritten).
Decision sync(const NodeView& local, const NodeView& peer, bool local_is_source, bool full, const std::string& why) {
    const NodeView& src = local_is_source ? local : peer;
    const NodeView& tgt = local_is_source ? peer : local;
    if (!consistent(src.disk))
        return {SyncDecision::NoUpToDate, why + "; but " + who(local_is_source) + " would be the sync source and its disk is " +
                                              proto::repl::to_string(src.disk) + ": no node has data to sync from"};
    if (tgt.role == Role::Primary)
        return {SyncDecision::SplitBrain,
                why + "; but " + who(!local_is_source) +
                    " would be the sync target and is Primary: its data is in use and older than the other's"};
    SyncDecision d = full ? (local_is_source ? SyncDecision::SourceFull : SyncDecision::TargetFull)
                          : (local_is_source ? SyncDecision::SourceFromBitmap : SyncDecision::TargetFromBitmap);
    return {d, why + ": " + (full ? "full sync" : "resync of the blocks in the bitmaps") + " from " +
                   who(local_is_source) + " to " + who(!local_is_source)};
}

}  // namespace

const char* to_string(SyncDecision d) {
    switch (d) {
        case SyncDecision::InSync: return "in sync";
        case SyncDecision::SourceFromBitmap: return "source (bitmap)";
        case SyncDecision::TargetFromBitmap: return "target (bitmap)";
        case SyncDecision::SourceFull: return "source (full)";
        case SyncDecision::TargetFull: return "target (full)";
        case SyncDecision::SplitBrain: return "split brain";
        case SyncDecision::Unrelated: return "unrelated data";
        case SyncDecision::NoUpToDate: return "no up-to-date data";
    }
    return "unknown";
}

SyncDecision mirror(SyncDecision d) {
    switch (d) {
        case SyncDecision::SourceFromBitmap: return SyncDecision::TargetFromBitmap;
        case SyncDecision::TargetFromBitmap: return SyncDecision::SourceFromBitmap;
        case SyncDecision::SourceFull: return SyncDecision::TargetFull;
        case SyncDecision::TargetFull: return SyncDecision::SourceFull;
        default: return d;
    }
}

Decision decide(const NodeView& local, const NodeView& peer) {
    const GenIds& a = local.gen;
    const GenIds& b = peer.gen;

    // 1. A side without a disk has nothing to compare.
    if (local.disk == Disk::Diskless || peer.disk == Disk::Diskless)
        return {SyncDecision::NoUpToDate,
                std::string(local.disk == Disk::Diskless ? "this node" : "the peer") + " has no disk attached"};
    // 2. One Primary at a time.
    if (local.role == Role::Primary && peer.role == Role::Primary)
        return {SyncDecision::SplitBrain, "both nodes are Primary (generations " + h(a.current) + " and " +
                                              h(b.current) + "): only one may be"};

    // 3-7. Just-created metadata.
    const bool a_new = a.current == kJustCreated;
    const bool b_new = b.current == kJustCreated;
    if (a_new && b_new) {
        const bool au = local.disk == Disk::UpToDate;
        const bool bu = peer.disk == Disk::UpToDate;
        if (au && bu)
            return {SyncDecision::SplitBrain, "both nodes were forced UpToDate on just-created metadata"};
        if (au || bu)
            return sync(local, peer, au, true,
                        std::string("both just created, ") + who(au) + " forced UpToDate (--overwrite-data-of-peer)");
        return {SyncDecision::NoUpToDate,
                "both nodes have just-created metadata: promote one with --overwrite-data-of-peer to start the first "
                "full sync from it"};
    }
    if (a_new || b_new) {
        const NodeView& fresh = a_new ? local : peer;
        const NodeView& other = a_new ? peer : local;
        if (fresh.disk == Disk::UpToDate)
            return {SyncDecision::Unrelated, std::string(who(a_new)) +
                                                 " was forced UpToDate on just-created metadata but " + who(!a_new) +
                                                 " holds data of generation " + h(other.gen.current) +
                                                 ": recreate the metadata of the node whose data is to be discarded"};
        return sync(local, peer, !a_new, true, std::string(who(a_new)) + " has just-created metadata");
    }

    // 8-12. Same generation.
    if (a.current == b.current) {
        const bool ai = !consistent(local.disk);
        const bool bi = !consistent(peer.disk);
        const std::string gen = "same generation " + h(a.current);
        if (ai && bi) return {SyncDecision::NoUpToDate, gen + " but both disks are Inconsistent"};
        if (ai || bi)
            return sync(local, peer, bi, true, gen + " but " + who(ai) + "'s disk is Inconsistent (an interrupted sync)");
        if (local.crashed_primary && peer.crashed_primary)
            return {SyncDecision::SplitBrain, gen + " but both nodes were Primary when they crashed"};
        if (local.crashed_primary || peer.crashed_primary)
            return sync(local, peer, local.crashed_primary, false,
                        gen + ", " + who(local.crashed_primary) +
                            " crashed as Primary (its activity-log extents are in its bitmap)");
        return {SyncDecision::InSync, gen + ": in sync"};
    }

    // 13-14. One side moved on from the other's current generation: its bitmap tracks every change.
    const bool a_ahead = a.bitmap != 0 && a.bitmap == b.current;
    const bool b_ahead = b.bitmap != 0 && b.bitmap == a.current;
    if (a_ahead && b_ahead)
        return {SyncDecision::SplitBrain, "each node's bitmap generation is the other's current (" + h(a.current) +
                                              ", " + h(b.current) + "): conflicting histories"};
    if (a_ahead || b_ahead) {
        const NodeView& behind = a_ahead ? peer : local;
        std::string why = std::string(who(a_ahead)) + " moved on from generation " +
                          h(a_ahead ? b.current : a.current) + " (now " + h(a_ahead ? a.current : b.current) + ")";
        if (behind.crashed_primary) why += ", " + std::string(who(!a_ahead)) + " crashed as Primary there";
        return sync(local, peer, a_ahead, false, why);
    }

    // 15. Both moved on from the same generation: split brain.
    if (a.bitmap != 0 && a.bitmap == b.bitmap)
        return {SyncDecision::SplitBrain, "both nodes moved on from generation " + h(a.bitmap) + " (now " +
                                              h(a.current) + " here, " + h(b.current) +
                                              " on the peer): resolve by discarding one side's changes"};

    // 16-17. One side's current is in the other's history: that side is older; no bitmap covers
    // the difference, so the whole device is copied.
    const bool a_desc = in_history(a, b.current);
    const bool b_desc = in_history(b, a.current);
    if (a_desc && b_desc)
        return {SyncDecision::Unrelated, "each node's current generation is in the other's history (" +
                                             h(a.current) + ", " + h(b.current) + "): conflicting histories"};
    if (a_desc || b_desc)
        return sync(local, peer, a_desc, true,
                    std::string(who(!a_desc)) + "'s generation " + h(a_desc ? b.current : a.current) + " is in " +
                        who(a_desc) + "'s history");

    // 18. A common ancestor, but both changed since: split brain. 19. Nothing in common.
    if (share_ancestor(a, b))
        return {SyncDecision::SplitBrain, "generations " + h(a.current) + " and " + h(b.current) +
                                              " descend from a common ancestor and both changed since"};
    return {SyncDecision::Unrelated, "generations " + to_string(a) + " and " + to_string(b) +
                                         " share no history: these disks hold unrelated data"};
}

Decision decide(const GenIds& local_gen, Disk local_disk, Role local_role, const GenIds& peer_gen, Disk peer_disk,
                Role peer_role) {
    return decide(NodeView{local_gen, local_disk, local_role, false}, NodeView{peer_gen, peer_disk, peer_role, false});
}

GenIds on_new_current(const GenIds& g, uint64_t fresh) {
    if (fresh == 0 || fresh == kJustCreated)
        throw std::invalid_argument("generation: " + h(fresh) + " cannot be a new current generation");
    if (g.current == kJustCreated) return GenIds{fresh, 0, g.history};
    if (g.bitmap == 0) return GenIds{fresh, g.current, g.history};
    // The bitmap already tracks changes since an older generation, which covers these too.
    return GenIds{fresh, g.bitmap, {g.current, g.history[0]}};
}

GenIds on_sync_finished_source(const GenIds& source) {
    if (source.bitmap == 0) return source;
    return GenIds{source.current, 0, {source.bitmap, source.history[0]}};
}

GenIds on_sync_finished_target([[maybe_unused]] const GenIds& target, const GenIds& source) {
    return on_sync_finished_source(source);
}

uint64_t random_generation() {
    uint64_t v = 0;
    while (v == 0 || v == kJustCreated) {
        const ssize_t n = ::getrandom(&v, sizeof v, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n != static_cast<ssize_t>(sizeof v))
            throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "getrandom for a generation id");
    }
    return v;
}

std::string to_string(const GenIds& g) {
    return h(g.current) + ":" + h(g.bitmap) + ":" + h(g.history[0]) + ":" + h(g.history[1]);
}

}  // namespace duet::replication
