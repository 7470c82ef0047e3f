// The resource chain and failover settings: per-resource options (string and table forms), group
// options, [resources], [policy], [mail]; their defaults, every error with its line and key, the
// checks of finalize() and the round trip through to_toml().
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using std::chrono::milliseconds;
using std::chrono::seconds;

Parsed toml_final(const std::string& text) {
    Parsed p = toml(text);
    finalize(p.cfg, p.diag);
    return p;
}

// toml_base() is 7 lines long: what is appended starts at line 8.
constexpr const char* kGroupHead = "[[group]]\nhome = \"alpha\"\n";  // lines 8-9

TEST(Chain, Defaults) {
    for (const Config& c : {toml_final(toml_base("[[group]]\nhome = \"alpha\"\nresources = [\"samba\"]\n")).cfg,
                            legacy(kHacf, "auth 1\n1 sha1 k\n", "alpha samba\n").cfg}) {
        EXPECT_EQ(c.resource_defaults.start_timeout, seconds(60));
        EXPECT_EQ(c.resource_defaults.stop_timeout, seconds(60));
        EXPECT_EQ(c.resource_defaults.monitor_timeout, seconds(20));
        EXPECT_EQ(c.resource_defaults.monitor_interval, seconds(10));
        EXPECT_EQ(c.policy.migration_threshold, 3);
        EXPECT_EQ(c.policy.on_stop_failure, Policy::OnStopFailure::Block);
        EXPECT_EQ(c.policy.stop_retries, 2);
        EXPECT_EQ(c.policy.failure_timeout, milliseconds(0));
        EXPECT_EQ(c.mail.relay, "localhost:25");
        EXPECT_EQ(c.mail.from, "");
        EXPECT_TRUE(c.mail.starttls);
        EXPECT_FALSE(c.mail.tls_verify);
        ASSERT_EQ(c.groups.size(), 1u);
        const Group& g = c.groups[0];
        EXPECT_FALSE(g.auto_failback);
        EXPECT_FALSE(g.migration_threshold);
        EXPECT_FALSE(g.on_stop_failure);
        const Resource& r = g.resources[0];
        EXPECT_THAT(r.params, IsEmpty());
        EXPECT_FALSE(r.start_timeout || r.stop_timeout || r.monitor_timeout || r.monitor_interval || r.monitor);
    }
}

