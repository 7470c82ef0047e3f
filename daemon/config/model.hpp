// The one configuration model. Both readers (duet.toml and Heartbeat's ha.cf + authkeys +
// haresources) produce it; everything else in the daemon reads only this.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::config {

using Millis = std::chrono::milliseconds;

// Where a setting came from, for messages: "ha.cf:12".
struct Origin {
    std::string file;
    int line = 0;
    // The directive or key that set the value, as messages name it: "deadtime", "mcast",
    // "[timings] deadtime", "[[path]]". Empty for whole-file origins.
    std::string key;
    int column = 0;  // TOML syntax errors only
    std::string str() const {
        if (line <= 0) return file;
        return file + ":" + std::to_string(line) + (column > 0 ? ":" + std::to_string(column) : std::string());
    }
    bool set() const { return !file.empty(); }  // false: a built-in default
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

// Where each option of a resource or group was set, by key ("monitor_interval", "name"); for
// messages only. A key that is absent was not written.
using KeyOrigins = std::map<std::string, Origin>;

// The timeouts and monitor interval of resources that do not set their own (duet.toml [resources]).
struct ResourceDefaults {
    Millis start_timeout{60000};
    Millis stop_timeout{60000};
    Millis monitor_timeout{20000};
    Millis monitor_interval{10000};
};

// What happens when resources fail (duet.toml [policy]). A monitor failure restarts the group in
// place (stop in reverse order, start in order) on the same node; after migration_threshold
// failures on a node, the group moves to the peer. A stop that fails stop_retries + 1 times marks
// the group blocked (Block: it is never started on the other node, and an alert is sent) or
// reboots this node (Reboot, as Heartbeat did) so that the peer can take the group over.
struct Policy {
    int migration_threshold = 3;
    enum class OnStopFailure { Block, Reboot } on_stop_failure = OnStopFailure::Block;
    int stop_retries = 2;
    Millis failure_timeout{0};  // 0: failures never expire by themselves; `hactl cleanup` clears them
};

// How MailTo resources send their mail (duet.toml [mail]).
struct Mail {
    std::string relay = "localhost:25";  // SMTP relay: host[:port] or [IPv6][:port] (port 25 when absent)
    std::string from;                    // empty: duet@<node> (the sending node's name)
    bool starttls = true;                // use STARTTLS when the relay offers it
    bool tls_verify = false;             // verify the relay's certificate; then never send unencrypted
};

// One resource of a chain: "Filesystem::/dev/drbd0::/data::ext3" -> {Filesystem, [/dev/drbd0, /data, ext3]}.
// A bare IP address "198.51.100.20" is {IPaddr, [198.51.100.20]}. duet.toml may also give a
// resource as a table, with named OCF parameters and its own timeouts.
struct Resource {
    std::string agent;
    std::vector<std::string> args;
    std::map<std::string, std::string> params;  // named agent parameters (override positional args)
    // Unset: the value in Config::resource_defaults.
    std::optional<Millis> start_timeout, stop_timeout, monitor_timeout, monitor_interval;
    std::optional<bool> monitor;  // false: this resource is never monitored (unset: it is)
    Origin origin;
    KeyOrigins key_origins;  // where each option above was set: "params", "start_timeout", ...
    std::string str() const;  // back to haresources form (agent and args only)
};

// One haresources line: the home node and an ordered chain of resources.
struct Group {
    std::string name;  // defaults to the first resource's text (Heartbeat's convention)
    std::string home_node;
    std::vector<Resource> resources;
    std::optional<bool> auto_failback;                     // unset: Config::auto_failback
    std::optional<int> migration_threshold;                // unset: Config::policy
    std::optional<Policy::OnStopFailure> on_stop_failure;  // unset: Config::policy
    Origin origin;
    KeyOrigins key_origins;  // "name" (absent when the name is the default), "auto_failback", ...
};

struct AuthKey {
    std::string method;  // "sha1", "md5", "hmac-sha256" (informative: packets always use HMAC-SHA256)
    std::string secret;  // key material for HMAC-SHA256 (never printed)
    std::string key_file;  // duet.toml [auth] key_file: load() reads `secret` from it (root, 0600)
    Origin origin;
};

// One replicated disk (duet.toml [replica.NAME], or a drbd.conf resource). Duet's engine mirrors
// `disk` on both nodes and serves the copy on the Primary at `device`.
struct ReplicaNode {
    std::string node;        // node name (lower case), one of Config::nodes
    std::string address;     // replication address on that node: IPv4 or IPv6 literal (no brackets)
    uint16_t port = 7788;
    std::string disk;        // backing block device or file on that node (may differ per node)
    std::string meta_disk;   // "internal" or a path (external metadata); finalize() fills it from Replica::meta_disk
    Origin origin;           // the node's table or `on` section
    KeyOrigins key_origins;  // "address", "disk", "meta_disk": where each was set
};

struct Replica {
    std::string name;                      // "r0": letters, digits, '_', '.', '-'
    std::string device;                    // finalize() defaults it to "/dev/duet/NAME"; any path, e.g. "/dev/drbd0"
    char protocol = 'C';                   // 'A', 'B' or 'C'
    // The link's shared secret (never printed unless asked). When none is given (no secret,
    // secret_file or shared-secret), finalize() copies the cluster's auth secret (authkeys or
    // [auth]) here and sets secret_from_auth, so the link is always authenticated.
    std::string secret;
    std::string secret_file;               // duet.toml secret_file: load() reads `secret` from it (root, 0600)
    bool secret_from_auth = false;         // `secret` is the cluster's (to_toml() prints none)
    bool encrypt = false;                  // encrypt the replication link
    uint64_t resync_rate = 0;              // bytes per second; 0: unthrottled
    std::string verify_alg;                // online-verify digest (kVerifyAlgorithms); empty: none chosen
    std::string meta_disk = "internal";    // the nodes' default
    std::vector<ReplicaNode> nodes;        // after finalize(): exactly two, in Config::nodes order
    Origin origin;                         // [replica.NAME] or `resource NAME`
    // Where each setting was written, by field name ("device", "protocol", "secret", "secret_file",
    // "encrypt", "resync_rate", "verify_alg", "meta_disk"); the key names the directive.
    KeyOrigins key_origins;
    const ReplicaNode* on(const std::string& node) const {
        for (const auto& n : nodes) if (n.node == node) return &n;
        return nullptr;
    }
};

// The digests a replica may verify with (duet.toml verify, drbd.conf verify-alg).
inline constexpr const char* kVerifyAlgorithms[] = {"md5", "sha1", "sha256", "sha384", "sha512"};
inline constexpr uint16_t kReplicaPort = 7788;  // DRBD's customary port, the default

// Which syntax the main file used; finalize() names directives accordingly.
enum class Syntax { Toml, Heartbeat };

// Where the single-valued settings came from (Origin::set() is false for built-in defaults).
struct Origins {
    Origin main;  // the main file (duet.toml or ha.cf), line 0
    Origin cluster, udpport, keepalive, warntime, deadtime, initdead;
    std::vector<Origin> nodes;  // one per Config::nodes entry, same order
    KeyOrigins keys;  // the [resources], [policy] and [mail] settings, by key: "[policy] stop_retries"
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
    std::vector<Replica> replicas;      // [replica.NAME] or drbd.conf resources; finalize() sorts them by name
    ResourceDefaults resource_defaults;
    Policy policy;
    Mail mail;
    std::string socket_path = "/run/duet/duetd.sock";
    std::string socket_group = "haclient";
    std::string state_dir = "/var/lib/duet";
    std::vector<std::string> sources;  // files that were read, in order
    Syntax syntax = Syntax::Toml;
    Origins origins;
};

// Node names are case-insensitive (as in Heartbeat): the readers store them in lower case.
inline constexpr size_t kNodeNameMax = 64;  // = proto::kNodeNameMax

// True when both describe the same cluster: every setting equal (an option left unset differs
// from one set to its default value), ignoring origins, sources, syntax and the informative
// AuthKey::method. With a key_file, the file name is compared, not the
// secret read from it. ttl and loop are compared for mcast paths only.
bool same_settings(const Config& a, const Config& b);

// Which files to read.
struct Source {
    std::optional<std::string> toml_path;  // duet.toml
    std::optional<std::string> ha_dir;     // directory holding ha.cf, authkeys, haresources (and drbd.conf)
    // With ha_dir only: the drbd.conf read when ha_dir has none (skipped when absent or empty).
    std::string drbd_conf_fallback = "/etc/drbd.conf";
};

// Parsers that work on text (used by the fuzzers and tests). `file` names the text in messages.
// They add to `diag` and fill `cfg`; they never throw on bad input.
void parse_toml(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);
void parse_hacf(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);
void parse_authkeys(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);
void parse_haresources(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag);

// drbd.conf (DRBD 8.3/8.4 syntax; docs/configuration.md): its resources become Config::replicas.
// Host names in `on` sections are node names; parse ha.cf first so that finalize() can match them.
// `include` patterns are resolved relative to the including file's directory and passed, absolute,
// to `include`, which returns the matching files in name order (empty when none matches; it adds
// its own errors). Without an include reader, every include is an error.
struct IncludedFile {
    std::string path;
    std::string text;
};
using IncludeReader = std::function<std::vector<IncludedFile>(const std::string& pattern, const Origin& at, Diagnostics& diag)>;
void parse_drbdconf(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag,
                    const IncludeReader& include = {});
// The include reader load() uses: glob(3) on the pattern, each match read as a configuration file.
std::vector<IncludedFile> read_included_files(const std::string& pattern, const Origin& at, Diagnostics& diag);

// The secret a replica's link is authenticated with: its own, else the cluster's (as finalize()
// fills it in).
inline const std::string& link_secret(const Config& cfg, const Replica& r) {
    return r.secret.empty() && r.secret_file.empty() ? cfg.auth.secret : r.secret;
}

// Checks that span files (two nodes, groups' home nodes known, warntime < deadtime, ...) and fills
// defaults (cluster name). Call after parsing.
void finalize(Config& cfg, Diagnostics& diag);

// Reads the files named by `src` (checking authkeys' owner and mode), parses and finalizes.
Config load(const Source& src, Diagnostics& diag);

// The effective configuration as duet.toml text (secrets shown as "<hidden>").
std::string to_toml(const Config& cfg, bool show_secrets = false);

// `hactl import`: loads `src` and prints it as an equivalent duet.toml, secrets shown, after
// checking that the text reads back to the same settings. nullopt when the configuration has
// errors or does not read back (the reason is in `diag`, with every warning).
std::optional<std::string> import_to_toml(const Source& src, Diagnostics& diag);

// "30", "30s", "500ms", "1.5" (seconds) -> milliseconds. nullopt when malformed or negative.
// Also accepted, as Heartbeat does: "msec", "us"/"usec", "sec", any case, and a leading "."
// (".5"); values are rounded to the nearest millisecond. At most 10^12 seconds.
std::optional<Millis> parse_duration(std::string_view text);

// "2s" when whole seconds, else "500ms" (what to_toml() prints).
std::string format_duration(Millis d);

// A rate in bytes per second: "100M" -> 104857600. A whole number with an optional suffix K, M or
// G (any case; powers of 1024, as DRBD counts). A bare number counts `unit` bytes: 1 in duet.toml,
// 1024 in drbd.conf (DRBD's KiB/s). nullopt when malformed, zero, or above kMaxResyncRate.
inline constexpr uint64_t kMaxResyncRate = uint64_t(1) << 40;  // 1 TiB/s: more than any link
std::optional<uint64_t> parse_rate(std::string_view text, uint64_t unit = 1);
// "100M" when a whole number of MiB, "512K", "3G", else the number of bytes ("1500").
std::string format_rate(uint64_t bytes_per_second);

// A replication address as written: "198.51.100.1:7788", "198.51.100.1" (port kReplicaPort),
// "[2001:db8::1]:7788" or "[2001:db8::1]". The address itself is checked by finalize(); nullopt,
// with what is wrong in `problem`, when the form is not one of these.
struct Endpoint {
    std::string address;
    uint16_t port = kReplicaPort;
};
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& problem);
// "198.51.100.1:7788", "[2001:db8::1]:7788".
std::string format_endpoint(const std::string& address, uint16_t port);

}  // namespace duet::config
