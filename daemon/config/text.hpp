// Private helpers shared by the configuration readers: lines and words, names and addresses,
// and the haresources resource syntax. Not part of the config interface.
#pragma once

#include "daemon/config/model.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::config::detail {

struct Line {
    int number = 0;         // 1-based
    std::string_view text;  // without the line break (and a trailing '\r')
};

// Splits text into lines; a leading UTF-8 byte order mark is skipped.
std::vector<Line> split_lines(std::string_view text);

// Words separated by any character of `delims`.
std::vector<std::string_view> split_words(std::string_view s, std::string_view delims = " \t\f\v");

std::string_view trim(std::string_view s);
std::string lower(std::string_view s);

// nullopt when the line is acceptable text; otherwise what is wrong with it ("a NUL byte",
// "invalid UTF-8", "control character 0x07"). Tabs are allowed.
std::optional<std::string> bad_text(std::string_view s);
bool valid_utf8(std::string_view s);

// For messages: the text quoted, with anything unprintable shown as \xNN, cut after 80 bytes.
std::string quote(std::string_view s);

// Unsigned decimal number with no sign and no spaces, at most `max`.
std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max);

enum class IpFamily { None, V4, V6 };
IpFamily ip_family(std::string_view s);  // literal IPv4 or IPv6 address, else None
bool is_multicast(std::string_view s);   // 224.0.0.0/4 or ff00::/8
// The address as inet_ntop prints it ("2001:db8::20" for "2001:0db8:0::20"); empty when not an IP.
std::string canonical_ip(std::string_view s);
bool is_ipv6_link_local(std::string_view s);

// Host names as node names: 1..kNodeNameMax of [A-Za-z0-9._-], starting with a letter or digit.
bool valid_node_name(std::string_view s);
// Linux interface names: 1..15 bytes of [A-Za-z0-9_.:-], not "." or "..".
bool valid_interface(std::string_view s);
// Resource agent names (they name scripts): [A-Za-z0-9_.-], not starting with '.' or '-'.
bool valid_agent(std::string_view s);
bool absolute_path(std::string_view s);
// OCF parameter names (they become OCF_RESKEY_<name>): [A-Za-z0-9_], not starting with a digit.
bool valid_param_name(std::string_view s);

// The closest of `candidates` to `word` (edit distance at most 2, or equal ignoring case);
// empty when none is close.
std::string suggest(std::string_view word, const std::vector<std::string_view>& candidates);

// One haresources resource word ("Filesystem::/dev/drbd0::/data::ext3", "198.51.100.20/24/eth0").
// Errors name origin.key as the directive. Adds an error and returns nullopt when malformed.
std::optional<Resource> parse_resource(std::string_view word, const Origin& origin, Diagnostics& diag);

// One haresources line split in words (each with its line number): the home node, then the
// resources. Appends a group to cfg.groups, or adds errors. `toml_key` is "" for the haresources
// file (messages then name the word concerned) or the duet.toml key ("haresources").
struct Word {
    std::string_view text;
    int line = 0;
};
void parse_haresources_words(const std::vector<Word>& words, const std::string& file,
                             const std::string& toml_key, Config& cfg, Diagnostics& diag);

}  // namespace duet::config::detail