TEST(Chain, EveryKey) {
    auto p = toml_final(toml_base(R"([resources]
start_timeout = "90s"
stop_timeout = 120
monitor_timeout = "30s"
monitor_interval = "15s"

[policy]
migration_threshold = 5
on_stop_failure = "reboot"
stop_retries = 4
failure_timeout = "600s"

[mail]
relay = "smtp.example.org:587"
from = "duet@example.org"
starttls = false
tls_verify = false

[[group]]
name = "share"
home = "alpha"
auto_failback = true
migration_threshold = 1
on_stop_failure = "block"
resources = [
    "IPaddr::198.51.100.20/24/eth0",
    { agent = "Filesystem", args = ["/dev/duet/r0", "/data", "ext4"], params = { options = "noatime", run_fsck = true, count = 3 }, start_timeout = "20s", stop_timeout = "25s", monitor_timeout = "10s", monitor_interval = "5s", monitor = true },
    { agent = "MailTo", args = ["root", "Duet share"], monitor = false },
]
)"));
    EXPECT_THAT(p.lines(), IsEmpty());
    const Config& c = p.cfg;
    EXPECT_EQ(c.resource_defaults.start_timeout, seconds(90));
    EXPECT_EQ(c.resource_defaults.stop_timeout, seconds(120));
    EXPECT_EQ(c.resource_defaults.monitor_timeout, seconds(30));
    EXPECT_EQ(c.resource_defaults.monitor_interval, seconds(15));
    EXPECT_EQ(c.policy.migration_threshold, 5);
    EXPECT_EQ(c.policy.on_stop_failure, Policy::OnStopFailure::Reboot);
    EXPECT_EQ(c.policy.stop_retries, 4);
    EXPECT_EQ(c.policy.failure_timeout, seconds(600));
    EXPECT_EQ(c.mail.relay, "smtp.example.org:587");
    EXPECT_EQ(c.mail.from, "duet@example.org");
    EXPECT_FALSE(c.mail.starttls);
    EXPECT_FALSE(c.mail.tls_verify);
    EXPECT_EQ(c.origins.keys.at("[policy] stop_retries").str(), "duet.toml:17");
    EXPECT_EQ(c.origins.keys.at("[resources] monitor_interval").str(), "duet.toml:12");
    EXPECT_EQ(c.origins.keys.at("[mail] from").str(), "duet.toml:22");

    ASSERT_EQ(c.groups.size(), 1u);
    const Group& g = c.groups[0];
    EXPECT_EQ(g.name, "share");
    EXPECT_EQ(g.auto_failback, true);
    EXPECT_EQ(g.migration_threshold, 1);
    EXPECT_EQ(g.on_stop_failure, Policy::OnStopFailure::Block);
    EXPECT_EQ(g.key_origins.at("migration_threshold").str(), "duet.toml:30");
    ASSERT_EQ(g.resources.size(), 3u);
    const Resource& ip = g.resources[0];
    EXPECT_EQ(ip.agent, "IPaddr");
    EXPECT_THAT(ip.args, ElementsAre("198.51.100.20/24/eth0"));
    EXPECT_EQ(ip.origin.str(), "duet.toml:33");
    const Resource& fs = g.resources[1];
    EXPECT_EQ(fs.agent, "Filesystem");
    EXPECT_THAT(fs.args, ElementsAre("/dev/duet/r0", "/data", "ext4"));
    EXPECT_THAT(fs.params, UnorderedElementsAre(Pair("options", "noatime"), Pair("run_fsck", "true"), Pair("count", "3")));
    EXPECT_EQ(fs.start_timeout, seconds(20));
    EXPECT_EQ(fs.stop_timeout, seconds(25));
    EXPECT_EQ(fs.monitor_timeout, seconds(10));
    EXPECT_EQ(fs.monitor_interval, seconds(5));
    EXPECT_EQ(fs.monitor, true);
    EXPECT_EQ(fs.origin.str(), "duet.toml:34");
    EXPECT_EQ(fs.key_origins.at("monitor_interval").str(), "duet.toml:34");
    EXPECT_EQ(fs.key_origins.at("monitor_interval").key, "[[group]] resources monitor_interval");
    const Resource& mail = g.resources[2];
    EXPECT_THAT(mail.args, ElementsAre("root", "Duet share"));
    EXPECT_EQ(mail.origin.str(), "duet.toml:35");
    EXPECT_EQ(mail.monitor, false);
    EXPECT_FALSE(mail.monitor_interval);
}

TEST(Chain, ArrayOfTablesResources) {
    auto p = toml_final(toml_base(R"([[group]]
name = "web"
home = "beta"

[[group.resources]]
agent = "IPaddr2"
params = { ip = "198.51.100.21", cidr_netmask = 24, nic = "eth0" }

[[group.resources]]
agent = "apache"
monitor_interval = "30s"

[[group]]
home = "alpha"
resources = ["samba"]
)"));
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 2u);
    const Group& g = p.cfg.groups[0];
    ASSERT_EQ(g.resources.size(), 2u);
    EXPECT_EQ(g.resources[0].agent, "IPaddr2");
    EXPECT_THAT(g.resources[0].args, IsEmpty());
    EXPECT_THAT(g.resources[0].params, UnorderedElementsAre(Pair("ip", "198.51.100.21"), Pair("cidr_netmask", "24"), Pair("nic", "eth0")));
    EXPECT_EQ(g.resources[0].origin.str(), "duet.toml:12");
    EXPECT_EQ(g.resources[0].key_origins.at("params").str(), "duet.toml:14");
    EXPECT_EQ(g.resources[1].monitor_interval, seconds(30));
    EXPECT_EQ(g.resources[1].key_origins.at("monitor_interval").key, "[[group.resources]] monitor_interval");
    EXPECT_EQ(p.cfg.groups[1].name, "samba");

    auto bad = toml(toml_base("[[group]]\nhome = \"alpha\"\n[[group.resources]]\nagent = \"x\"\nmonitor_intervall = 3\n"));
    EXPECT_THAT(bad.lines(), ElementsAre(Diag("duet.toml:12: error: [[group.resources]] monitor_intervall: ",
                                              "unknown key in [[group.resources]] (did you mean 'monitor_interval'?)")));
}

TEST(Chain, TheDefaultNameOfATableResourceIsItsHaresourcesText) {
    auto p = toml_final(toml_base(std::string(kGroupHead) +
                                  "resources = [{ agent = \"Filesystem\", args = [\"/dev/duet/r0\", \"/data\"] }, \"samba\"]\n"));
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.groups[0].name, "Filesystem::/dev/duet/r0::/data");
}

