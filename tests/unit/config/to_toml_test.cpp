// to_toml(): the effective configuration as duet.toml, read back to the same model.
#include "helpers.hpp"

#include <functional>
#include <stdexcept>

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Prints, reads back, finalizes: no message, same settings.
void expect_round_trip(const Config& c) {
    std::string text = to_toml(c, true);
    Parsed back;
    parse_toml(text, "printed.toml", back.cfg, back.diag);
    if (!back.cfg.auth.key_file.empty()) back.cfg.auth.secret = c.auth.secret;  // as load() reads it
    for (Replica& r : back.cfg.replicas)
        for (const Replica& orig : c.replicas)
            if (r.name == orig.name && !r.secret_file.empty()) r.secret = orig.secret;
    finalize(back.cfg, back.diag);
    EXPECT_THAT(back.lines(), IsEmpty()) << text;
    EXPECT_TRUE(same_settings(c, back.cfg)) << text << "\n---\n" << to_toml(back.cfg, true);
}

// A seed's ha.cf, authkeys and haresources with the seeds' drbd.conf (which defines their
// drbddisk::r0), parsed and finalized.
Parsed seed_files(const std::string& seed) {
    std::string dir = source_dir() + "/tests/fixtures/seeds/" + seed + "/";
    std::string drbd = source_dir() + "/tests/fixtures/seeds-drbd/drbd.conf";
    Parsed p;
    parse_hacf(read_text(dir + "ha.cf"), "ha.cf", p.cfg, p.diag);
    parse_authkeys(read_text(dir + "authkeys"), "authkeys", p.cfg, p.diag);
    parse_haresources(read_text(dir + "haresources"), "haresources", p.cfg, p.diag);
    parse_drbdconf(read_text(drbd), drbd, p.cfg, p.diag, read_included_files);
    finalize(p.cfg, p.diag);
    return p;
}

