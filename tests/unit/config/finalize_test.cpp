// finalize(): the checks that span settings and files, the defaults that follow other settings.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using std::chrono::milliseconds;

Parsed toml_final(const std::string& text) {
    Parsed p = toml(text);
    finalize(p.cfg, p.diag);
    return p;
}

TEST(Finalize, ValidLegacyConfiguration) {
    auto p = legacy(kHacf);
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.cluster, "alpha+beta");
    EXPECT_EQ(p.cfg.paths[0].name(), "mcast eth0 239.0.0.10:694");
}

TEST(Finalize, DefaultClusterNameIsSortedNodes) {
    auto p = legacy("node zulu\nnode alpha\nbcast eth0\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.cluster, "alpha+zulu");
}

TEST(Finalize, UdpportAppliesToPathsWithoutAPortEvenWhenGivenLater) {
    auto p = legacy("node a\nnode b\nbcast eth1\nucast eth0 198.51.100.2\nmcast eth2 239.0.0.10 694 1 0\nudpport 700\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.paths[0].name(), "bcast eth1:700");
    EXPECT_EQ(p.cfg.paths[1].name(), "ucast eth0 198.51.100.2:700");
    EXPECT_EQ(p.cfg.paths[2].name(), "mcast eth2 239.0.0.10:694");
    auto t = toml_final("port = 800\n" + toml_base("[[path]]\ntype = \"ucast\"\naddress = \"203.0.113.2\"\n"));
    EXPECT_THAT(t.lines(), IsEmpty());
    EXPECT_EQ(t.cfg.paths[0].port, 800);
    EXPECT_EQ(t.cfg.paths[1].name(), "ucast 203.0.113.2:800");
}

TEST(Finalize, NodeCount) {
    EXPECT_THAT(legacy("bcast eth0\n").lines(),
                ElementsAre(Diag("ha.cf: error: node: ", "Duet needs exactly two nodes, none is declared; expected `node alpha` and `node beta`")));
    EXPECT_THAT(legacy("bcast eth0\nnode alpha\n").lines(),
                ElementsAre(Diag("ha.cf:2: error: node: ", "only alpha at ha.cf:2 is declared")));
    EXPECT_THAT(legacy("bcast eth0\nnode alpha beta\n\nnode gamma\n").lines(),
                ElementsAre(Diag("ha.cf:4: error: node: ", "a third node 'gamma': Duet clusters have exactly two nodes (declared: alpha at ha.cf:2, beta at ha.cf:2, gamma at ha.cf:4)")));
    EXPECT_THAT(legacy("bcast eth0\nnode alpha\nnode beta\nnode Alpha\n").lines(),
                ElementsAre(Diag("ha.cf:4: error: node: ", "node 'alpha' is declared twice (also at ha.cf:2)")));
    EXPECT_THAT(toml_final("nodes = []\n[auth]\nkey = \"k\"\n[[path]]\ntype = \"bcast\"\ninterface = \"eth0\"\n").lines(),
                ElementsAre(Diag("duet.toml: error: nodes: ", "none is declared; expected nodes = [\"alpha\", \"beta\"]")));
    EXPECT_THAT(toml_final("nodes = [\"a\", \"b\", \"c\"]\n[auth]\nkey = \"k\"\n[[path]]\ntype = \"bcast\"\ninterface = \"eth0\"\n").lines(),
                ElementsAre(Diag("duet.toml:1: error: nodes: ", "a third node 'c'")));
}

TEST(Finalize, NoPath) {
    EXPECT_THAT(legacy("node a\nnode b\n").lines(),
                ElementsAre(Diag("ha.cf: error: ", "no heartbeat path: add at least one mcast, bcast or ucast line")));
    EXPECT_THAT(toml_final("nodes = [\"a\", \"b\"]\n[auth]\nkey = \"k\"\n").lines(),
                ElementsAre(Diag("duet.toml: error: [[path]]: ", "no heartbeat path: add at least one [[path]] table")));
}

TEST(Finalize, McastGroupMustBeMulticast) {
    auto p = legacy("node a\nnode b\nmcast eth0 198.51.100.10 694 1 0\nmcast eth0 group 694 1 0\nmcast eth0 ff02::694 694 1 0\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:3: error: mcast: ", "'198.51.100.10' is not a multicast address: expected IPv4 224.0.0.0/4"),
                                       Diag("ha.cf:4: error: mcast: ", "expected a multicast group address (IPv4 224.0.0.0/4 or IPv6 ff00::/8), got 'group'")));
    auto t = toml_final(toml_base("[[path]]\ntype = \"mcast\"\ngroup = \"ff02::1:694\"\n[[path]]\ntype = \"mcast\"\ninterface = \"eth1\"\n"));
    EXPECT_THAT(t.lines(), ElementsAre(Diag("duet.toml:8: error: [[path]] interface: ", "an mcast path needs a network interface"),
                                       Diag("duet.toml:11: error: [[path]] group: ", "an mcast path needs a multicast group")));
}

