// The cluster-state field carried in every heartbeat (TLV type 1): what each group is doing on the
// sender, and a pending request to the peer (standby for some groups, or clear their failures).
// No I/O. Spec: docs/protocol.md, "Cluster state".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace duet::proto {

inline constexpr uint16_t kTlvClusterState = 1;
inline constexpr size_t kGroupNameMax = 128;
inline constexpr size_t kMaxGroups = 32;

// A group's state on the node that reports it. "Holds" (the group's resources may be active on
// that node): Probing, Starting, Running, Stopping, Blocked.
enum class GroupState : uint8_t {
    Stopped = 0,   // not running here
    Probing = 1,   // duetd (re)started and is checking what runs
    Claiming = 2,  // wants to start it; waits for the peer's acknowledgement
    Starting = 3,
    Running = 4,
    Stopping = 5,
    Failed = 6,    // start failed, or monitor failures reached the threshold: not eligible here
    Blocked = 7,   // a stop failed: state unknown; nobody may start it until `hactl cleanup`
};
const char* to_string(GroupState s);
bool holds(GroupState s);

struct GroupReport {
    std::string name;
    GroupState state = GroupState::Stopped;
    bool standby = false;    // the sender gives this group up while the peer can run it
    uint32_t claim = 0;      // when Claiming: the claim's id (new for every claim)
    uint32_t ack = 0;        // the id of the peer's claim the sender acknowledges (0: none): it holds
                             // nothing of the group and will not claim it while that claim stands
    uint16_t failures = 0;   // monitor failures on the sender since the last cleanup
    bool operator==(const GroupReport&) const = default;
};

// Standby: give these groups up (the sender runs `hactl takeover`). Unstandby: stop giving them up
// (the sender runs `hactl standby`: the newest command wins). Cleanup: clear their failures.
enum class RequestKind : uint8_t { None = 0, Standby = 1, Cleanup = 2, Unstandby = 3 };

// A request to the peer, repeated in every heartbeat until the peer acknowledges its sequence.
struct Request {
    uint32_t seq = 0;  // 0: no request ever
    RequestKind kind = RequestKind::None;
    std::vector<std::string> groups;
    bool operator==(const Request&) const = default;
};

struct ClusterState {
    bool maintenance = false;      // the sender manages nothing (resources left as they are)
    uint32_t acked_request = 0;    // the highest peer request seq the sender has applied
    Request request;
    std::vector<GroupReport> groups;
    bool operator==(const ClusterState&) const = default;
};

std::vector<uint8_t> encode(const ClusterState& s);
// nullopt, with `error` set, for anything malformed; never reads outside `bytes`.
std::optional<ClusterState> decode_cluster_state(std::span<const uint8_t> bytes, std::string& error);

}  // namespace duet::proto