TEST(ToToml, RoundTripFromTheSeeds) {
    for (const char* seed : {"samba", "ftp"}) {
        auto p = seed_files(seed);
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
    auto p = toml(toml_base("[[group]]\nname = \"quote\\\"back\\\\slash-ünï€\"\nhome = \"alpha\"\n"
                            "resources = [\"MailTo::root::a \\\"b\\\"\", { agent = \"X\", args = [\"tab\\there\"], params = { \"q\" = \"\\\"\\\\ ü\" } }]\n"));
    p.cfg.auth.secret = "quote\" back\\slash tab\t ünï \u20ac";
    finalize(p.cfg, p.diag);
    ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
    expect_round_trip(p.cfg);
}

TEST(ToToml, RoundTripOfEveryChainOption) {
    auto p = toml(toml_base(R"([resources]
start_timeout = "90s"
stop_timeout = "1500ms"
monitor_timeout = 30
monitor_interval = "2.5s"
[policy]
migration_threshold = 1
on_stop_failure = "reboot"
stop_retries = 0
failure_timeout = 600
[mail]
relay = "[2001:db8::25]:587"
from = "ha@example.org"
starttls = false
tls_verify = false
[[group]]
name = "share"
home = "alpha"
auto_failback = false
migration_threshold = 7
on_stop_failure = "block"
resources = [
  "198.51.100.20/24/eth0",
  { agent = "Filesystem", args = ["/dev/duet/r0", "/data", "ext4"], params = { options = "noatime,\"x\"", "fsck" = true }, start_timeout = "20s", stop_timeout = "25s", monitor_timeout = "10s", monitor_interval = "1500ms", monitor = true },
  { agent = "MailTo", args = ["root", "Duet share"], monitor = false },
]
[[group]]
home = "beta"
auto_failback = true
[[group.resources]]
agent = "IPaddr2"
params = { ip = "2001:db8::20", cidr_netmask = 64 }
[[group.resources]]
agent = "samba"
)"));
    finalize(p.cfg, p.diag);
    ASSERT_THAT(p.lines(), IsEmpty());
    expect_round_trip(p.cfg);
    std::string out = to_toml(p.cfg);
    EXPECT_THAT(out, HasSubstr("\n[resources]\nstart_timeout = \"90s\"\nstop_timeout = \"1500ms\"\nmonitor_timeout = \"30s\"\nmonitor_interval = \"2500ms\"\n"));
    EXPECT_THAT(out, HasSubstr("\n[policy]\nmigration_threshold = 1\non_stop_failure = \"reboot\"\nstop_retries = 0\nfailure_timeout = \"600s\"\n"));
    EXPECT_THAT(out, HasSubstr("\n[mail]\nrelay = \"[2001:db8::25]:587\"\nfrom = \"ha@example.org\"\nstarttls = false\n\n"));
    EXPECT_THAT(out, HasSubstr("name = \"share\"\nhome = \"alpha\"\nauto_failback = false\nmigration_threshold = 7\non_stop_failure = \"block\"\n"
                               "resources = [\n"
                               "    \"IPaddr::198.51.100.20/24/eth0\",\n"
                               "    { agent = \"Filesystem\", args = [\"/dev/duet/r0\", \"/data\", \"ext4\"], params = { fsck = \"true\", options = \"noatime,\\\"x\\\"\" }, "
                               "start_timeout = \"20s\", stop_timeout = \"25s\", monitor_timeout = \"10s\", monitor_interval = \"1500ms\", monitor = true },\n"
                               "    { agent = \"MailTo\", args = [\"root\", \"Duet share\"], monitor = false },\n"
                               "]\n"));
    EXPECT_THAT(out, HasSubstr("name = \"IPaddr2\"\nhome = \"beta\"\nauto_failback = true\nresources = [\n"
                               "    { agent = \"IPaddr2\", params = { cidr_netmask = \"64\", ip = \"2001:db8::20\" } },\n    \"samba\",\n]\n"));
}

TEST(ToToml, HeartbeatConfigurationsStayShort) {
    auto p = seed_files("samba");
    ASSERT_FALSE(p.diag.has_errors()) << p.diag.str();
    std::string out = to_toml(p.cfg);
    for (const char* absent : {"[resources]", "[policy]", "[mail]", "{", "migration_threshold", "on_stop_failure", "timeout", "monitor"})
        EXPECT_THAT(out, Not(HasSubstr(absent))) << absent;
    EXPECT_THAT(out, HasSubstr("resources = [\"IPaddr::198.51.100.20\", \"drbddisk::r0\", \"Filesystem::/dev/drbd0::/data::ext3\", \"samba\", "
                               "\"MailTo::admin@domain.fr::Subject\"]\n"));
}

TEST(ToToml, OnlyWhatDiffersFromTheDefaultsIsPrinted) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 k\n", "alpha samba\n");
    p.cfg.policy.stop_retries = 5;
    p.cfg.mail.tls_verify = true;
    p.cfg.resource_defaults.monitor_interval = std::chrono::seconds(30);
    p.cfg.groups[0].resources[0].monitor = true;  // set, even to its default: printed
    std::string out = to_toml(p.cfg);
    EXPECT_THAT(out, HasSubstr("\n[resources]\nmonitor_interval = \"30s\"\n\n[policy]\nstop_retries = 5\n\n[mail]\ntls_verify = true\n\n[[path]]"));
    EXPECT_THAT(out, HasSubstr("resources = [\n    { agent = \"samba\", monitor = true },\n]\n"));
    expect_round_trip(p.cfg);
}

TEST(ToToml, ResourcesThatNoStringCanHoldArePrintedAsTables) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 k\n", "alpha samba\n");
    std::vector<Resource>& rs = p.cfg.groups[0].resources;
    rs.push_back(Resource{"X", {"x::y"}});                      // '::' would split it
    rs.push_back(Resource{"IPaddr", {"2001:db8::1", "eth0"}});  // the address would swallow the next argument
    rs.push_back(Resource{"198.51.100.7", {}});                 // would read as IPaddr::198.51.100.7
    rs.push_back(Resource{"Y", {"with space", "/x"}});          // fine as a string
    rs[0].params["p"] = "v";
    std::string out = to_toml(p.cfg);
    EXPECT_THAT(out, HasSubstr("resources = [\n    { agent = \"samba\", params = { p = \"v\" } },\n"
                               "    { agent = \"X\", args = [\"x::y\"] },\n"
                               "    { agent = \"IPaddr\", args = [\"2001:db8::1\", \"eth0\"] },\n"
                               "    { agent = \"198.51.100.7\" },\n"
                               "    \"Y::with space::/x\",\n]\n"));
    // As printed, the tables read back (the agent that looks like an address is refused by the reader).
    rs.erase(rs.begin() + 3);
    expect_round_trip(p.cfg);
}