TEST(Chain, ParamValues) {
    auto p = toml(toml_base(std::string(kGroupHead) + R"(resources = [
  { agent = "a", params = { s = "text with spaces", i = -7, t = true, f = false, e = "" } },
  { agent = "b", params = { x = 1.5 } },
  { agent = "c", params = { x = [1] } },
  { agent = "d", params = { x = 1979-05-27 } },
  { agent = "e", params = { 1x = "a" } },
  { agent = "f", params = { "a-b" = "a" } },
  { agent = "g", params = { "" = "a" } },
  { agent = "h", params = { x = "bell\u0007" } },
  { agent = "i", params = "ip=1" },
])"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:12: error: [[group]] resources params x: ", "expected a parameter value: a string, an integer or a boolean, got a floating-point number"),
                            Diag("duet.toml:13: error: [[group]] resources params x: ", "got an array"),
                            Diag("duet.toml:14: error: [[group]] resources params x: ", "got a date"),
                            Diag("duet.toml:15: error: [[group]] resources params: ", "expected a parameter name (letters, digits and '_', not starting with a digit: it becomes OCF_RESKEY_<name>), got '1x'"),
                            Diag("duet.toml:16: error: [[group]] resources params: ", "got 'a-b'"),
                            Diag("duet.toml:17: error: [[group]] resources params: ", "got ''"),
                            Diag("duet.toml:18: error: [[group]] resources params x: ", "the value contains control character 0x07"),
                            Diag("duet.toml:19: error: [[group]] resources params: ", "expected a table of OCF parameters, such as { nic = \"eth0\", cidr_netmask = 24 }, got a string")));
    EXPECT_THAT(p.cfg.groups, IsEmpty());  // a group with a bad resource is dropped
    auto ok = toml(toml_base(std::string(kGroupHead) + "resources = [{ agent = \"a\", params = { s = \"text with spaces\", i = -7, t = true, f = false, e = \"\" } }]\n"));
    EXPECT_THAT(ok.lines(), IsEmpty());
    ASSERT_EQ(ok.cfg.groups.size(), 1u);
    EXPECT_THAT(ok.cfg.groups[0].resources[0].params,
                UnorderedElementsAre(Pair("s", "text with spaces"), Pair("i", "-7"), Pair("t", "true"), Pair("f", "false"), Pair("e", "")));
}

