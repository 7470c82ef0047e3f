// duet.toml: every key, every type error, unknown keys and syntax errors, each with its line and key.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using std::chrono::milliseconds;

TEST(Toml, EveryKey) {
    auto p = toml(R"(cluster = "duet-lab"
nodes = ["alpha", "Beta"]
auto_failback = true
port = 695
state_dir = "/var/lib/duet-test"
haresources = ["alpha 198.51.100.20 samba"]

[timings]
keepalive = 1
warntime = "5s"
deadtime = "1500ms"
initdead = "1.5s"

[auth]
key = "a secret"

[control]
socket = "/run/duet/test.sock"
group = "wheel"

[[path]]
type = "mcast"
interface = "eth0"
group = "239.0.0.10"
port = 700
ttl = 3
loop = true

[[path]]
type = "ucast"
address = "203.0.113.2"

[[path]]
type = "bcast"
interface = "eth2"

[[group]]
name = "web"
home = "beta"
resources = ["IPaddr::198.51.100.21/24/eth0", "Filesystem::/dev/duet/r0::/data::ext4"]
)");
    EXPECT_THAT(p.lines(), IsEmpty());
    const Config& c = p.cfg;
    EXPECT_EQ(c.syntax, Syntax::Toml);
    EXPECT_EQ(c.cluster, "duet-lab");
    EXPECT_THAT(c.nodes, ElementsAre("alpha", "beta"));
    EXPECT_EQ(c.origins.nodes[1].str(), "duet.toml:2");
    EXPECT_TRUE(c.auto_failback);
    EXPECT_EQ(c.udpport, 695);
    EXPECT_EQ(c.state_dir, "/var/lib/duet-test");
    EXPECT_EQ(c.timings.keepalive, milliseconds(1000));
    EXPECT_EQ(c.timings.warntime, milliseconds(5000));
    EXPECT_EQ(c.timings.deadtime, milliseconds(1500));
    EXPECT_EQ(c.timings.initdead, milliseconds(1500));
    EXPECT_EQ(c.origins.deadtime.str(), "duet.toml:11");
    EXPECT_EQ(c.origins.deadtime.key, "[timings] deadtime");
    EXPECT_EQ(c.auth.secret, "a secret");
    EXPECT_EQ(c.auth.method, "hmac-sha256");
    EXPECT_EQ(c.auth.origin.str(), "duet.toml:15");
    EXPECT_EQ(c.socket_path, "/run/duet/test.sock");
    EXPECT_EQ(c.socket_group, "wheel");
    ASSERT_EQ(c.paths.size(), 3u);
    EXPECT_EQ(c.paths[0].kind, PathKind::Mcast);
    EXPECT_EQ(c.paths[0].interface, "eth0");
    EXPECT_EQ(c.paths[0].address, "239.0.0.10");
    EXPECT_EQ(c.paths[0].port, 700);
    EXPECT_EQ(c.paths[0].ttl, 3);
    EXPECT_TRUE(c.paths[0].loop);
    EXPECT_EQ(c.paths[0].origin.str(), "duet.toml:21");
    EXPECT_EQ(c.paths[1].kind, PathKind::Ucast);
    EXPECT_EQ(c.paths[1].address, "203.0.113.2");
    EXPECT_EQ(c.paths[1].interface, "");
    EXPECT_EQ(c.paths[1].port, 0);  // the top-level port, resolved by finalize()
    EXPECT_EQ(c.paths[2].kind, PathKind::Bcast);
    ASSERT_EQ(c.groups.size(), 2u);
    EXPECT_EQ(c.groups[0].name, "web");
    EXPECT_EQ(c.groups[0].home_node, "beta");
    EXPECT_EQ(c.groups[0].resources[1].agent, "Filesystem");
    EXPECT_THAT(c.groups[0].resources[1].args, ElementsAre("/dev/duet/r0", "/data", "ext4"));
    EXPECT_EQ(c.groups[1].name, "198.51.100.20");
    EXPECT_EQ(c.groups[1].origin.str(), "duet.toml:6");
    EXPECT_THAT(c.sources, ElementsAre("duet.toml"));
}

TEST(Toml, SyntaxErrorHasLineAndColumn) {
    auto p = toml("nodes = [\"a\", \"b\"]\n[timings\nkeepalive = 2\n");
    ASSERT_EQ(p.diag.items().size(), 1u);
    EXPECT_THAT(p.lines()[0], Diag("duet.toml:2:", "error: TOML syntax: "));
    EXPECT_GT(p.diag.items()[0].origin.column, 0);
    auto dup = toml("port = 1\nport = 2\n");
    EXPECT_THAT(dup.lines(), ElementsAre(Diag("duet.toml:2:", "TOML syntax: ")));
}