TEST(ToToml, ParameterNamesAreQuotedWhenTheyMustBe) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 k\n", "alpha samba\n");
    p.cfg.groups[0].resources[0].params["odd name"] = "x";
    EXPECT_THAT(to_toml(p.cfg), HasSubstr("params = { \"odd name\" = \"x\" }"));
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
        [](Config& c) { c.groups[0].auto_failback = false; },
        [](Config& c) { c.groups[0].migration_threshold = 3; },
        [](Config& c) { c.groups[0].on_stop_failure = Policy::OnStopFailure::Block; },
        [](Config& c) { c.groups[0].resources[0].params["ip"] = "198.51.100.20"; },
        [](Config& c) { c.groups[0].resources[0].start_timeout = std::chrono::seconds(60); },
        [](Config& c) { c.groups[0].resources[0].stop_timeout = std::chrono::seconds(60); },
        [](Config& c) { c.groups[0].resources[0].monitor_timeout = std::chrono::seconds(20); },
        [](Config& c) { c.groups[0].resources[0].monitor_interval = std::chrono::seconds(10); },
        [](Config& c) { c.groups[0].resources[0].monitor = true; },
        [](Config& c) { c.resource_defaults.start_timeout += std::chrono::milliseconds(1); },
        [](Config& c) { c.resource_defaults.stop_timeout += std::chrono::milliseconds(1); },
        [](Config& c) { c.resource_defaults.monitor_timeout += std::chrono::milliseconds(1); },
        [](Config& c) { c.resource_defaults.monitor_interval += std::chrono::milliseconds(1); },
        [](Config& c) { c.policy.migration_threshold = 4; },
        [](Config& c) { c.policy.on_stop_failure = Policy::OnStopFailure::Reboot; },
        [](Config& c) { c.policy.stop_retries = 3; },
        [](Config& c) { c.policy.failure_timeout = std::chrono::seconds(1); },
        [](Config& c) { c.mail.relay = "smtp:25"; },
        [](Config& c) { c.mail.from = "a@b"; },
        [](Config& c) { c.mail.starttls = false; },
        [](Config& c) { c.mail.tls_verify = true; },
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
    informative.groups[0].key_origins["name"] = Origin{"elsewhere", 9};
    informative.groups[0].resources[0].key_origins["params"] = Origin{"elsewhere", 9};
    informative.origins.keys["[policy] stop_retries"] = Origin{"elsewhere", 9};
    EXPECT_TRUE(same_settings(base, informative));
}

// ---- replicas

const std::string kReplicas = R"([replica.r0]
device = "/dev/drbd0"
protocol = "A"
secret = "link \"secret\""
encrypt = true
resync_rate = 1500
verify = "sha512"
meta_disk = "/dev/lab/meta"
[replica.r0.node.alpha]
address = "[2001:db8::1]:7790"
disk = "/dev/lab/disk0"
meta_disk = "internal"
[replica.r0.node.beta]
address = "198.51.100.2"
disk = "/dev/lab/disk1"
[replica."r.1"]
secret_file = "/etc/duet/r1.secret"
resync_rate = "3G"
[replica."r.1".node.alpha]
address = "198.51.100.1:7789"
disk = "/dev/lab/disk2"
[replica."r.1".node.beta]
address = "198.51.100.2:7789"
disk = "/dev/lab/disk2"
[replica.r2]
[replica.r2.node.alpha]
address = "198.51.100.1:7791"
disk = "/dev/lab/disk3"
[replica.r2.node.beta]
address = "198.51.100.2:7791"
disk = "/dev/lab/disk3"
)";

// The replica named `name`.
Replica& named(Config& c, const std::string& name) {
    for (Replica& r : c.replicas)
        if (r.name == name) return r;
    throw std::runtime_error("no replica " + name);
}

Parsed replicas() {
    auto p = toml(toml_base(kReplicas));
    named(p.cfg, "r.1").secret = "read from the secret file";  // as load() reads it
    finalize(p.cfg, p.diag);
    return p;
}

