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

// ---- replicas

// A valid [replica.NAME] with both nodes; `extra` goes into [replica.NAME].
std::string replica_toml(const std::string& name = "r0", const std::string& extra = "", int n = 0) {
    std::string i = std::to_string(n);
    return "[replica." + name + "]\n" + extra +
           "[replica." + name + ".node.beta]\naddress = \"198.51.100.2:77" + std::to_string(88 + n) + "\"\ndisk = \"/dev/lab/disk" + i + "\"\n"
           "[replica." + name + ".node.alpha]\naddress = \"198.51.100.1:77" + std::to_string(88 + n) + "\"\ndisk = \"/dev/lab/disk" + i + "\"\n";
}

TEST(FinalizeReplica, DefaultsAndOrder) {
    auto p = toml_final(toml_base(replica_toml("r1", "", 1) + replica_toml("r0", "meta_disk = \"/dev/lab/meta\"\n")));
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.replicas.size(), 2u);
    const Replica& r0 = p.cfg.replicas[0];  // sorted by name
    EXPECT_EQ(r0.name, "r0");
    EXPECT_EQ(r0.device, "/dev/duet/r0");
    EXPECT_EQ(r0.nodes[0].node, "alpha");  // in the cluster's order
    EXPECT_EQ(r0.nodes[1].node, "beta");
    EXPECT_EQ(r0.nodes[0].meta_disk, "/dev/lab/meta");
    EXPECT_EQ(p.cfg.replicas[1].device, "/dev/duet/r1");
    EXPECT_EQ(p.cfg.replicas[1].nodes[1].meta_disk, "internal");
    EXPECT_EQ(link_secret(p.cfg, r0), "s3cret-s3cret");  // no secret of its own: the cluster's
}

TEST(FinalizeReplica, NodesAreTheClustersTwo) {
    auto p = toml_final(toml_base(replica_toml() + "[replica.r0.node.gamma]\naddress = \"198.51.100.3\"\ndisk = \"/dev/x\"\n"
                                  "[replica.r0.node.Alpha]\naddress = \"198.51.100.4\"\ndisk = \"/dev/y\"\n"));
    // toml++ orders the tables by name: Alpha, alpha, beta, gamma.
    EXPECT_THAT(p.lines(), ElementsAre("duet.toml:12: error: [replica.r0.node.alpha]: node alpha appears twice (also at duet.toml:18)",
                                       "duet.toml:15: error: [replica.r0.node.gamma]: 'gamma' is not a node of this cluster (alpha "
                                       "and beta): each [replica.r0.node.NODE] names a node of `nodes`"));
    auto q = toml_final(toml_base("[replica.r0]\n[replica.r0.node.alpha]\naddress = \"198.51.100.1\"\ndisk = \"/dev/x\"\n"));
    EXPECT_THAT(q.lines(), ElementsAre("duet.toml:8: error: [replica.r0]: replica r0 has nothing for node beta: expected a table "
                                       "[replica.r0.node.beta] with address and disk"));
    auto e = toml_final(toml_base("[replica.r0]\n[replica.r0.node.alpha]\n[replica.r0.node.beta]\n"));
    EXPECT_THAT(e.lines(), ElementsAre("duet.toml:9: error: [replica.r0.node.alpha]: no address for alpha: expected address = "
                                       "\"198.51.100.1:7788\"",
                                       "duet.toml:9: error: [replica.r0.node.alpha]: no backing disk for alpha: expected disk = "
                                       "\"/dev/...\"",
                                       Diag("duet.toml:10: error: [replica.r0.node.beta]: no address for beta", ""),
                                       Diag("duet.toml:10: error: [replica.r0.node.beta]: no backing disk for beta", "")));
}

TEST(FinalizeReplica, AddressesAreNodeIpsUsedOnce) {
    auto p = toml_final(toml_base("[replica.r0]\n"
                                  "[replica.r0.node.alpha]\naddress = \"db.example.org:7788\"\ndisk = \"/dev/x\"\n"
                                  "[replica.r0.node.beta]\naddress = \"239.0.0.1\"\ndisk = \"/dev/x\"\n"
                                  "[replica.r1]\n"
                                  "[replica.r1.node.alpha]\naddress = \"0.0.0.0\"\ndisk = \"/dev/y\"\n"
                                  "[replica.r1.node.beta]\naddress = \"[2001:db8:0::2]:7788\"\ndisk = \"/dev/y\"\n"
                                  "[replica.r2]\n"
                                  "[replica.r2.node.alpha]\naddress = \"198.51.100.1:7790\"\ndisk = \"/dev/z\"\n"
                                  "[replica.r2.node.beta]\naddress = \"[2001:db8::2]\"\ndisk = \"/dev/z\"\n"));
    EXPECT_THAT(p.lines(),
                ElementsAre("duet.toml:10: error: [replica.r0.node.alpha] address: expected an IP address, got "
                            "'db.example.org' (Duet does not resolve host names: DNS may be down exactly when failover matters)",
                            "duet.toml:13: error: [replica.r0.node.beta] address: '239.0.0.1' is not the address of a node "
                            "(multicast or unspecified)",
                            "duet.toml:17: error: [replica.r1.node.alpha] address: '0.0.0.0' is not the address of a node "
                            "(multicast or unspecified)",
                            "duet.toml:27: error: [replica.r2.node.beta] address: the address [2001:db8::2]:7788 is also used at "
                            "duet.toml:20: every node of every replica needs an address and port of its own"));
}