TEST(Chain, ResourceTableErrors) {
    auto p = toml(toml_base(std::string(kGroupHead) + R"(resources = [
  { args = ["x"] },
  { agent = 3 },
  { agent = "198.51.100.20/24" },
  { agent = "../bin/sh" },
  { agent = "a", args = "x" },
  { agent = "a", args = ["x", 2, "", "bell\u0007"] },
  { agent = "a", start_timeout = "soon", stop_timeout = -1, monitor_timeout = 1.5, monitor_interval = true },
  { agent = "a", monitor = "no" },
  { agent = "a", monitr = false },
  7,
  ["samba"],
])"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:11: error: [[group]] resources: ", "missing agent = \"NAME\""),
                            Diag("duet.toml:12: error: [[group]] resources agent: ", "expected a resource agent's name (such as \"IPaddr\" or \"Filesystem\"), got an integer"),
                            Diag("duet.toml:13: error: [[group]] resources agent: ", "got the address '198.51.100.20/24'; write agent = \"IPaddr\", args = [\"198.51.100.20/24\"]"),
                            Diag("duet.toml:14: error: [[group]] resources agent: ", "got '../bin/sh'"),
                            Diag("duet.toml:15: error: [[group]] resources args: ", "expected an array of positional arguments (strings)"),
                            Diag("duet.toml:16: error: [[group]] resources args: ", "expected an argument (a string), got an integer"),
                            Diag("duet.toml:16: error: [[group]] resources args: ", "argument 3 is empty"),
                            Diag("duet.toml:16: error: [[group]] resources args: ", "argument 4 contains control character 0x07"),
                            Diag("duet.toml:17: error: [[group]] resources monitor_interval: ", "got a boolean"),
                            Diag("duet.toml:17: error: [[group]] resources monitor_timeout: ", "got a floating-point number"),
                            Diag("duet.toml:17: error: [[group]] resources start_timeout: ", "expected a duration: integer seconds, or a string such as \"2s\", \"500ms\" or \"1.5s\", got 'soon'"),
                            Diag("duet.toml:17: error: [[group]] resources stop_timeout: ", "got -1"),
                            Diag("duet.toml:18: error: [[group]] resources monitor: ", "expected true or false, got a string"),
                            Diag("duet.toml:19: error: [[group]] resources monitr: ", "unknown key in [[group]] resources (did you mean 'monitor'?); expected one of: agent args params start_timeout stop_timeout monitor_timeout monitor_interval monitor"),
                            Diag("duet.toml:20: error: [[group]] resources: ", "expected a resource: a string such as \"Filesystem::/dev/duet/r0::/data::ext4\", or a table such as { agent = \"IPaddr\", args = [\"198.51.100.20/24/eth0\"] }, got an integer"),
                            Diag("duet.toml:21: error: [[group]] resources: ", "got an array")));
    EXPECT_THAT(p.cfg.groups, IsEmpty());
}

TEST(Chain, GroupOptionErrors) {
    auto p = toml(toml_base(R"([[group]]
home = "alpha"
resources = ["samba"]
auto_failback = "yes"
migration_threshold = "3"
on_stop_failure = "panic"
[[group]]
home = "alpha"
resources = ["samba"]
migration_threshold = 10000000000
on_stop_failure = 1
auto_failbak = true
)"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:11: error: [[group]] auto_failback: ", "expected true or false, got a string"),
                            Diag("duet.toml:12: error: [[group]] migration_threshold: ", "expected an integer >= 1 (failures on a node before the group moves to the peer), got a string"),
                            Diag("duet.toml:13: error: [[group]] on_stop_failure: ", "expected \"block\" (keep the group stopped, never start it on the other node) or \"reboot\" (reboot this node, as Heartbeat did), got 'panic'"),
                            Diag("duet.toml:17: error: [[group]] migration_threshold: ", "got 10000000000"),
                            Diag("duet.toml:18: error: [[group]] on_stop_failure: ", "expected \"block\" or \"reboot\", got an integer"),
                            Diag("duet.toml:19: error: [[group]] auto_failbak: ", "unknown key in [[group]] (did you mean 'auto_failback'?); expected one of: name home auto_failback migration_threshold on_stop_failure resources")));
    EXPECT_THAT(p.cfg.groups, IsEmpty());
}

