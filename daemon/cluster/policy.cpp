#include "daemon/cluster/policy.hpp"

namespace duet::cluster {

using proto::GroupState;
using proto::holds;

const char* to_string(Decision d) {
    switch (d) {
        case Decision::Nothing: return "nothing";
        case Decision::Claim: return "claim";
        case Decision::Start: return "start";
        case Decision::Stop: return "stop";
        case Decision::Withdraw: return "withdraw";
    }
    return "?";
}

Placement placement(const GroupView& v) {
    const bool i_failed = v.mine == GroupState::Failed;
    if (v.peer != PeerLiveness::Up) {
        // Alone (peer dead) or not yet knowing (before initdead): this node may run what it has
        // not failed; a group the peer reported blocked stays stopped until an operator cleans it.
        if (v.peer == PeerLiveness::Unknown) return holds(v.mine) ? Placement::Here : Placement::Nowhere;
        if (i_failed || v.mine == GroupState::Blocked || v.theirs_last == GroupState::Blocked) return Placement::Nowhere;
        return Placement::Here;
    }
    if (!v.peer_known) return holds(v.mine) ? Placement::Here : Placement::Nowhere;
    if (v.theirs == GroupState::Blocked || v.mine == GroupState::Blocked) return Placement::Nowhere;
    // A node in maintenance keeps what it holds and takes nothing.
    if (v.peer_maintenance && holds(v.theirs)) return Placement::There;
    if (v.maintenance && holds(v.mine)) return Placement::Here;
    // Two tiers: a node that can run the group (not failed, not in maintenance), and among those
    // one that prefers to (not in standby). Standby gives a group up to a peer that can take it; it
    // does not switch the service off when the peer cannot.
    const bool me_can = !i_failed && !v.maintenance;
    const bool peer_can = v.theirs != GroupState::Failed && !v.peer_maintenance;
    const bool me_prefers = me_can && !v.my_standby;
    const bool peer_prefers = peer_can && !v.peer_standby;
    auto between_both = [&] {
        // Only a node that runs or starts the group holds it for this choice: one still probing
        // (its duetd just restarted) or stopping a remnant does not take it from a peer that runs
        // it. (For safety, decide() still waits until the peer no longer holds anything.)
        auto keeps = [](GroupState s) { return s == GroupState::Running || s == GroupState::Starting; };
        const bool i_hold = keeps(v.mine);
        const bool they_hold = keeps(v.theirs);
        if (i_hold && !they_hold) return (v.auto_failback && !v.home_is_me) ? Placement::There : Placement::Here;
        if (they_hold && !i_hold) return (v.auto_failback && v.home_is_me) ? Placement::Here : Placement::There;
        return v.home_is_me ? Placement::Here : Placement::There;
    };
    if (me_prefers && peer_prefers) return between_both();
    if (me_prefers) return Placement::Here;
    if (peer_prefers) return Placement::There;
    if (me_can && peer_can) return between_both();
    if (me_can) return Placement::Here;
    if (peer_can) return Placement::There;
    return Placement::Nowhere;
}

Decision decide(const GroupView& v) {
    if (v.maintenance) return Decision::Nothing;
    switch (v.mine) {
        case GroupState::Probing:
        case GroupState::Starting:
        case GroupState::Stopping:
        case GroupState::Blocked:
            return Decision::Nothing;  // an operation runs, or an operator must act
        default:
            break;
    }
    const Placement p = placement(v);
    if (p == Placement::Here) {
        if (v.mine == GroupState::Running) return Decision::Nothing;
        if (v.peer == PeerLiveness::Dead) return Decision::Start;
        if (v.peer != PeerLiveness::Up || !v.peer_known) return Decision::Nothing;
        if (holds(v.theirs)) return v.mine == GroupState::Claiming ? Decision::Nothing : Decision::Claim;
        // A claim of the peer's that I acknowledged stands: I promised not to compete with it.
        const bool promised = v.theirs == GroupState::Claiming && v.my_ack != 0 && v.my_ack == v.peer_claim;
        if (promised) return v.mine == GroupState::Claiming ? Decision::Withdraw : Decision::Nothing;
        if (v.mine == GroupState::Claiming)
            return v.my_claim != 0 && v.peer_ack == v.my_claim ? Decision::Start : Decision::Nothing;
        return Decision::Claim;
    }
    if (v.mine == GroupState::Running) return Decision::Stop;
    if (v.mine == GroupState::Claiming) return Decision::Withdraw;
    return Decision::Nothing;
}

uint32_t acknowledge_claim(const GroupView& v) {
    if (v.peer != PeerLiveness::Up || !v.peer_known) return 0;
    if (v.theirs != GroupState::Claiming || v.peer_claim == 0 || holds(v.mine)) return 0;
    if (v.mine == GroupState::Claiming) return 0;  // decide() withdraws it first when it should yield
    return v.peer_claim;
}

}  // namespace duet::cluster