TEST(FinalizeReplica, DevicesAndDisksAreNotShared) {
    auto p = toml_final(toml_base(replica_toml("r0", "device = \"/dev/drbd0\"\n") +
                                  replica_toml("r1", "device = \"/dev/drbd0\"\n", 1) +
                                  "[replica.r2]\ndevice = \"/dev/duet/r0\"\n"
                                  "[replica.r2.node.alpha]\naddress = \"198.51.100.1:7800\"\ndisk = \"/dev/lab/disk1\"\n"
                                  "[replica.r2.node.beta]\naddress = \"198.51.100.2:7800\"\ndisk = \"/dev/lab/disk9\"\n"
                                  "meta_disk = \"/dev/lab/disk9\"\n"));
    EXPECT_THAT(p.lines(),
                ElementsAre("duet.toml:17: error: [replica.r1] device: replicas r0 and r1 both use the device '/dev/drbd0' (r0 "
                            "at duet.toml:9)",
                            "duet.toml:32: error: [replica.r2.node.beta] meta_disk: the metadata device is the backing disk itself "
                            "('/dev/lab/disk9'); for metadata at the end of the disk, write internal",
                            "duet.toml:28: error: [replica.r2.node.alpha] disk: the disk '/dev/lab/disk1' of alpha is also used "
                            "at duet.toml:23: two replicas cannot share a backing disk"));
}

TEST(FinalizeReplica, ValuesSetInCodeAreCheckedToo) {
    auto p = toml(toml_base(replica_toml()));
    Replica& r = p.cfg.replicas.at(0);
    r.protocol = 'X';
    r.verify_alg = "crc32";
    r.resync_rate = kMaxResyncRate + 1;
    r.meta_disk = "meta";
    r.secret = "bad\nsecret";
    r.name = "-r0";
    finalize(p.cfg, p.diag);
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:8: error: [replica.r0]: expected a replica name of letters", "got '-r0'"),
                            "duet.toml:8: error: [replica.r0]: expected protocol A, B or C, got 'X'",
                            "duet.toml:8: error: [replica.r0]: the secret contains control character 0x0A",
                            "duet.toml:8: error: [replica.r0]: unknown verify algorithm 'crc32'",
                            "duet.toml:8: error: [replica.r0]: the resync rate is above 1 TiB/s: leave it out for no limit",
                            "duet.toml:8: error: [replica.r0]: expected internal or the absolute path of a metadata device, got "
                            "'meta'"));  // once, not again for each node that takes it
    auto q = toml(toml_base(replica_toml("r0", "secret_file = \"/etc/duet/r0.secret\"\n")));
    finalize(q.cfg, q.diag);
    EXPECT_THAT(q.lines(), ElementsAre("duet.toml:9: error: [replica.r0] secret_file: the secret file '/etc/duet/r0.secret' has "
                                       "not been read (it is read when the configuration is loaded)"));
}

TEST(FinalizeReplica, GroupsPromoteDefinedReplicasOnce) {
    auto ok = toml_final(toml_base(replica_toml() +
                                   "[[group]]\nhome = \"alpha\"\nresources = [\"198.51.100.20\", { agent = \"replica\", args = "
                                   "[\"r0\"] }, \"Filesystem::/dev/duet/r0::/data::ext4\"]\n"));
    EXPECT_THAT(ok.lines(), IsEmpty());
    auto bad = toml_final("haresources = [\"alpha replica::r1\", \"beta Filesystem::/dev/duet/r0::/srv::ext4 drbddisk::r0\"]\n" +
                          toml_base(replica_toml()));
    EXPECT_THAT(bad.lines(),
                ElementsAre("duet.toml:1: error: haresources: no replica is named 'r1' (defined: r0)",
                            Diag("duet.toml:1: warning: haresources: the filesystem is on replica r0's device '/dev/duet/r0'",
                                 "put drbddisk::r0 (or replica::r0) before it")));
}

}  // namespace
}  // namespace duet::config::test
