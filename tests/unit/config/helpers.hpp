// Shared helpers for the config tests: diagnostics as strings, parsing shortcuts, temp dirs.
#pragma once

#include "daemon/config/model.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace duet::config::test {

inline std::vector<std::string> strs(const Diagnostics& d) {
    std::vector<std::string> v;
    for (const auto& i : d.items()) v.push_back(i.str());
    return v;
}

// A diagnostic line that starts with `prefix` ("ha.cf:3: error: keepalive: ") and contains `needle`.
MATCHER_P2(Diag, prefix, needle, std::string("starts with \"") + prefix + "\" and contains \"" + needle + "\"") {
    const std::string& s = arg;
    return s.rfind(prefix, 0) == 0 && s.find(needle) != std::string::npos;
}

struct Parsed {
    Config cfg;
    Diagnostics diag;
    std::vector<std::string> lines() const { return strs(diag); }
};

inline Parsed hacf(const std::string& text) {
    Parsed p;
    parse_hacf(text, "ha.cf", p.cfg, p.diag);
    return p;
}

inline Parsed authkeys(const std::string& text) {
    Parsed p;
    parse_authkeys(text, "authkeys", p.cfg, p.diag);
    return p;
}

inline Parsed haresources(const std::string& text) {
    Parsed p;
    parse_haresources(text, "haresources", p.cfg, p.diag);
    return p;
}

inline Parsed toml(const std::string& text) {
    Parsed p;
    parse_toml(text, "duet.toml", p.cfg, p.diag);
    return p;
}

// The three legacy files parsed and finalized.
inline Parsed legacy(const std::string& ha_cf, const std::string& keys = "auth 1\n1 sha1 s3cret-s3cret\n",
                     const std::string& resources = "") {
    Parsed p;
    parse_hacf(ha_cf, "ha.cf", p.cfg, p.diag);
    parse_authkeys(keys, "authkeys", p.cfg, p.diag);
    parse_haresources(resources, "haresources", p.cfg, p.diag);
    finalize(p.cfg, p.diag);
    return p;
}

// A valid ha.cf to build on.
inline const std::string kHacf =
    "keepalive 2\n"
    "deadtime 30\n"
    "warntime 10\n"
    "initdead 60\n"
    "mcast eth0 239.0.0.10 694 1 0\n"
    "node alpha\n"
    "node beta\n";

// A valid duet.toml to build on; `extra` is appended.
inline std::string toml_base(const std::string& extra = "") {
    return "nodes = [\"alpha\", \"beta\"]\n"
           "[auth]\n"
           "key = \"s3cret-s3cret\"\n"
           "[[path]]\n"
           "type = \"mcast\"\n"
           "interface = \"eth0\"\n"
           "group = \"239.0.0.10\"\n" +
           extra;
}

inline std::string source_dir() { return DUET_SOURCE_DIR; }
std::string read_text(const std::string& path);

// A temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    // Writes `name` with `content`, then sets its mode (and owner when uid >= 0).
    std::string write(const std::string& name, const std::string& content, unsigned mode = 0600, int uid = -1) const;

private:
    std::string path_;
};

}  // namespace duet::config::test