TEST(Toml, UnknownKeysEverywhere) {
    auto p = toml(R"(nodez = ["a", "b"]
[timings]
deadtmie = 3
[auth]
secret = "x"
[control]
path = "/x"
[[path]]
type = "mcast"
iface = "eth0"
[[group]]
home = "a"
resources = ["samba"]
prio = 1
[extra]
)");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:1: error: nodez: ", "unknown key (did you mean 'nodes'?)"),
                            Diag("duet.toml:3: error: [timings] deadtmie: ", "unknown key in [timings] (did you mean 'deadtime'?)"),
                            Diag("duet.toml:4: error: [auth]: ", "expected key = \"SECRET\" or key_file"),
                            Diag("duet.toml:5: error: [auth] secret: ", "unknown key in [auth]; expected one of: key key_file"),
                            Diag("duet.toml:7: error: [control] path: ", "unknown key in [control]"),
                            Diag("duet.toml:10: error: [[path]] iface: ", "unknown key in [[path]]"),
                            Diag("duet.toml:14: error: [[group]] prio: ", "unknown key in [[group]]"),
                            Diag("duet.toml:15: error: extra: ", "unknown key")));
}

TEST(Toml, TopLevelTypeErrors) {
    auto p = toml(R"(cluster = 3
nodes = "alpha beta"
auto_failback = "yes"
port = "694"
state_dir = "var/lib/duet"
haresources = "alpha samba"
timings = 5
)");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:1: error: cluster: ", "expected a cluster name, got an integer"),
                                       Diag("duet.toml:2: error: nodes: ", "expected an array of two node names"),
                                       Diag("duet.toml:3: error: auto_failback: ", "expected true or false, got a string"),
                                       Diag("duet.toml:4: error: port: ", "expected a UDP port from 1 to 65535, got a string"),
                                       Diag("duet.toml:5: error: state_dir: ", "expected an absolute path (starting with /), got 'var/lib/duet'"),
                                       Diag("duet.toml:6: error: haresources: ", "expected an array of haresources lines"),
                                       Diag("duet.toml:7: error: [timings]: ", "expected a table [timings], got an integer")));
}

TEST(Toml, ValueErrors) {
    auto p = toml("cluster = \"\"\nnodes = [\"alpha\", 2, \"b c\"]\nport = 0\n[[path]]\ntype = \"mcast\"\nport = 70000\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:1: error: cluster: ", "got an empty string"),
                                       Diag("duet.toml:2: error: nodes: ", "expected a node name (a string), got an integer"),
                                       Diag("duet.toml:2: error: nodes: ", "got 'b c'"),
                                       Diag("duet.toml:3: error: port: ", "got 0"),
                                       Diag("duet.toml:6: error: [[path]] port: ", "got 70000")));
    EXPECT_THAT(p.cfg.nodes, ElementsAre("alpha"));
    EXPECT_THAT(p.cfg.paths, IsEmpty());
}

TEST(Toml, Durations) {
    auto p = toml("[timings]\nkeepalive = \"x\"\nwarntime = -1\ndeadtime = 1.5\ninitdead = true\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:2: error: [timings] keepalive: ", "expected a duration: integer seconds, or a string such as \"2s\", \"500ms\" or \"1.5s\", got 'x'"),
                            Diag("duet.toml:3: error: [timings] warntime: ", "got -1"),
                            Diag("duet.toml:4: error: [timings] deadtime: ", "got a floating-point number"),
                            Diag("duet.toml:5: error: [timings] initdead: ", "got a boolean")));
}

TEST(Toml, AuthKeyOrKeyFile) {
    auto file = toml("[auth]\nkey_file = \"/etc/duet/authkey\"\n");
    EXPECT_THAT(file.lines(), IsEmpty());
    EXPECT_EQ(file.cfg.auth.key_file, "/etc/duet/authkey");
    EXPECT_TRUE(file.cfg.auth.secret.empty());
    EXPECT_EQ(file.cfg.auth.origin.str(), "duet.toml:2");
    auto both = toml("[auth]\nkey = \"k\"\nkey_file = \"/etc/duet/authkey\"\n");
    EXPECT_THAT(both.lines(), ElementsAre(Diag("duet.toml:3: error: [auth]: ", "give key or key_file, not both (key is at duet.toml:2)")));
    auto bad = toml("[auth]\nkey = \"\"\n");
    EXPECT_THAT(bad.lines(), ElementsAre(Diag("duet.toml:2: error: [auth] key: ", "got an empty string")));
    auto rel = toml("[auth]\nkey_file = \"authkey\"\n");
    EXPECT_THAT(rel.lines(), ElementsAre(Diag("duet.toml:2: error: [auth] key_file: ", "expected an absolute path")));
    auto wrong = toml("auth = \"secret\"\n");
    EXPECT_THAT(wrong.lines(), ElementsAre(Diag("duet.toml:1: error: [auth]: ", "expected a table [auth], got a string")));
}

TEST(Toml, Control) {
    auto p = toml("[control]\nsocket = \"run/duet.sock\"\ngroup = \"ha client\"\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:2: error: [control] socket: ", "expected an absolute path"),
                                       Diag("duet.toml:3: error: [control] group: ", "expected a group name (such as haclient), got 'ha client'")));
    auto longp = toml("[control]\nsocket = \"/" + std::string(107, 's') + "\"\n");
    EXPECT_THAT(longp.lines(), ElementsAre(Diag("duet.toml:2: error: [control] socket: ", "a Unix socket path holds at most 107")));
    EXPECT_EQ(longp.cfg.socket_path, "/run/duet/duetd.sock");
}