TEST(Chain, TableErrors) {
    auto p = toml(R"(resources = "60s"
policy = 3
mail = ["localhost"]
)");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:1: error: [resources]: ", "expected a table [resources], got a string"),
                                       Diag("duet.toml:2: error: [policy]: ", "expected a table [policy], got an integer"),
                                       Diag("duet.toml:3: error: [mail]: ", "expected a table [mail], got an array")));
    auto q = toml(R"([resources]
start_timeout = "1 minute"
timeout = 3
[policy]
migration_threshold = 2.5
on_stop_failure = "Reboot"
stop_retries = "2"
failure_timeout = -5
failure_timout = 3
[mail]
relay = ""
from = 3
starttls = "yes"
tls_verify = 1
smarthost = "x"
)");
    EXPECT_THAT(q.lines(),
                ElementsAre(Diag("duet.toml:2: error: [resources] start_timeout: ", "expected a duration: integer seconds, or a string such as \"2s\", \"500ms\" or \"1.5s\", got '1 minute'"),
                            Diag("duet.toml:3: error: [resources] timeout: ", "unknown key in [resources]; expected one of: start_timeout stop_timeout monitor_timeout monitor_interval"),
                            Diag("duet.toml:5: error: [policy] migration_threshold: ", "got a floating-point number"),
                            Diag("duet.toml:6: error: [policy] on_stop_failure: ", "got 'Reboot'"),
                            Diag("duet.toml:7: error: [policy] stop_retries: ", "expected an integer from 0 to 100 (retries of a failed stop), got a string"),
                            Diag("duet.toml:8: error: [policy] failure_timeout: ", "got -5"),
                            Diag("duet.toml:9: error: [policy] failure_timout: ", "unknown key in [policy] (did you mean 'failure_timeout'?)"),
                            Diag("duet.toml:11: error: [mail] relay: ", "got an empty string"),
                            Diag("duet.toml:12: error: [mail] from: ", "expected a sender address, such as \"duet@example.org\", got an integer"),
                            Diag("duet.toml:13: error: [mail] starttls: ", "expected true or false, got a string"),
                            Diag("duet.toml:14: error: [mail] tls_verify: ", "expected true or false, got an integer"),
                            Diag("duet.toml:15: error: [mail] smarthost: ", "unknown key in [mail]; expected one of: relay from starttls tls_verify")));
    // Nothing bad was stored.
    EXPECT_TRUE(same_settings(q.cfg, Config{}));
}

TEST(Chain, TypoedTablesAreNamed) {
    auto p = toml("[polcy]\n[resource]\nx = 1\n[mali]\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:1: error: polcy: ", "unknown key (did you mean 'policy'?)"),
                                       Diag("duet.toml:2: error: resource: ", "unknown key (did you mean 'resources'?)"),
                                       Diag("duet.toml:4: error: mali: ", "unknown key (did you mean 'mail'?)")));
}

TEST(Chain, ResourcesAreEitherAnArrayOrTables) {
    // TOML itself refuses [[group.resources]] after resources = [...] in the same group.
    auto p = toml(toml_base(std::string(kGroupHead) + "resources = [\"samba\"]\n[[group.resources]]\nagent = \"x\"\n"));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:11:", "error: TOML syntax: ")));
}

TEST(Chain, TimeoutsArePositiveAndAtMostADay) {
    auto p = toml_final(toml_base(R"([resources]
start_timeout = 0
stop_timeout = 86401
monitor_timeout = "86400s"
monitor_interval = 0
)"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:9: error: [resources] start_timeout: ", "start_timeout must be greater than 0"),
                            Diag("duet.toml:10: error: [resources] stop_timeout: ", "expected a duration of at most 24h (86400s), got 86401s"),
                            Diag("duet.toml:12: error: [resources] monitor_interval: ", "monitor_interval must be greater than 0 (to stop monitoring a resource, set monitor = false on it)")));
    auto r = toml_final(toml_base(std::string(kGroupHead) + R"(resources = [
  { agent = "samba", start_timeout = 0, stop_timeout = "0ms" },
  { agent = "proftpd", monitor_timeout = 90000, monitor_interval = 0 },
])"));
    EXPECT_THAT(r.lines(),
                ElementsAre(Diag("duet.toml:11: error: [[group]] resources start_timeout: ", "resource 'samba': start_timeout must be greater than 0"),
                            Diag("duet.toml:11: error: [[group]] resources stop_timeout: ", "resource 'samba': stop_timeout must be greater than 0"),
                            Diag("duet.toml:12: error: [[group]] resources monitor_timeout: ", "resource 'proftpd': expected a duration of at most 24h (86400s), got 90000s"),
                            Diag("duet.toml:12: error: [[group]] resources monitor_interval: ", "resource 'proftpd': monitor_interval must be greater than 0")));
}

TEST(Chain, MonitorIntervalBelowOneSecondIsAWarning) {
    auto p = toml_final(toml_base("[resources]\nmonitor_interval = \"500ms\"\n" + std::string(kGroupHead) +
                                  "resources = [{ agent = \"samba\", monitor_interval = \"999ms\" }, { agent = \"x\", monitor_interval = \"1s\" }]\n"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:9: warning: [resources] monitor_interval: ", "monitor_interval (500ms) is below 1s: the agent's monitor would run more than once a second; try 1s or more"),
                            Diag("duet.toml:12: warning: [[group]] resources monitor_interval: ", "resource 'samba': monitor_interval (999ms) is below 1s")));
    EXPECT_FALSE(p.diag.has_errors());
}

