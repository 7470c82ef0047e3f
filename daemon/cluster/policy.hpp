// Placement policy: a pure function. From what this node and the peer report about one group, it
// decides what this node does next. Both nodes run it on the same inputs (seen from each side), so
// they agree where a group belongs; and a node starts a group only when the peer is dead, or has
// acknowledged its claim while holding nothing: two live nodes never both run a group.
//
// The handshake: a claim carries a fresh id; the peer acknowledges that id only while it holds
// nothing of the group and is not claiming it, and from then on does not claim it itself while that
// claim stands. A node starts only on an acknowledgement of its current claim. With reports applied
// in order, two live nodes can then never both start the group.
//
// Where a group belongs (both nodes up): nodes that may run it are those that have not failed it,
// are not in standby for it and not in maintenance. If both may: the node that holds it keeps it
// (unless auto_failback and it is not the home node), else the home node. If one may: that one.
// Peer dead: this node, unless it failed the group or the group was blocked.
#pragma once

#include <cstdint>
#include <string>

#include "proto/cluster_state.hpp"

namespace duet::cluster {

enum class PeerLiveness { Unknown, Up, Dead };

struct GroupView {
    bool home_is_me = false;
    bool auto_failback = false;
    // This node.
    proto::GroupState mine = proto::GroupState::Stopped;
    uint32_t my_claim = 0;  // id of my current claim (when Claiming)
    uint32_t my_ack = 0;    // id of the peer's claim I acknowledge in my reports (0: none)
    bool my_standby = false;
    bool maintenance = false;
    // The peer, from its latest heartbeat (ignored unless peer == Up; `peer_known` false before any).
    PeerLiveness peer = PeerLiveness::Unknown;
    bool peer_known = false;
    proto::GroupState theirs = proto::GroupState::Stopped;
    bool peer_standby = false;
    bool peer_maintenance = false;
    uint32_t peer_claim = 0;  // id of the peer's current claim
    uint32_t peer_ack = 0;    // id of my claim the peer acknowledges
    // The last state the peer reported before it died (a Blocked group stays blocked).
    proto::GroupState theirs_last = proto::GroupState::Stopped;
};

enum class Decision {
    Nothing,
    Claim,     // announce the intent to start; wait for the peer's acknowledgement
    Start,     // start the chain now
    Stop,      // stop the chain: it belongs to the peer
    Withdraw,  // drop our claim (back to stopped)
};
const char* to_string(Decision d);

enum class Placement { Here, There, Nowhere };
Placement placement(const GroupView& v);
Decision decide(const GroupView& v);

// The id of the peer's claim this node acknowledges (0: none): it holds nothing of the group and is
// not claiming it. If both claim, the node the group does not belong to acknowledges, and decide()
// tells it to withdraw; apply decide() first, then ask this.
uint32_t acknowledge_claim(const GroupView& v);

}  // namespace duet::cluster