TEST(ToTomlReplica, EveryFieldIsPrinted) {
    auto p = replicas();
    ASSERT_THAT(p.lines(), IsEmpty());
    std::string out = to_toml(p.cfg);
    EXPECT_THAT(out, HasSubstr("\n[replica.r0]\ndevice = \"/dev/drbd0\"\nprotocol = \"A\"\nsecret = \"<hidden>\"\nencrypt = true\n"
                               "resync_rate = \"1500\"\nverify = \"sha512\"\nmeta_disk = \"/dev/lab/meta\"\n"
                               "\n[replica.r0.node.alpha]\naddress = \"[2001:db8::1]:7790\"\ndisk = \"/dev/lab/disk0\"\n"
                               "meta_disk = \"internal\"\n"
                               "\n[replica.r0.node.beta]\naddress = \"198.51.100.2:7788\"\ndisk = \"/dev/lab/disk1\"\n"));
    EXPECT_THAT(out, HasSubstr("\n[replica.\"r.1\"]\ndevice = \"/dev/duet/r.1\"\nprotocol = \"C\"\n"
                               "secret_file = \"/etc/duet/r1.secret\"\nencrypt = false\nresync_rate = \"3G\"\n"
                               "meta_disk = \"internal\"\n\n[replica.\"r.1\".node.alpha]\n"));
    EXPECT_THAT(out, HasSubstr("\n[replica.r2]\ndevice = \"/dev/duet/r2\"\nprotocol = \"C\"\n"
                               "# no secret of its own: the link is authenticated with the [auth] key\nencrypt = false\n"
                               "# no resync_rate: resync is not throttled\nmeta_disk = \"internal\"\n"));
    EXPECT_THAT(out, Not(HasSubstr("link \\\"secret\\\"")));
    EXPECT_THAT(out, Not(HasSubstr("read from the secret file")));
    EXPECT_THAT(to_toml(p.cfg, true), HasSubstr("secret = \"link \\\"secret\\\"\"\n"));
}

TEST(ToTomlReplica, RoundTrips) {
    expect_round_trip(replicas().cfg);
    Parsed drbd;
    parse_hacf(kHacf, "ha.cf", drbd.cfg, drbd.diag);
    parse_authkeys("auth 1\n1 sha1 k\n", "authkeys", drbd.cfg, drbd.diag);
    parse_haresources("alpha drbddisk::r0 Filesystem::/dev/drbd1::/data::ext4\n", "haresources", drbd.cfg, drbd.diag);
    parse_drbdconf("resource r0 {\n net { protocol B; shared-secret \"s\"; }\n disk { resync-rate 7; }\n"
                   " on alpha { volume 0 { device minor 1; disk /dev/sda7; meta-disk /dev/sdb1; } address 198.51.100.1:7789; }\n"
                   " on beta { volume 0 { device minor 1; disk /dev/sda8; } address [2001:db8::2]:7789; }\n}\n",
                   "drbd.conf", drbd.cfg, drbd.diag);
    finalize(drbd.cfg, drbd.diag);
    ASSERT_THAT(drbd.lines(), IsEmpty());
    expect_round_trip(drbd.cfg);
}

TEST(SameSettingsReplica, NoticesEveryDifference) {
    const Config base = replicas().cfg;
    ASSERT_TRUE(same_settings(base, base));
    auto r0 = [](Config& c) -> Replica& { return named(c, "r0"); };
    std::vector<std::function<void(Config&)>> changes = {
        [&](Config& c) { r0(c).name = "x"; },
        [&](Config& c) { r0(c).device = "/dev/x"; },
        [&](Config& c) { r0(c).protocol = 'C'; },
        [&](Config& c) { r0(c).secret = "other"; },
        [&](Config& c) { r0(c).secret_file = "/k"; },
        [&](Config& c) { r0(c).secret_from_auth = true; },
        [&](Config& c) { r0(c).encrypt = false; },
        [&](Config& c) { r0(c).resync_rate = 1; },
        [&](Config& c) { r0(c).verify_alg = "md5"; },
        [&](Config& c) { r0(c).meta_disk = "internal"; },
        [&](Config& c) { r0(c).nodes[0].node = "gamma"; },
        [&](Config& c) { r0(c).nodes[0].address = "198.51.100.9"; },
        [&](Config& c) { r0(c).nodes[0].port = 1; },
        [&](Config& c) { r0(c).nodes[0].disk = "/dev/x"; },
        [&](Config& c) { r0(c).nodes[0].meta_disk = "/dev/x"; },
        [&](Config& c) { r0(c).nodes.pop_back(); },
        [&](Config& c) { c.replicas.pop_back(); },
    };
    for (size_t i = 0; i < changes.size(); ++i) {
        Config c = base;
        changes[i](c);
        EXPECT_FALSE(same_settings(base, c)) << "change " << i;
    }
    // With a secret file, its name is compared, not the secret read from it.
    Config informative = base;
    named(informative, "r.1").secret = "read again";
    r0(informative).origin = Origin{"elsewhere", 9};
    r0(informative).key_origins.clear();
    r0(informative).nodes[0].key_origins.clear();
    EXPECT_TRUE(same_settings(base, informative));
}

}  // namespace
}  // namespace duet::config::test
