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

// ---- [replica.NAME]

TEST(TomlReplica, EveryKey) {
    auto p = toml(toml_base(R"([replica.r0]
device = "/dev/drbd0"
protocol = "B"
secret = "link secret"
encrypt = true
resync_rate = "100M"
verify = "sha256"
meta_disk = "/dev/lab/meta"
[replica.r0.node.alpha]
address = "198.51.100.1:7789"
disk = "/dev/lab/disk0"
meta_disk = "internal"
[replica.r0.node.Beta]
address = "[2001:db8::2]"
disk = "/dev/lab/disk1"
[replica.r1]
secret_file = "/etc/duet/r1.secret"
resync_rate = 1048577
[replica.r1.node.alpha]
address = "198.51.100.1"
disk = "/dev/lab/disk2"
)"));
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.replicas.size(), 2u);
    const Replica& r = p.cfg.replicas[0];
    EXPECT_EQ(r.name, "r0");
    EXPECT_EQ(r.device, "/dev/drbd0");
    EXPECT_EQ(r.protocol, 'B');
    EXPECT_EQ(r.secret, "link secret");
    EXPECT_TRUE(r.encrypt);
    EXPECT_EQ(r.resync_rate, 100u << 20);
    EXPECT_EQ(r.verify_alg, "sha256");
    EXPECT_EQ(r.meta_disk, "/dev/lab/meta");
    EXPECT_EQ(r.origin.str(), "duet.toml:8");
    EXPECT_EQ(r.key_origins.at("device").str(), "duet.toml:9");
    EXPECT_EQ(r.key_origins.at("device").key, "[replica.r0] device");
    ASSERT_EQ(r.nodes.size(), 2u);
    const ReplicaNode* alpha = r.on("alpha");
    const ReplicaNode* beta = r.on("beta");  // node names are case-insensitive: "Beta"
    ASSERT_TRUE(alpha && beta);
    EXPECT_EQ(alpha->address, "198.51.100.1");
    EXPECT_EQ(alpha->port, 7789);
    EXPECT_EQ(alpha->disk, "/dev/lab/disk0");
    EXPECT_EQ(alpha->meta_disk, "internal");
    EXPECT_EQ(alpha->origin.str(), "duet.toml:16");
    EXPECT_EQ(alpha->key_origins.at("address").key, "[replica.r0.node.alpha] address");
    EXPECT_EQ(beta->address, "2001:db8::2");
    EXPECT_EQ(beta->port, 7788);
    EXPECT_EQ(beta->meta_disk, "");  // the replica's, filled by finalize()
    const Replica& r1 = p.cfg.replicas[1];
    EXPECT_EQ(r1.secret_file, "/etc/duet/r1.secret");
    EXPECT_EQ(r1.resync_rate, 1048577u);
    EXPECT_EQ(r1.device, "");  // finalize() gives the default
    EXPECT_EQ(r1.protocol, 'C');
    EXPECT_EQ(r1.meta_disk, "internal");
}

