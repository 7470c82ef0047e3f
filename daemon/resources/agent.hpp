// Resource agents: which executable a configured resource runs, under which calling convention,
// and with which parameters. See docs/resources.md, "Agent lookup and conventions".
#pragma once

#include "daemon/config/model.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::resources {

// How an agent is called and how its exit codes read (the runner normalises all to OCF codes).
enum class Convention {
    Ocf,        // AGENT ACTION, parameters in OCF_RESKEY_*, OCF exit codes
    Heartbeat,  // SCRIPT ARG... start|stop|status, status read from its output
    Lsb,        // SCRIPT start|stop|status, LSB init-script exit codes
};
std::string_view to_string(Convention c);  // "ocf", "heartbeat", "lsb"

// Where agents are looked for, in this order (see resolve()).
struct SearchPath {
    std::string duet_dir;                     // Duet's own OCF agents (provider "duet"); empty: none
    std::string ocf_root = "/usr/lib/ocf";    // OCF agents: OCF_ROOT/resource.d/PROVIDER/TYPE
    std::vector<std::string> heartbeat_dirs;  // Heartbeat resource.d directories, in order
    std::string initd = "/etc/init.d";        // LSB init scripts; empty: none
    std::chrono::milliseconds metadata_timeout{10000};  // for `AGENT meta-data` at resolve time
};

// A resolved agent: everything the runner needs to call it.
struct Agent {
    std::string name;      // as configured: "IPaddr", "ocf:heartbeat:IPaddr2", "samba"
    std::string type;      // the executable's name: "IPaddr2"
    std::string provider;  // OCF only: "duet", "heartbeat", ...
    std::string path;      // absolute path of the executable
    Convention convention = Convention::Ocf;
    std::string ocf_root;  // OCF only: OCF_ROOT for the agent
    // Positional arguments as configured. The Heartbeat convention passes them on the command
    // line; for OCF agents they have been mapped into `params` by resolve().
    std::vector<std::string> args;
    std::map<std::string, std::string> params;  // OCF only: name -> value, passed as OCF_RESKEY_name
    // For logs: "ocf:duet:IPaddr /usr/lib/duet/agents/IPaddr ip=198.51.100.20/24/eth0",
    // "heartbeat /etc/ha.d/resource.d/drbddisk r0", "lsb /etc/init.d/samba".
    std::string str() const;
};

// Finds the agent of a configured resource and prepares its parameters. In this order:
//  1. SearchPath::duet_dir/NAME                     -> OCF, provider "duet"
//  2. ocf:PROVIDER:TYPE as named, or a bare NAME in OCF_ROOT/resource.d/*/NAME (provider
//     "heartbeat" first, then alphabetical)        -> OCF
//  3. DIR/NAME for DIR in SearchPath::heartbeat_dirs -> Heartbeat
//  4. SearchPath::initd/NAME                        -> LSB
// The first place where a file of that name exists decides; if it is not an executable regular
// file, that is an error (another place is not tried behind the user's back).
// For OCF agents with positional arguments or named parameters, `AGENT meta-data` runs once per
// executable (cached while the file is unchanged) and positional arguments take the names of its
// <parameter> elements in order; named parameters (Resource::params) override them and must be
// parameters the agent declares. Heartbeat scripts take no named parameters; LSB init scripts
// take no arguments at all.
// On failure returns nullopt and sets `error` (naming the resource's origin and every place
// searched). Runs the meta-data action synchronously (bounded by SearchPath::metadata_timeout):
// for start-up and reload, not for the steady state.
std::optional<Agent> resolve(const config::Resource& r, const SearchPath& sp, std::string& error);

// The names of the <parameter> elements inside <parameters> of OCF meta-data, in document order,
// duplicates dropped. Skips comments, CDATA, processing instructions and the DOCTYPE. nullopt and
// `error` on malformed markup or a parameter with no usable name.
std::optional<std::vector<std::string>> parameter_names(std::string_view xml, std::string& error);

}  // namespace duet::resources
