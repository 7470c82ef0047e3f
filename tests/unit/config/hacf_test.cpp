// ha.cf: every supported directive, every warning and every error, each with its file:line and directive.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using std::chrono::milliseconds;

TEST(Hacf, Timings) {
    auto p = hacf("keepalive 1.5\ndeadtime 30s\nwarntime 500ms\ninitdead 120\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.timings.keepalive, milliseconds(1500));
    EXPECT_EQ(p.cfg.timings.deadtime, milliseconds(30000));
    EXPECT_EQ(p.cfg.timings.warntime, milliseconds(500));
    EXPECT_EQ(p.cfg.timings.initdead, milliseconds(120000));
    EXPECT_EQ(p.cfg.origins.deadtime.str(), "ha.cf:2");
    EXPECT_EQ(p.cfg.origins.deadtime.key, "deadtime");
    EXPECT_EQ(p.cfg.syntax, Syntax::Heartbeat);
    EXPECT_THAT(p.cfg.sources, ElementsAre("ha.cf"));
}

TEST(Hacf, TimingErrors) {
    auto p = hacf("keepalive two\n\ndeadtime\nwarntime 1 2\ninitdead -5\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("ha.cf:1: error: keepalive: ", "expected a duration in seconds, such as 2, 1.5 or 500ms, got 'two'"),
                            Diag("ha.cf:3: error: deadtime: ", "got nothing"),
                            Diag("ha.cf:4: error: warntime: ", "expected one value"),
                            Diag("ha.cf:5: error: initdead: ", "got '-5'")));
    // Invalid values leave the defaults in place.
    EXPECT_EQ(p.cfg.timings.keepalive, milliseconds(2000));
}

TEST(Hacf, RepeatedDirectiveWarnsAndLastWins) {
    auto p = hacf("deadtime 10\ndeadtime 20\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:2: warning: deadtime: ", "given again (also at ha.cf:1)")));
    EXPECT_EQ(p.cfg.timings.deadtime, milliseconds(20000));
}

TEST(Hacf, Udpport) {
    auto p = hacf("udpport 695\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.udpport, 695);
    EXPECT_EQ(p.cfg.origins.udpport.str(), "ha.cf:1");
    auto bad = hacf("udpport 0\nudpport 65536\nudpport http\nudpport\n");
    EXPECT_THAT(bad.lines(), ElementsAre(Diag("ha.cf:1: error: udpport: ", "expected a UDP port from 1 to 65535, got '0'"),
                                         Diag("ha.cf:2: error: udpport: ", "got '65536'"),
                                         Diag("ha.cf:3: error: udpport: ", "got 'http'"),
                                         Diag("ha.cf:4: error: udpport: ", "got nothing")));
    EXPECT_EQ(bad.cfg.udpport, 694);
}

TEST(Hacf, Mcast) {
    auto p = hacf("mcast eth0 239.0.0.10 694 1 0\nmcast eth1 239.0.0.11 700 4 1\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.paths.size(), 2u);
    const Path& a = p.cfg.paths[0];
    EXPECT_EQ(a.kind, PathKind::Mcast);
    EXPECT_EQ(a.interface, "eth0");
    EXPECT_EQ(a.address, "239.0.0.10");
    EXPECT_EQ(a.port, 694);
    EXPECT_EQ(a.ttl, 1);
    EXPECT_FALSE(a.loop);
    EXPECT_EQ(a.origin.str(), "ha.cf:1");
    EXPECT_EQ(p.cfg.paths[1].ttl, 4);
    EXPECT_TRUE(p.cfg.paths[1].loop);
    EXPECT_EQ(p.cfg.paths[1].port, 700);
}

TEST(Hacf, McastNeedsAllFiveFields) {
    auto p = hacf("mcast eth0 239.0.0.10 694 1\nmcast eth0 239.0.0.10 694 1 0 extra\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:1: error: mcast: ", "expected five fields `mcast DEVICE GROUP PORT TTL LOOP`"),
                                       Diag("ha.cf:2: error: mcast: ", "got 6")));
    EXPECT_THAT(p.cfg.paths, IsEmpty());
}