TEST(Toml, PathKeysBelongToTheirType) {
    auto p = toml(R"([[path]]
interface = "eth0"
[[path]]
type = "serial"
[[path]]
type = "ucast"
group = "239.0.0.10"
[[path]]
type = "mcast"
address = "198.51.100.2"
[[path]]
type = "bcast"
interface = "eth1"
ttl = 2
loop = false
[[path]]
type = "mcast"
ttl = 0
[[path]]
type = 1
)");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:1: error: [[path]]: ", "missing type = \"mcast\", \"bcast\" or \"ucast\""),
                            Diag("duet.toml:4: error: [[path]] type: ", "expected \"mcast\", \"bcast\" or \"ucast\", got 'serial'"),
                            Diag("duet.toml:7: error: [[path]] group: ", "only mcast paths have a group"),
                            Diag("duet.toml:10: error: [[path]] address: ", "only ucast paths have an address"),
                            Diag("duet.toml:14: error: [[path]] ttl: ", "only mcast paths have a ttl; this path is bcast"),
                            Diag("duet.toml:15: error: [[path]] loop: ", "only mcast paths have loop"),
                            Diag("duet.toml:18: error: [[path]] ttl: ", "expected a TTL (hop limit) from 1 to 255, got 0"),
                            Diag("duet.toml:20: error: [[path]] type: ", "got an integer")));
    EXPECT_THAT(p.cfg.paths, IsEmpty());
}

TEST(Toml, PathMustBeAnArrayOfTables) {
    auto p = toml("[path]\ntype = \"mcast\"\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:1: error: [[path]]: ", "expected [[path]] tables (an array of tables, one per path), got a table [path]")));
    auto g = toml("group = [1, 2]\n");
    EXPECT_THAT(g.lines(), ElementsAre(Diag("duet.toml:1: error: [[group]]: ", "got an array")));
}

TEST(Toml, Groups) {
    auto p = toml(R"([[group]]
home = "alpha"
resources = ["198.51.100.20/24/eth0", "samba"]
[[group]]
name = "x"
[[group]]
home = "alpha"
resources = []
[[group]]
home = "-alpha"
resources = ["Filesystem::::/data", 3, "bell\u0007"]
[[group]]
home = 4
resources = "samba"
)");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:4: error: [[group]]: ", "missing home = \"NODE\""),
                            Diag("duet.toml:4: error: [[group]]: ", "missing resources = [...]"),
                            Diag("duet.toml:8: error: [[group]] resources: ", "expected at least one resource, got an empty array"),
                            Diag("duet.toml:10: error: [[group]] home: ", "expected a node name, got '-alpha'"),
                            Diag("duet.toml:11: error: [[group]] resources: ", "argument 1 is empty"),
                            Diag("duet.toml:11: error: [[group]] resources: ", "got an integer"),
                            Diag("duet.toml:11: error: [[group]] resources: ", "contains control character 0x07"),
                            Diag("duet.toml:13: error: [[group]] home: ", "expected the home node's name, got an integer"),
                            Diag("duet.toml:14: error: [[group]] resources: ", "expected an array of resources")));
    ASSERT_EQ(p.cfg.groups.size(), 1u);
    EXPECT_EQ(p.cfg.groups[0].name, "198.51.100.20/24/eth0");
    EXPECT_EQ(p.cfg.groups[0].origin.str(), "duet.toml:2");
    EXPECT_EQ(p.cfg.groups[0].resources[0].agent, "IPaddr");
}

TEST(Toml, HaresourcesLines) {
    auto p = toml("haresources = [\n  \"alpha 198.51.100.20 samba\",\n  \"beta\",\n  \"  \",\n  \"beta samba::\",\n  7,\n]\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:3: error: haresources: ", "no resources after the node name"),
                                       Diag("duet.toml:4: error: haresources: ", "empty line"),
                                       Diag("duet.toml:5: error: haresources: ", "ends with '::'"),
                                       Diag("duet.toml:6: error: haresources: ", "got an integer")));
    ASSERT_EQ(p.cfg.groups.size(), 1u);
    EXPECT_EQ(p.cfg.groups[0].origin.str(), "duet.toml:2");
    EXPECT_EQ(p.cfg.groups[0].resources[1].origin.str(), "duet.toml:2");
}

TEST(Toml, UnknownHomeIsReportedByFinalizeAtTheHomeLine) {
    auto p = toml(toml_base("[[group]]\nname = \"g\"\nhome = \"gamma\"\nresources = [\"samba\"]\n"));
    finalize(p.cfg, p.diag);
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:10: error: [[group]] home: ", "home node 'gamma' is not a node of this cluster (alpha and beta)")));
    auto h = toml("haresources = [\"gamma samba\"]\n" + toml_base());
    finalize(h.cfg, h.diag);
    EXPECT_THAT(h.lines(), ElementsAre(Diag("duet.toml:1: error: haresources: ", "home node 'gamma' is not a node of this cluster")));
}

}  // namespace
}  // namespace duet::config::test
