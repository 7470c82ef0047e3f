// The key and cluster the heartbeat fuzzer decodes with; the seed corpus is sealed with the same, so
// seeds pass the cluster and MAC checks and reach the end of decode().
#pragma once
#include <string_view>

namespace duet::fuzz {
inline constexpr std::string_view kHeartbeatKey = "fuzz-key";
inline constexpr std::string_view kHeartbeatCluster = "fuzz-cluster";
}  // namespace duet::fuzz