TEST(Hacf, McastFieldErrors) {
    auto p = hacf("mcast eth0 239.0.0.10 0 1 0\n"
                  "mcast eth0 239.0.0.10 694 0 0\n"
                  "mcast eth0 239.0.0.10 694 256 0\n"
                  "mcast eth0 239.0.0.10 694 1 2\n"
                  "mcast eth0 239.0.0.10 x y z\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:1: error: mcast: ", "PORT (third field): expected a UDP port from 1 to 65535, got '0'"),
                                       Diag("ha.cf:2: error: mcast: ", "TTL (fourth field): expected a number from 1 to 255, got '0'"),
                                       Diag("ha.cf:3: error: mcast: ", "got '256'"),
                                       Diag("ha.cf:4: error: mcast: ", "LOOP (fifth field): expected 0 or 1, got '2'"),
                                       Diag("ha.cf:5: error: mcast: ", "PORT"), Diag("ha.cf:5: error: mcast: ", "TTL"),
                                       Diag("ha.cf:5: error: mcast: ", "LOOP")));
    EXPECT_THAT(p.cfg.paths, IsEmpty());
}

TEST(Hacf, Mcast6) {
    auto p = hacf("mcast6 eth0 ff02::694 694 1 0\nmcast6 eth0 239.0.0.10 694 1 0\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:2: error: mcast6: ", "is an IPv4 address; mcast6 takes an IPv6 group")));
    ASSERT_EQ(p.cfg.paths.size(), 1u);
    EXPECT_EQ(p.cfg.paths[0].address, "ff02::694");
    EXPECT_EQ(p.cfg.paths[0].kind, PathKind::Mcast);
}

TEST(Hacf, BcastOnePathPerDevice) {
    auto p = hacf("bcast eth1 eth2,eth3\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.paths.size(), 3u);
    for (const auto& path : p.cfg.paths) {
        EXPECT_EQ(path.kind, PathKind::Bcast);
        EXPECT_EQ(path.port, 0);  // udpport, resolved by finalize()
        EXPECT_EQ(path.origin.str(), "ha.cf:1");
    }
    EXPECT_EQ(p.cfg.paths[2].interface, "eth3");
    EXPECT_THAT(hacf("bcast\n").lines(), ElementsAre(Diag("ha.cf:1: error: bcast: ", "expected one or more network interfaces")));
}

TEST(Hacf, Ucast) {
    auto p = hacf("ucast eth1 198.51.100.2\nucast eth1 198.51.100.1\nucast eth1\nucast eth1 a b\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:3: error: ucast: ", "expected `ucast DEVICE PEER-ADDRESS`"),
                                       Diag("ha.cf:4: error: ucast: ", "got 3 fields")));
    ASSERT_EQ(p.cfg.paths.size(), 2u);
    EXPECT_EQ(p.cfg.paths[0].kind, PathKind::Ucast);
    EXPECT_EQ(p.cfg.paths[0].interface, "eth1");
    EXPECT_EQ(p.cfg.paths[0].address, "198.51.100.2");
    EXPECT_EQ(p.cfg.paths[0].port, 0);
}