TEST(Chain, MonitorFalseMakesMonitorTimingsMoot) {
    auto p = toml_final(toml_base(std::string(kGroupHead) +
                                  "resources = [{ agent = \"samba\", monitor = false, monitor_interval = \"5s\", monitor_timeout = 9, start_timeout = 5 }]\n"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:10: warning: [[group]] resources monitor_timeout: ", "resource 'samba': monitor_timeout has no effect: monitor = false turns monitoring off"),
                            Diag("duet.toml:10: warning: [[group]] resources monitor_interval: ", "monitor_interval has no effect")));
}

TEST(Chain, PolicyRanges) {
    auto p = toml_final(toml_base("[policy]\nmigration_threshold = 0\nstop_retries = -1\nfailure_timeout = 86401\n"
                                  "[[group]]\nhome = \"alpha\"\nresources = [\"samba\"]\nmigration_threshold = -2\n"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:9: error: [policy] migration_threshold: ", "expected an integer >= 1 (failures on a node before the group moves to the peer), got 0"),
                            Diag("duet.toml:10: error: [policy] stop_retries: ", "expected an integer from 0 to 100 (retries of a failed stop), got -1"),
                            Diag("duet.toml:11: error: [policy] failure_timeout: ", "expected a duration from 0 (failures never expire) to 24h (86400s), got 86401000ms"),
                            Diag("duet.toml:15: error: [[group]] migration_threshold: ", "got -2")));
    auto q = toml_final(toml_base("[policy]\nstop_retries = 101\n"));
    EXPECT_THAT(q.lines(), ElementsAre(Diag("duet.toml:9: error: [policy] stop_retries: ", "got 101")));
    auto ok = toml_final(toml_base("[policy]\nmigration_threshold = 1\nstop_retries = 0\nfailure_timeout = 0\n"));
    EXPECT_THAT(ok.lines(), IsEmpty());
    EXPECT_EQ(ok.cfg.policy.stop_retries, 0);
}

TEST(Chain, ProgrammaticValuesAreCheckedToo) {
    Config c;
    c.nodes = {"a", "b"};
    c.auth.secret = "k";
    c.paths.push_back(Path{PathKind::Bcast, "eth0", "", 694});
    c.resource_defaults.monitor_timeout = milliseconds(0);
    c.policy.migration_threshold = 0;
    Resource r{"samba", {}};
    r.params["bad name"] = "x";
    r.params["nl"] = "a\nb";
    r.stop_timeout = milliseconds(-1);
    Group g{"g", "a", {r}};
    g.migration_threshold = 0;
    c.groups.push_back(g);
    Diagnostics d;
    finalize(c, d);
    EXPECT_THAT(strs(d), ElementsAre(Diag("error: [resources] monitor_timeout: ", "monitor_timeout must be greater than 0"),
                                     Diag("error: [policy] migration_threshold: ", "got 0"),
                                     Diag("error: [[group]] migration_threshold: ", "got 0"),
                                     Diag("error: [[group]] resources stop_timeout: ", "resource 'samba': stop_timeout must be greater than 0"),
                                     Diag("error: [[group]] resources params: ", "resource 'samba': expected a parameter name"),
                                     Diag("error: [[group]] resources params: ", "the value of nl contains control character 0x0A")));
}