TEST(Finalize, UcastAddressMustBeAnIp) {
    auto p = legacy("node a\nnode b\nucast eth0 serv2\nucast eth0 239.0.0.1\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:3: error: ucast: ", "expected an IP address, got 'serv2' (Duet does not resolve host names"),
                                       Diag("ha.cf:4: error: ucast: ", "is a multicast address; use an mcast path")));
    auto t = toml_final(toml_base("[[path]]\ntype = \"ucast\"\naddress = \"fe80::1\"\n[[path]]\ntype = \"ucast\"\n"));
    EXPECT_THAT(t.lines(), ElementsAre(Diag("duet.toml:8: error: [[path]] interface: ", "the link-local address 'fe80::1' needs an interface"),
                                       Diag("duet.toml:11: error: [[path]] address: ", "a ucast path needs the peer's IP address")));
}

TEST(Finalize, InterfaceNames) {
    auto p = legacy("node a\nnode b\nbcast eth0:1 averyveryverylongname\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:3: error: bcast: ", "expected a network interface name (such as eth0; at most 15"),
                                       Diag("ha.cf:3: error: bcast: ", "got 'averyveryverylongname'")));
    auto t = toml_final(toml_base("[[path]]\ntype = \"bcast\"\n"));
    EXPECT_THAT(t.lines(), ElementsAre(Diag("duet.toml:8: error: [[path]] interface: ", "a bcast path needs a network interface")));
}

TEST(Finalize, DuplicatePath) {
    auto p = legacy("node a\nnode b\nbcast eth0\nudpport 694\nbcast eth0\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:5: error: bcast: ", "the same path as at ha.cf:3 (bcast eth0:694)")));
}

TEST(Finalize, ProgrammaticPathValues) {
    Config c;
    c.nodes = {"a", "b"};
    c.auth.secret = "k";
    c.udpport = 0;
    Path p{PathKind::Mcast, "eth0", "239.0.0.10", 0};
    p.ttl = 0;
    c.paths.push_back(p);
    Diagnostics d;
    finalize(c, d);
    EXPECT_THAT(strs(d), ElementsAre(Diag("error: port: ", "expected a UDP port from 1 to 65535, got 0"),
                                     Diag("error: mcast: ", "expected a TTL from 1 to 255, got 0")));
}

// Nodes and a path; timings are appended from line 4 on.
const std::string kBase = "node alpha\nnode beta\nmcast eth0 239.0.0.10 694 1 0\n";

TEST(Finalize, KeepaliveMustBePositive) {
    EXPECT_THAT(legacy(kBase + "keepalive 0\n").lines(),
                ElementsAre(Diag("ha.cf:4: error: keepalive: ", "keepalive must be greater than 0")));
}

TEST(Finalize, DeadtimeMustExceedKeepalive) {
    EXPECT_THAT(legacy(kBase + "deadtime 2\n").lines(),
                ElementsAre(Diag("ha.cf:4: error: deadtime: ", "deadtime (2s) must be greater than keepalive (2s)")));
    EXPECT_THAT(legacy(kBase + "deadtime 4\nwarntime 3\ninitdead 8\n").lines(),
                ElementsAre(Diag("ha.cf:4: warning: deadtime: ", "deadtime (4s) is at most twice keepalive (2s): one lost heartbeat declares the peer dead")));
    // Only keepalive set: the default deadtime is named where keepalive is.
    EXPECT_THAT(toml_final(toml_base("[timings]\nkeepalive = 40\n")).lines(),
                ElementsAre(Diag("duet.toml:9: error: [timings] keepalive: ", "deadtime (30s) must be greater than keepalive (40s)")));
}

TEST(Finalize, WarntimeBetweenKeepaliveAndDeadtime) {
    EXPECT_THAT(legacy(kBase + "warntime 30\n").lines(),
                ElementsAre(Diag("ha.cf:4: warning: warntime: ", "warntime (30s) should lie between keepalive (2s) and deadtime (30s), so that late heartbeats are reported before the peer is declared dead; try warntime = 15s")));
    EXPECT_THAT(legacy(kBase + "warntime 1\n").lines(), ElementsAre(Diag("ha.cf:4: warning: warntime: ", "try warntime = 15s")));
    EXPECT_THAT(legacy(kBase + "keepalive 1\ndeadtime 3\nwarntime 3\ninitdead 6\n").lines(),
                ElementsAre(Diag("ha.cf:6: warning: warntime: ", "try warntime = 1500ms")));
}