TEST(Hacf, Nodes) {
    auto p = hacf("node Serv1 serv2\nnode serv3,serv4\nnode serv5\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_THAT(p.cfg.nodes, ElementsAre("serv1", "serv2", "serv3", "serv4", "serv5"));
    ASSERT_EQ(p.cfg.origins.nodes.size(), 5u);
    EXPECT_EQ(p.cfg.origins.nodes[1].str(), "ha.cf:1");
    EXPECT_EQ(p.cfg.origins.nodes[4].str(), "ha.cf:3");
    auto bad = hacf("node\nnode -x good\nnode " + std::string(65, 'a') + "\n");
    EXPECT_THAT(bad.lines(), ElementsAre(Diag("ha.cf:1: error: node: ", "expected one or more node names"),
                                         Diag("ha.cf:2: error: node: ", "got '-x'"),
                                         Diag("ha.cf:3: error: node: ", "at most 64")));
    EXPECT_THAT(bad.cfg.nodes, ElementsAre("good"));
}

TEST(Hacf, AutoFailback) {
    for (const char* on : {"on", "true", "yes", "1", "ON"}) {
        auto p = hacf(std::string("auto_failback ") + on + "\n");
        EXPECT_THAT(p.lines(), IsEmpty()) << on;
        EXPECT_TRUE(p.cfg.auto_failback) << on;
    }
    for (const char* off : {"off", "false", "no", "0"}) {
        auto p = hacf(std::string("auto_failback on\nauto_failback ") + off + "\n");
        EXPECT_THAT(p.lines(), IsEmpty()) << off;
        EXPECT_FALSE(p.cfg.auto_failback) << off;
    }
    auto legacy = hacf("auto_failback legacy\n");
    EXPECT_THAT(legacy.lines(), ElementsAre(Diag("ha.cf:1: warning: auto_failback: ", "Duet treats it as 'on'")));
    EXPECT_TRUE(legacy.cfg.auto_failback);
    EXPECT_THAT(hacf("auto_failback maybe\n").lines(),
                ElementsAre(Diag("ha.cf:1: error: auto_failback: ", "expected on, off or legacy, got 'maybe'")));
}

TEST(Hacf, NiceFailbackIsReadAsAutoFailback) {
    auto on = hacf("nice_failback on\n");
    EXPECT_THAT(on.lines(), ElementsAre(Diag("ha.cf:1: warning: nice_failback: ", "read as `auto_failback off`")));
    EXPECT_FALSE(on.cfg.auto_failback);
    auto off = hacf("nice_failback off\n");
    EXPECT_THAT(off.lines(), ElementsAre(Diag("ha.cf:1: warning: nice_failback: ", "read as `auto_failback on`")));
    EXPECT_TRUE(off.cfg.auto_failback);
    EXPECT_THAT(hacf("nice_failback sometimes\n").lines(),
                ElementsAre(Diag("ha.cf:1: error: nice_failback: ", "expected on or off")));
}

TEST(Hacf, Cluster) {
    auto p = hacf("cluster lab\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.cluster, "lab");
    EXPECT_THAT(hacf("cluster a b\n").lines(), ElementsAre(Diag("ha.cf:1: error: cluster: ", "expected one value")));
}

TEST(Hacf, UnsupportedHeartbeatDirectivesWarn) {
    const std::vector<std::string> ignored = {
        "logfile", "debugfile", "logfacility", "use_logd", "conn_logd_time", "debug", "crm", "pacemaker", "respawn", "env",
        "apiauth", "ping", "ping_group", "hbaping", "deadping", "compression", "compression_threshold",
        "traditional_compression", "realtime", "rtprio", "hopfudge", "baud", "serial", "stonith", "stonith_host", "watchdog",
        "coredumps", "coreroot", "uuidfrom", "autojoin", "msgfmt", "hbgenmethod", "max_rexmit_delay", "normalpoll",
        "use_apphbd", "log_badpack", "memreserve", "quorum_server", "record_config_changes", "record_pengine_inputs",
        "enable_config_writes"};
    std::string text;
    for (const auto& d : ignored) text += d + " some value\n";
    auto p = hacf(text);
    ASSERT_EQ(p.diag.items().size(), ignored.size());
    for (size_t i = 0; i < ignored.size(); ++i) {
        EXPECT_THAT(p.lines()[i], Diag("ha.cf:" + std::to_string(i + 1) + ": warning: " + ignored[i] + ": ",
                                       "not supported by Duet, ignored"));
    }
    EXPECT_FALSE(p.diag.has_errors());
    EXPECT_THAT(hacf("logfacility local0\n").lines(), ElementsAre(Diag("ha.cf:1: warning: logfacility: ", "journal")));
    EXPECT_THAT(hacf("stonith_host * baytech 10.0.0.3 mylogin mysecretpassword\n").lines(),
                ElementsAre(Diag("ha.cf:1: warning: stonith_host: ", "NO STONITH protection")));
}

TEST(Hacf, UnknownDirectiveIsAnError) {
    auto p = hacf("keepalvie 2\nKeepalive 2\nfrobnicate yes\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("ha.cf:1: error: keepalvie: ", "unknown directive 'keepalvie' (did you mean 'keepalive'?)"),
                            Diag("ha.cf:2: error: Keepalive: ", "did you mean 'keepalive'?"),
                            Diag("ha.cf:3: error: frobnicate: ", "unknown directive 'frobnicate'; Heartbeat refuses it too")));
}

TEST(Hacf, CommentsBlankLinesAndLineEndings) {
    auto p = hacf("\xEF\xBB\xBF# a comment\r\n\r\n   \t\nkeepalive 3 # three seconds\r\n  deadtime\t40\n#node x\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.timings.keepalive, milliseconds(3000));
    EXPECT_EQ(p.cfg.timings.deadtime, milliseconds(40000));
    EXPECT_EQ(p.cfg.origins.deadtime.str(), "ha.cf:5");
    EXPECT_THAT(p.cfg.nodes, IsEmpty());
}

TEST(Hacf, BinaryGarbageIsAnErrorNamingTheLine) {
    auto p = hacf(std::string("keepalive 2\nnode a\0b\nnode \xff\xfe\nnode \x01x\n", 37));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:2: error: ", "a NUL byte"), Diag("ha.cf:3: error: ", "invalid UTF-8"),
                                       Diag("ha.cf:4: error: ", "control character 0x01")));
}

}  // namespace
}  // namespace duet::config::test