TEST(Chain, MailRelayAndSender) {
    for (const char* relay : {"localhost", "localhost:25", "smtp.example.org:587", "198.51.100.25", "198.51.100.25:2525",
                              "[2001:db8::25]", "[2001:db8::25]:25", "mail_relay-1.example"}) {
        auto p = toml_final(toml_base(std::string("[mail]\nrelay = \"") + relay + "\"\n"));
        EXPECT_THAT(p.lines(), IsEmpty()) << relay;
    }
    const std::pair<const char*, const char*> bad_relays[] = {
        {"2001:db8::25", "an IPv6 address needs brackets, such as [2001:db8::25]:25"},
        {"smtp:", "no port after ':'"},
        {"smtp:0", "port '0' is not a number from 1 to 65535"},
        {"smtp:70000", "port '70000' is not a number from 1 to 65535"},
        {"smtp:25x", "port '25x'"},
        {"smtp host", "'smtp host' is not a host name or an IPv4 address"},
        {"-smtp", "is not a host name"},
        {":25", "'' is not a host name"},
        {"[198.51.100.25]:25", "'198.51.100.25' between brackets is not an IPv6 address"},
        {"[2001:db8::25", "'[' without ']'"},
        {"[2001:db8::25]25", "expected ':PORT' after ']'"},
        {"[2001:db8::25]:", "no port after ':'"},
    };
    for (const auto& [relay, why] : bad_relays) {
        auto p = toml_final(toml_base(std::string("[mail]\nrelay = \"") + relay + "\"\n"));
        EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:9: error: [mail] relay: ",
                                                "expected an SMTP relay as HOST, HOST:PORT or [IPv6]:PORT (such as \"localhost:25\"), got")))
            << relay;
        EXPECT_THAT(p.lines(), ElementsAre(HasSubstr(why))) << relay;
    }
    for (const char* from : {"duet@example.org", "ha+alerts@mail.example.org", "root@localhost"}) {
        auto p = toml_final(toml_base(std::string("[mail]\nfrom = \"") + from + "\"\n"));
        EXPECT_THAT(p.lines(), IsEmpty()) << from;
    }
    for (const char* from : {"Duet <duet@example.org>", "duet", "duet@", "@example.org", "a@b@example.org", "du et@example.org",
                             "duet@exa_mple.org", "duet@.example.org", "duet@example..org", "duet@example.org."}) {
        auto p = toml_final(toml_base(std::string("[mail]\nfrom = \"") + from + "\"\n"));
        EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:9: error: [mail] from: ",
                                                "expected a bare sender address such as \"duet@example.org\" (no name, no angle brackets), got")))
            << from;
    }
}

TEST(Chain, TlsVerifyWithoutStarttlsIsAWarning) {
    auto p = toml_final(toml_base("[mail]\nstarttls = false\ntls_verify = true\n"));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:10: warning: [mail] tls_verify: ",
                                            "tls_verify = true has no effect with starttls = false: mail goes to the relay unencrypted")));
    EXPECT_THAT(toml_final(toml_base("[mail]\ntls_verify = true\n")).lines(), IsEmpty());
}

TEST(Chain, DefaultGroupNameWithSpacesIsMadeSafe) {
    auto p = toml_final(toml_base(std::string(kGroupHead) + "resources = [\n  \"MailTo::root::Duet  share\\u00a0now\",\n  \"samba\",\n]\n"));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:11: warning: [[group]] name: ",
                                            "the group's default name (its first resource, 'MailTo::root::Duet  share\u00a0now') contains spaces; "
                                            "it is named 'MailTo::root::Duet_share_now' (for hactl); set name = \"...\" to choose another")));
    EXPECT_EQ(p.cfg.groups[0].name, "MailTo::root::Duet_share_now");
    EXPECT_THAT(p.cfg.groups[0].resources[0].args, ElementsAre("root", "Duet  share\u00a0now"));  // the subject is untouched
}

TEST(Chain, ChosenGroupNamesMustBeTypable) {
    auto p = toml_final(toml_base(R"([[group]]
name = "my share"
home = "alpha"
resources = ["samba"]
[[group]]
name = "-share"
home = "alpha"
resources = ["proftpd"]
[[group]]
name = "nbsp\u00a0share"
home = "alpha"
resources = ["x"]
[[group]]
name = "partage-données"
home = "alpha"
resources = ["y"]
)"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:9: error: [[group]] name: ", "the group name 'my share' cannot be typed as `hactl cleanup NAME`: it contains spaces or unprintable characters; expected printable characters without spaces, such as 'my_share'"),
                            Diag("duet.toml:13: error: [[group]] name: ", "it starts with '-', which hactl would read as an option; expected printable characters without spaces"),
                            Diag("duet.toml:17: error: [[group]] name: ", "it contains spaces or unprintable characters")));
    EXPECT_THAT(p.lines()[1], Not(HasSubstr("such as")));
}