TEST(Finalize, Initdead) {
    EXPECT_THAT(legacy(kBase + "initdead 20\n").lines(),
                ElementsAre(Diag("ha.cf:4: error: initdead: ", "initdead (20s) must be at least deadtime (30s); try initdead = 60s")));
    EXPECT_THAT(legacy(kBase + "initdead 45\n").lines(),
                ElementsAre(Diag("ha.cf:4: warning: initdead: ", "initdead (45s) is less than twice deadtime (30s)")));
}

TEST(Finalize, UnsetTimingsFollowDeadtime) {
    auto p = legacy("node a\nnode b\nbcast eth0\ndeadtime 60\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.timings.initdead, milliseconds(120000));
    EXPECT_EQ(p.cfg.timings.warntime, milliseconds(10000));
    auto q = legacy("node a\nnode b\nbcast eth0\ndeadtime 8\n");
    EXPECT_THAT(q.lines(), IsEmpty());
    EXPECT_EQ(q.cfg.timings.warntime, milliseconds(4000));
    EXPECT_EQ(q.cfg.timings.initdead, milliseconds(60000));
    auto r = legacy("node a\nnode b\nbcast eth0\n");
    EXPECT_EQ(r.cfg.timings.keepalive, milliseconds(2000));
    EXPECT_EQ(r.cfg.timings.warntime, milliseconds(10000));
    EXPECT_EQ(r.cfg.timings.deadtime, milliseconds(30000));
    EXPECT_EQ(r.cfg.timings.initdead, milliseconds(60000));
}

TEST(Finalize, TimingsAtMostADay) {
    EXPECT_THAT(legacy(kBase + "initdead 86401\n").lines(),
                ElementsAre(Diag("ha.cf:4: error: initdead: ", "expected a duration from 0 to 24h, got 86401000ms")));
}

TEST(Finalize, AuthenticationKeyIsRequired) {
    auto p = hacf(kHacf);
    finalize(p.cfg, p.diag);
    EXPECT_THAT(p.lines(), ElementsAre("ha.cf: error: no authentication key: Duet never sends unauthenticated heartbeats; "
                                       "authkeys needs `auth 1` and `1 sha1 SECRET`"));
    auto t = toml_final("nodes = [\"a\", \"b\"]\n[[path]]\ntype = \"bcast\"\ninterface = \"eth0\"\n");
    EXPECT_THAT(t.lines(), ElementsAre(Diag("duet.toml: error: [auth]: ", "no authentication key: Duet never sends unauthenticated heartbeats")));
    auto f = toml_final("nodes = [\"a\", \"b\"]\n[auth]\nkey_file = \"/etc/duet/k\"\n[[path]]\ntype = \"bcast\"\ninterface = \"eth0\"\n");
    EXPECT_THAT(f.lines(), ElementsAre(Diag("duet.toml:3: error: [auth] key_file: ", "the key file '/etc/duet/k' has not been read")));
}

TEST(Finalize, ClusterName) {
    Config c;
    c.nodes = {"a", "b"};
    c.auth.secret = "k";
    c.paths.push_back(Path{PathKind::Bcast, "eth0", "", 694});
    c.cluster = "bad\nname";
    Diagnostics d;
    finalize(c, d);
    EXPECT_THAT(strs(d), ElementsAre(Diag("error: cluster: ", "the cluster name contains control character 0x0A")));
    c.cluster = std::string(256, 'c');
    Diagnostics d2;
    finalize(c, d2);
    EXPECT_THAT(strs(d2), ElementsAre(Diag("error: cluster: ", "at most 255")));
}

TEST(Finalize, ProgrammaticGroupsAndLocalPaths) {
    Config c;
    c.nodes = {"A", "b"};
    c.auth.secret = "k";
    c.paths.push_back(Path{PathKind::Bcast, "eth0", "", 694});
    c.groups.push_back(Group{"", "a", {Resource{"samba", {}}}});
    c.groups.push_back(Group{"g", "b", {}});
    c.state_dir = "relative";
    Diagnostics d;
    finalize(c, d);
    EXPECT_THAT(c.nodes, ElementsAre("a", "b"));
    EXPECT_EQ(c.groups[0].name, "samba");
    EXPECT_THAT(strs(d), ElementsAre(Diag("error: [[group]] resources: ", "a resource group needs at least one resource"),
                                     Diag("error: state_dir: ", "expected an absolute path, got 'relative'")));
}

}  // namespace
}  // namespace duet::config::test
