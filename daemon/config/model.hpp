// The one configuration model. Both readers (duet.toml and Heartbeat's ha.cf + authkeys +
// haresources) produce it; everything else in the daemon reads only this.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace duet::config {

using Millis = std::chrono::milliseconds;

// Where a setting came from, for messages: "ha.cf:12".
struct Origin {
    std::string file;
    int line = 0;
    std::string str() const { return line > 0 ? file + ":" + std::to_string(line) : file; }
};

// One message about the configuration. Errors make the configuration unusable; warnings do not.
struct Diagnostic {
    enum class Severity { Warning, Error };
    Severity severity = Severity::Error;
    Origin origin;
    std::string directive;  // "deadtime", "[timings] deadtime", ... (may be empty for whole-file errors)
    std::string message;    // what is wrong and what was expected
    // "ha.cf:12: error: deadtime: expected a duration such as 30 or 500ms, got 'x'"
    std::string str() const;
};

class Diagnostics {
public:
    void warn(Origin o, std::string directive, std::string message);
    void error(Origin o, std::string directive, std::string message);
    bool has_errors() const;
    const std::vector<Diagnostic>& items() const { return items_; }
    std::string str() const;  // one line per diagnostic
private:
    std::vector<Diagnostic> items_;
};

enum class PathKind { Mcast, Bcast, Ucast };

// A heartbeat path: every path is sent on and listened on.
struct Path {
    PathKind kind = PathKind::Mcast;
    std::string interface;  // "eth0"; required for bcast and mcast, optional for ucast
    std::string address;    // mcast: group (IPv4 or IPv6); ucast: peer address; bcast: empty
    uint16_t port = 694;
    int ttl = 1;            // mcast only (IPv6: hop limit)
    bool loop = false;      // mcast only
    Origin origin;
    // Stable, human-readable name used in status and logs:
    // "mcast eth0 239.0.0.10:694", "bcast eth1:694", "ucast eth0 198.51.100.2:694"
    std::string name() const;
};

struct Timings {
    Millis keepalive{2000};
    Millis warntime{10000};
    Millis deadtime{30000};
    Millis initdead{60000};
};

// One haresources-style resource: "Filesystem::/dev/drbd0::/data::ext3" -> {Filesystem, [/dev/drbd0, /data, ext3]}.
// A bare IP address "198.51.100.20" is {IPaddr, [198.51.100.20]}.
struct Resource {
    std::string agent;
    std::vector<std::string> args;
    Origin origin;
    std::string str() const;  // back to haresources form
};

// One haresources line: the home node and an ordered chain of resources.
struct Group {
    std::string name;  // defaults to the first resource's text (Heartbeat's convention)
    std::string home_node;
    std::vector<Resource> resources;
    Origin origin;
};

struct AuthKey {
    std::string method;  // "sha1", "md5", "hmac-sha256" (informative: packets always use HMAC-SHA256)
    std::string secret;  // key material for HMAC-SHA256 (never printed)
    Origin origin;
};

struct Config {
    std::string cluster;              // cluster identity; default derived from the two node names
    std::vector<std::string> nodes;   // exactly two
    Timings timings;
    uint16_t udpport = 694;           // default port for paths that do not name one
    std::vector<Path> paths;
    bool auto_failback = false;
    AuthKey auth;
    std::vector<Group> groups;
    std::string socket_path = "/run/duet/duetd.sock";
    std::string socket_group = "haclient";
    std::string state_dir = "/var/lib/duet";
    std::vector<std::string> sources;  // files that were read, in order
};

// Which files to read.
struct Source {
    std::optional<std::string> toml_path;  // duet.toml
    std::optional<std::string> ha_dir;     // directory holding ha.cf, authkeys, haresources
};

// Parsers that work on text (used by the fuzzers and tests). `file` names the text in messages.
// They add to `diag` and fill `cfg`; they never throw on bad input.
void parse_toml(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);
void parse_hacf(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);
void parse_authkeys(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);
void parse_haresources(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);

// Checks that span files (two nodes, groups' home nodes known, warntime < deadtime, ...) and fills
// defaults (cluster name). Call after parsing.
void finalize(Config& cfg, Diagnostics& diag);

// Reads the files named by `src` (checking authkeys' owner and mode), parses and finalizes.
Config load(const Source& src, Diagnostics& diag);

// The effective configuration as duet.toml text (secrets shown as "<hidden>").
std::string to_toml(const Config& cfg, bool show_secrets = false);

// "30", "30s", "500ms", "1.5" (seconds) -> milliseconds. nullopt when malformed or negative.
std::optional<Millis> parse_duration(std::string_view text);

}  // namespace duet::config