TEST(Chain, ADerivedNameMayCollide) {
    auto p = toml_final(toml_base(R"([[group]]
home = "alpha"
resources = ["MailTo::root::a b"]
[[group]]
home = "beta"
resources = ["MailTo::root::a_b"]
)"));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("duet.toml:10: warning: [[group]] name: ", "it is named 'MailTo::root::a_b'"),
                                       Diag("duet.toml:12: error: [[group]] name: ",
                                            "a second group named 'MailTo::root::a_b' (the first is at duet.toml:9); group names must be unique; give one of them a name = \"...\"")));
}

TEST(Chain, TwoGroupsCannotShareAnAddress) {
    auto p = toml_final(toml_base(R"([[group]]
name = "share"
home = "alpha"
resources = ["198.51.100.20/24/eth0", "Filesystem::/dev/duet/r0::/data::ext4"]
[[group]]
name = "ftp"
home = "beta"
resources = [
  "IPaddr2::198.51.100.20/24",
  { agent = "Filesystem", args = ["/dev/duet/r1", "/data/", "ext4"] },
]
[[group]]
name = "v6"
home = "beta"
resources = ["IPv6addr::2001:db8::20/64", { agent = "IPaddr", params = { ip = "2001:0db8:0:0::20" } }]
)"));
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("duet.toml:16: error: [[group]] resources: ", "the address '198.51.100.20' is also in group 'share' at duet.toml:11: two groups cannot share an address (the one would take it from the other)"),
                            Diag("duet.toml:17: error: [[group]] resources args: ", "the directory '/data' is also in group 'share' at duet.toml:11: two groups cannot share a mount point"),
                            Diag("duet.toml:22: error: [[group]] resources params: ", "the address '2001:db8::20' appears twice in group 'v6' (also at duet.toml:22)")));
}

TEST(Chain, NamedParametersOverridePositionalArguments) {
    // The IPaddr below runs with ip=198.51.100.21, whatever its positional argument says.
    auto p = toml_final(toml_base(R"([[group]]
name = "a"
home = "alpha"
resources = ["198.51.100.20", "Filesystem::/dev/duet/r0::/data::ext4"]
[[group]]
name = "b"
home = "beta"
resources = [{ agent = "IPaddr", args = ["198.51.100.20"], params = { ip = "198.51.100.21" } },
             { agent = "Filesystem", args = ["/dev/duet/r0", "/data", "ext4"], params = { directory = "/srv" } }]
)"));
    EXPECT_THAT(p.lines(), IsEmpty());
    auto q = toml_final(toml_base(R"([[group]]
name = "a"
home = "alpha"
resources = ["198.51.100.20"]
[[group]]
name = "b"
home = "beta"
resources = [{ agent = "IPaddr", args = ["198.51.100.21"], params = { ip = "198.51.100.20" } }]
)"));
    EXPECT_THAT(q.lines(), ElementsAre(Diag("duet.toml:15: error: [[group]] resources params: ", "the address '198.51.100.20' is also in group 'a' at duet.toml:11")));
}

TEST(Chain, SharedResourcesInHaresources) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 k\n",
                    "alpha 198.51.100.20 Filesystem::/dev/drbd0::/data::ext3 samba\n"
                    "beta IPaddr::198.51.100.21 Filesystem::/dev/drbd1::/data::ext3 proftpd\n"
                    "beta IPaddr::198.51.100.20/24/eth0\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("haresources:2: error: Filesystem::/dev/drbd1::/data::ext3: ", "the directory '/data' is also in group '198.51.100.20' at haresources:1"),
                            Diag("haresources:3: error: IPaddr::198.51.100.20/24/eth0: ", "the address '198.51.100.20' is also in group '198.51.100.20' at haresources:1")));
    // Other agents are never compared: two groups may well both send mail to root.
    auto q = legacy(kHacf, "auth 1\n1 sha1 k\n", "alpha 198.51.100.20 MailTo::root\nbeta 198.51.100.21 MailTo::root\n");
    EXPECT_THAT(q.lines(), IsEmpty());
}

}  // namespace
}  // namespace duet::config::test
