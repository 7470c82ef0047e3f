// hactl replica ...: see replica.cpp's usage text.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::hactl {

// args[0] is "replica". Returns hactl's exit code.
int replica_main(const std::vector<std::string>& args);

// For `hactl status`: the status of every replica engine answering on this node (a JSON array),
// and its short form (one line per replica).
nlohmann::json replica_statuses();
void print_replica_summary(const nlohmann::json& statuses);

// For `hactl events`: the control-socket paths of the engines running on this node.
std::vector<std::string> replica_sockets();

}  // namespace duet::hactl
