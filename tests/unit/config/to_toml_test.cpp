// to_toml(): the effective configuration as duet.toml, read back to the same model.
#include "helpers.hpp"

#include <functional>

namespace duet::config::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Prints, reads back, finalizes: no message, same settings.
void expect_round_trip(const Config& c) {
    std::string text = to_toml(c, true);
    Parsed back;
    parse_toml(text, "printed.toml", back.cfg, back.diag);
    if (!back.cfg.auth.key_file.empty()) back.cfg.auth.secret = c.auth.secret;  // as load() reads it
    finalize(back.cfg, back.diag);
    EXPECT_THAT(back.lines(), IsEmpty()) << text;
    EXPECT_TRUE(same_settings(c, back.cfg)) << text << "\n---\n" << to_toml(back.cfg, true);
}

TEST(ToToml, RoundTripFromTheSeeds) {
    for (const char* seed : {"samba", "ftp"}) {
        std::string dir = source_dir() + "/tests/fixtures/seeds/" + std::string(seed) + "/";
        auto p = legacy(read_text(dir + "ha.cf"), read_text(dir + "authkeys"), read_text(dir + "haresources"));
        ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
        expect_round_trip(p.cfg);
    }
}

TEST(ToToml, RoundTripFromEveryLegacyPathKind) {
    auto p = legacy("cluster lab\nnode a\nnode b\nkeepalive 500ms\ndeadtime 2.5\nwarntime 1\ninitdead 5\n"
                    "bcast eth1 eth2\nucast eth3 198.51.100.2\nmcast eth0 239.0.0.10 694 3 1\n"
                    "mcast6 eth0 ff02::694 700 1 0\nudpport 695\nauto_failback off\n",
                    "auth 1\n1 md5 \"quoted\\ secret\"\n",
                    "a 198.51.100.20/24/eth0 2001:db8::1/64 IPaddr::2001:db8::2 Filesystem::/dev/drbd0::/data::ext3 \\\n samba\n"
                    "b proftpd\n");
    ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
    expect_round_trip(p.cfg);
}

TEST(ToToml, RoundTripFromTheExample) {
    auto p = toml(read_text(source_dir() + "/etc/duet.toml"));
    p.cfg.auth.secret = "read from the key file";
    finalize(p.cfg, p.diag);
    ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
    expect_round_trip(p.cfg);
}

TEST(ToToml, StringsAreEscaped) {
    auto p = toml(toml_base("[[group]]\nname = \"quote\\\" back\\\\slash tab\\t ünï €\"\nhome = \"alpha\"\nresources = [\"MailTo::root::a \\\"b\\\"\"]\n"));
    p.cfg.auth.secret = "quote\" back\\slash tab\t ünï \u20ac";
    finalize(p.cfg, p.diag);
    ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
    expect_round_trip(p.cfg);
}

TEST(ToToml, SecretsAreHiddenUnlessAsked) {
    auto p = legacy(kHacf);
    std::string shown = to_toml(p.cfg, true);
    std::string hidden = to_toml(p.cfg);
    EXPECT_THAT(hidden, HasSubstr("key = \"<hidden>\"\n"));
    EXPECT_THAT(hidden, Not(HasSubstr("s3cret-s3cret")));
    EXPECT_THAT(shown, HasSubstr("key = \"s3cret-s3cret\"\n"));
    EXPECT_THAT(shown, HasSubstr("# authkeys method sha1"));
}

TEST(ToToml, KeyFileIsPrintedInsteadOfTheSecret) {
    auto p = toml(toml_base());
    p.cfg.auth.secret.clear();
    p.cfg.auth.key_file = "/etc/duet/authkey";
    std::string out = to_toml(p.cfg, true);
    EXPECT_THAT(out, HasSubstr("key_file = \"/etc/duet/authkey\"\n"));
    EXPECT_THAT(out, Not(HasSubstr("key = ")));
}

TEST(ToToml, DurationsAndLayout) {
    auto p = legacy(kHacf + "udpport 700\n");
    p.cfg.timings.keepalive = std::chrono::milliseconds(500);
    std::string out = to_toml(p.cfg);
    EXPECT_THAT(out, HasSubstr("[timings]\nkeepalive = \"500ms\"\nwarntime = \"10s\"\ndeadtime = \"30s\"\ninitdead = \"60s\"\n"));
    EXPECT_THAT(out, HasSubstr("cluster = \"alpha+beta\"\nnodes = [\"alpha\", \"beta\"]\nauto_failback = false\nport = 700\n"));
    EXPECT_THAT(out, HasSubstr("[[path]]\ntype = \"mcast\"\ninterface = \"eth0\"\ngroup = \"239.0.0.10\"\nport = 694\nttl = 1\nloop = false\n"));
    EXPECT_THAT(out, HasSubstr("# Read from: ha.cf authkeys haresources\n"));
}

TEST(SameSettings, NoticesEveryDifference) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 k\n", "alpha samba Filesystem::/dev/x::/d\n");
    ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
    const Config base = p.cfg;
    EXPECT_TRUE(same_settings(base, base));
    std::vector<std::function<void(Config&)>> changes = {
        [](Config& c) { c.cluster = "x"; },
        [](Config& c) { c.nodes[1] = "gamma"; },
        [](Config& c) { c.timings.keepalive += std::chrono::milliseconds(1); },
        [](Config& c) { c.timings.warntime += std::chrono::milliseconds(1); },
        [](Config& c) { c.timings.deadtime += std::chrono::milliseconds(1); },
        [](Config& c) { c.timings.initdead += std::chrono::milliseconds(1); },
        [](Config& c) { c.udpport = 1; },
        [](Config& c) { c.paths[0].port = 1; },
        [](Config& c) { c.paths[0].ttl = 2; },
        [](Config& c) { c.paths[0].loop = true; },
        [](Config& c) { c.paths[0].interface = "eth9"; },
        [](Config& c) { c.paths[0].address = "239.0.0.11"; },
        [](Config& c) { c.paths[0].kind = PathKind::Bcast; },
        [](Config& c) { c.paths.push_back(c.paths[0]); },
        [](Config& c) { c.auto_failback = true; },
        [](Config& c) { c.auth.secret = "other"; },
        [](Config& c) { c.auth.key_file = "/k"; },
        [](Config& c) { c.groups[0].name = "n"; },
        [](Config& c) { c.groups[0].home_node = "beta"; },
        [](Config& c) { c.groups[0].resources[1].args[1] = "/e"; },
        [](Config& c) { c.groups[0].resources[1].agent = "X"; },
        [](Config& c) { c.groups[0].resources.pop_back(); },
        [](Config& c) { c.groups.clear(); },
        [](Config& c) { c.socket_path = "/s"; },
        [](Config& c) { c.socket_group = "g"; },
        [](Config& c) { c.state_dir = "/d"; },
    };
    for (size_t i = 0; i < changes.size(); ++i) {
        Config c = base;
        changes[i](c);
        EXPECT_FALSE(same_settings(base, c)) << "change " << i;
    }
    Config informative = base;
    informative.auth.method = "md5";
    informative.sources.clear();
    informative.paths[0].origin = Origin{"elsewhere", 9};
    EXPECT_TRUE(same_settings(base, informative));
}

}  // namespace
}  // namespace duet::config::test