TEST(TomlReplica, EveryErrorNamesTheLineAndKey) {
    auto p = toml(toml_base(R"([replica.r0]
device = "dev/drbd0"
protocol = "D"
resync_rate = "1.5M"
verify = "crc32"
meta_disk = "meta"
encrypt = "yes"
secret = ""
colour = "blue"
node = 3
[replica.r1]
secret = "a"
secret_file = "/k"
resync_rate = 0
[replica.r1.node.alpha]
address = "2001:db8::1"
disk = 7
port = 7788
[replica.r1.node.beta]
address = "198.51.100.2:0"
[replica.r1.node."no way"]
)"));
    const std::string rate = "expected a rate in bytes per second: an integer, or a string with a K, M or G suffix (powers of "
                             "1024) such as \"100M\"; at most 1 TiB/s (leave resync_rate out for no limit), got ";
    EXPECT_THAT(p.lines(),
                ElementsAre("duet.toml:9: error: [replica.r0] device: expected an absolute path (starting with /), got 'dev/drbd0'",
                            "duet.toml:10: error: [replica.r0] protocol: expected \"A\" (a write completes on the local disk), "
                            "\"B\" (and in the peer's memory) or \"C\" (and on the peer's disk: no acknowledged write is lost), "
                            "got 'D'",
                            "duet.toml:11: error: [replica.r0] resync_rate: " + rate + "'1.5M'",
                            "duet.toml:12: error: [replica.r0] verify: expected one of \"md5\", \"sha1\", \"sha256\", \"sha384\", "
                            "\"sha512\", got 'crc32'",
                            "duet.toml:13: error: [replica.r0] meta_disk: expected \"internal\" (metadata at the end of the disk) "
                            "or the absolute path of a metadata device, got 'meta'",
                            "duet.toml:14: error: [replica.r0] encrypt: expected true or false, got a string",
                            "duet.toml:15: error: [replica.r0] secret: expected the replication link's shared secret, got an empty "
                            "string",
                            Diag("duet.toml:16: error: [replica.r0] colour: unknown key in [replica.r0]; expected one of: device "
                                 "protocol secret secret_file encrypt resync_rate verify meta_disk node",
                                 ""),
                            "duet.toml:17: error: [replica.r0] node: expected [replica.r0.node.NODE] tables (one per node), got an "
                            "integer",
                            "duet.toml:20: error: [replica.r1] secret_file: give either secret or secret_file, not both (secret is "
                            "at duet.toml:19)",
                            "duet.toml:21: error: [replica.r1] resync_rate: " + rate + "0",
                            "duet.toml:23: error: [replica.r1.node.alpha] address: expected ADDRESS[:PORT] such as "
                            "\"198.51.100.1:7788\" or \"[2001:db8::1]:7788\" (port 7788 when absent), got '2001:db8::1': an IPv6 "
                            "address needs brackets, such as [2001:db8::1]:7788",
                            "duet.toml:24: error: [replica.r1.node.alpha] disk: expected an absolute path, got an integer",
                            "duet.toml:25: error: [replica.r1.node.alpha] port: unknown key in [replica.r1.node.alpha]; expected "
                            "one of: address disk meta_disk",
                            "duet.toml:27: error: [replica.r1.node.beta] address: expected ADDRESS[:PORT] such as "
                            "\"198.51.100.1:7788\" or \"[2001:db8::1]:7788\" (port 7788 when absent), got '198.51.100.2:0': port "
                            "'0' is not a number from 1 to 65535",
                            "duet.toml:28: error: [replica.r1.node.no way]: expected a node name (as in nodes), got 'no way'"));
    EXPECT_THAT(toml("replica = 1\n" + toml_base()).lines(),
                ElementsAre("duet.toml:1: error: [replica.NAME]: expected a table [replica.NAME], got an integer"));
    EXPECT_THAT(toml(toml_base("[replica]\nr2 = 1\n")).lines(),
                ElementsAre("duet.toml:9: error: [replica.r2]: expected a table [replica.NAME] (one per replicated disk), got an "
                            "integer"));
    EXPECT_THAT(toml(toml_base("[replica.r0.node]\nalpha = \"198.51.100.1\"\n")).lines(),
                ElementsAre("duet.toml:9: error: [replica.r0.node.alpha]: expected a table [replica.r0.node.alpha] (the node's "
                            "address and disk), got a string"));
    EXPECT_THAT(toml(toml_base("[replicas.r0]\n")).lines(),
                ElementsAre(Diag("duet.toml:8: error: replicas: unknown key (did you mean 'replica'?)", "")));
}

TEST(TomlReplica, RatesAndProtocolsInEveryAcceptedForm) {
    auto rate = [](const std::string& v) {
        auto p = toml(toml_base("[replica.r0]\nresync_rate = " + v + "\n"));
        EXPECT_THAT(p.lines(), IsEmpty()) << v;
        return p.cfg.replicas.at(0).resync_rate;
    };
    EXPECT_EQ(rate("\"512K\""), 512u << 10);
    EXPECT_EQ(rate("\"1g\""), uint64_t(1) << 30);
    EXPECT_EQ(rate("\"1000\""), 1000u);
    EXPECT_EQ(rate("125000000"), 125000000u);
    EXPECT_EQ(rate("\"1024G\""), uint64_t(1) << 40);
    EXPECT_THAT(toml(toml_base("[replica.r0]\nresync_rate = \"1025G\"\n")).lines(),
                ElementsAre(Diag("duet.toml:9: error: [replica.r0] resync_rate: ", "got '1025G'")));
    EXPECT_EQ(toml(toml_base("[replica.r0]\nprotocol = \"a\"\n")).cfg.replicas.at(0).protocol, 'A');
}

}  // namespace
}  // namespace duet::config::test
