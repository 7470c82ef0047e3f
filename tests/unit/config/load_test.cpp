// load(): real files in a temporary directory. authkeys and key files must be root's, mode 0600.
#include "helpers.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using std::chrono::milliseconds;

// A copy of a seed directory (git does not keep mode 0600), with authkeys set to `mode`; with
// `drbd`, also the seeds' drbd.conf and its drbd.d/ (the haresources line promotes drbddisk::r0),
// set to `drbd_mode`.
void copy_seed(const TempDir& dir, const std::string& seed, unsigned authkeys_mode = 0600, bool drbd = false,
               unsigned drbd_mode = 0600) {
    std::string from = source_dir() + "/tests/fixtures/seeds/" + seed + "/";
    dir.write("ha.cf", read_text(from + "ha.cf"), 0644);
    dir.write("authkeys", read_text(from + "authkeys"), authkeys_mode);
    dir.write("haresources", read_text(from + "haresources"), 0644);
    if (!drbd) return;
    std::string d = source_dir() + "/tests/fixtures/seeds-drbd/";
    dir.write("drbd.conf", read_text(d + "drbd.conf"), drbd_mode);
    ::mkdir(dir.file("drbd.d").c_str(), 0755);
    dir.write("drbd.d/global_common.conf", read_text(d + "drbd.d/global_common.conf"), drbd_mode);
    dir.write("drbd.d/r0.res", read_text(d + "drbd.d/r0.res"), drbd_mode);
}

// Without /etc/drbd.conf as a fallback: this machine's must not change the outcome.
Config load_dir(const TempDir& dir, Diagnostics& diag, const std::string& drbd_fallback = "") {
    Source s;
    s.ha_dir = dir.path();
    s.drbd_conf_fallback = drbd_fallback;
    return load(s, diag);
}

TEST(LoadSeeds, SambaTutorialFilesParse) {
    TempDir dir;
    copy_seed(dir, "samba", 0600, true);
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    // Then the warnings about drbd.conf's options (DrbdSeeds checks them).
    EXPECT_EQ(strs(diag).at(0), dir.file("ha.cf") + ":5: warning: logfacility: not supported by Duet, ignored: "
                                                    "Duet logs to stderr, which systemd passes to the journal (journalctl -u duetd)");
    EXPECT_EQ(diag.items().size(), 9u) << diag.str();
    EXPECT_THAT(c.nodes, ElementsAre("serv1", "serv2"));
    EXPECT_EQ(c.cluster, "serv1+serv2");
    EXPECT_EQ(c.timings.keepalive, milliseconds(2000));
    EXPECT_EQ(c.timings.deadtime, milliseconds(10000));
    EXPECT_EQ(c.timings.warntime, milliseconds(6000));
    EXPECT_EQ(c.timings.initdead, milliseconds(60000));
    EXPECT_EQ(c.udpport, 694);
    EXPECT_TRUE(c.auto_failback);
    ASSERT_EQ(c.paths.size(), 1u);
    EXPECT_EQ(c.paths[0].name(), "mcast eth0 239.0.0.10:694");
    EXPECT_EQ(c.paths[0].ttl, 1);
    EXPECT_FALSE(c.paths[0].loop);
    EXPECT_EQ(c.auth.method, "sha1");
    EXPECT_EQ(c.auth.secret, "cle-secrete-du-cluster-samba");
    ASSERT_EQ(c.groups.size(), 1u);
    EXPECT_EQ(c.groups[0].home_node, "serv1");
    std::vector<std::string> chain;
    for (const auto& r : c.groups[0].resources) chain.push_back(r.str());
    EXPECT_THAT(chain, ElementsAre("IPaddr::198.51.100.20", "drbddisk::r0", "Filesystem::/dev/drbd0::/data::ext3", "samba",
                                   "MailTo::admin@domain.fr::Subject"));
    EXPECT_EQ(c.groups[0].resources[2].origin.str(), dir.file("haresources") + ":3");
    EXPECT_THAT(c.sources, ElementsAre(dir.file("ha.cf"), dir.file("authkeys"), dir.file("haresources"), dir.file("drbd.conf"),
                                       dir.file("drbd.d/global_common.conf"), dir.file("drbd.d/r0.res")));
    ASSERT_EQ(c.replicas.size(), 1u);
    EXPECT_EQ(c.replicas[0].device, c.groups[0].resources[2].args[0]);  // the Filesystem is on the replica
}

TEST(LoadSeeds, FtpTutorialFilesParse) {
    TempDir dir;
    copy_seed(dir, "ftp", 0600, true);
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_THAT(strs(diag).at(0), Diag(dir.file("ha.cf") + ":3: warning: logfacility: ", "ignored"));
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    ASSERT_EQ(c.groups.size(), 1u);
    EXPECT_EQ(c.groups[0].resources[2].str(), "Filesystem::/dev/drbd0::/home::ext3");
    EXPECT_EQ(c.groups[0].resources[3].agent, "proftpd");
    EXPECT_EQ(c.auth.secret, "cle-secrete-du-cluster-ftp");
}

TEST(LoadAuthkeys, ReadableByOthersIsRefused) {
    TempDir dir;
    copy_seed(dir, "samba", 0644);
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    std::string ak = dir.file("authkeys");
    EXPECT_THAT(strs(diag), ElementsAre(Diag(dir.file("ha.cf") + ":5: warning: logfacility: ", ""),
                                        ak + ": error: refused: the file holds the cluster's secret key and has mode 0644, which lets "
                                             "group or others access it; fix it with `chmod 600 " + ak + "; chown root " + ak + "`"));
    EXPECT_TRUE(c.auth.secret.empty());
}

TEST(LoadAuthkeys, GroupBitsAreRefusedToo) {
    TempDir dir;
    copy_seed(dir, "samba", 0640);
    Diagnostics diag;
    load_dir(dir, diag);
    EXPECT_THAT(strs(diag).back(), Diag(dir.file("authkeys") + ": error: refused: ", "mode 0640"));
}

TEST(LoadAuthkeys, NotOwnedByRootIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
    TempDir dir;
    copy_seed(dir, "samba");
    ASSERT_EQ(::chown(dir.file("authkeys").c_str(), 1, static_cast<gid_t>(-1)), 0) << std::strerror(errno);
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    std::string ak = dir.file("authkeys");
    EXPECT_THAT(strs(diag).back(), ak + ": error: refused: the file holds the cluster's secret key and is owned by uid 1, not root; "
                                        "fix it with `chmod 600 " + ak + "; chown root " + ak + "`");
    EXPECT_TRUE(diag.has_errors());
    EXPECT_TRUE(c.auth.secret.empty());
}

TEST(LoadAuthkeys, Mode0400IsFine) {
    TempDir dir;
    copy_seed(dir, "samba", 0400, true);
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    EXPECT_EQ(c.auth.secret, "cle-secrete-du-cluster-samba");
}

TEST(LoadFiles, MissingHacfOrAuthkeysIsAnErrorNamingThePath) {
    TempDir dir;
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_THAT(strs(diag), ElementsAre(dir.file("ha.cf") + ": error: cannot open: No such file or directory",
                                        dir.file("authkeys") + ": error: cannot open: No such file or directory"));
    EXPECT_THAT(c.sources, IsEmpty());
}

TEST(LoadFiles, MissingHaresourcesMeansNoGroups) {
    TempDir dir;
    copy_seed(dir, "samba");
    ASSERT_EQ(::unlink(dir.file("haresources").c_str()), 0);
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    EXPECT_THAT(c.groups, IsEmpty());
    EXPECT_THAT(c.sources, ElementsAre(dir.file("ha.cf"), dir.file("authkeys")));
}

TEST(LoadFiles, UnreadableHaresourcesIsAnError) {
    TempDir dir;
    copy_seed(dir, "samba");
    ASSERT_EQ(::unlink(dir.file("haresources").c_str()), 0);
    ASSERT_EQ(::mkdir(dir.file("haresources").c_str(), 0755), 0);
    Diagnostics diag;
    load_dir(dir, diag);
    EXPECT_THAT(strs(diag).back(), dir.file("haresources") + ": error: not a regular file");
}

TEST(LoadFiles, FifoIsRefusedWithoutHanging) {
    TempDir dir;
    copy_seed(dir, "samba");
    ASSERT_EQ(::unlink(dir.file("ha.cf").c_str()), 0);
    ASSERT_EQ(::mkfifo(dir.file("ha.cf").c_str(), 0644), 0);
    Diagnostics diag;
    load_dir(dir, diag);
    EXPECT_THAT(strs(diag), ElementsAre(dir.file("ha.cf") + ": error: not a regular file"));
}

TEST(LoadFiles, HugeFileIsRefused) {
    TempDir dir;
    copy_seed(dir, "samba");
    dir.write("ha.cf", std::string(2 << 20, '#'), 0644);
    Diagnostics diag;
    load_dir(dir, diag);
    EXPECT_THAT(strs(diag), ElementsAre(Diag(dir.file("ha.cf") + ": error: the file is 2097152 bytes long", "at most 1 MiB")));
}

TEST(LoadFiles, NothingToRead) {
    Diagnostics diag;
    load(Source{}, diag);
    EXPECT_THAT(strs(diag), ElementsAre(Diag("error: no configuration to read", "")));
}

std::string toml_with_key_file(const std::string& key_file) {
    return "nodes = [\"alpha\", \"beta\"]\n"
           "[auth]\n"
           "key_file = \"" + key_file + "\"\n"
           "[[path]]\n"
           "type = \"bcast\"\n"
           "interface = \"eth0\"\n";
}

Config load_toml_file(const std::string& path, Diagnostics& diag) {
    Source s;
    s.toml_path = path;
    return load(s, diag);
}

TEST(LoadToml, KeyFileIsRead) {
    TempDir dir;
    std::string key = dir.write("authkey", "0123456789abcdef\n", 0600);
    std::string conf = dir.write("duet.toml", toml_with_key_file(key), 0644);
    Diagnostics diag;
    Config c = load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), IsEmpty());
    EXPECT_EQ(c.auth.secret, "0123456789abcdef");
    EXPECT_EQ(c.auth.key_file, key);
    EXPECT_THAT(c.sources, ElementsAre(conf, key));
}

TEST(LoadToml, KeyFileWithOpenModeIsRefusedAtTheKeyFileLine) {
    TempDir dir;
    std::string key = dir.write("authkey", "0123456789abcdef\n", 0604);
    std::string conf = dir.write("duet.toml", toml_with_key_file(key), 0644);
    Diagnostics diag;
    Config c = load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), ElementsAre(conf + ":3: error: [auth] key_file: refused: '" + key +
                                        "' holds the cluster's secret key and has mode 0604, which lets group or others access it; "
                                        "fix it with `chmod 600 " + key + "; chown root " + key + "`"));
    EXPECT_TRUE(c.auth.secret.empty());
}

TEST(LoadToml, KeyFileNotOwnedByRootIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
    TempDir dir;
    std::string key = dir.write("authkey", "0123456789abcdef\n", 0600, 1);
    std::string conf = dir.write("duet.toml", toml_with_key_file(key), 0644);
    Diagnostics diag;
    load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), ElementsAre(Diag(conf + ":3: error: [auth] key_file: refused: ", "is owned by uid 1, not root")));
}

TEST(LoadToml, MissingOrEmptyKeyFile) {
    TempDir dir;
    std::string conf = dir.write("duet.toml", toml_with_key_file(dir.file("nokey")), 0644);
    Diagnostics diag;
    load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), ElementsAre(conf + ":3: error: [auth] key_file: '" + dir.file("nokey") +
                                        "': cannot open: No such file or directory"));
    std::string empty = dir.write("empty", "\n", 0600);
    std::string conf2 = dir.write("duet2.toml", toml_with_key_file(empty), 0644);
    Diagnostics diag2;
    load_toml_file(conf2, diag2);
    EXPECT_THAT(strs(diag2), ElementsAre(conf2 + ":3: error: [auth] key_file: the key file '" + empty + "' is empty"));
}

TEST(LoadToml, InlineKeyInAnOpenFileIsAWarning) {
    TempDir dir;
    std::string conf = dir.write("duet.toml", toml_base(), 0644);
    Diagnostics diag;
    Config c = load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), ElementsAre(Diag(conf + ":3: warning: [auth] key: ", "has mode 0644, which lets group or others access it; run `chmod 600 " + conf)));
    EXPECT_FALSE(diag.has_errors());
    EXPECT_EQ(c.auth.secret, "s3cret-s3cret");
    Diagnostics quiet;
    ASSERT_EQ(::chmod(conf.c_str(), 0600), 0);
    load_toml_file(conf, quiet);
    EXPECT_THAT(strs(quiet), IsEmpty());
}

TEST(LoadToml, MissingFile) {
    Diagnostics diag;
    load_toml_file("/nonexistent/duet.toml", diag);
    EXPECT_THAT(strs(diag), ElementsAre("/nonexistent/duet.toml: error: cannot open: No such file or directory"));
}

TEST(LoadToml, SyntaxErrorIsNotFollowedByCrossFileNoise) {
    TempDir dir;
    std::string conf = dir.write("duet.toml", "nodes = [\n", 0600);
    Diagnostics diag;
    load_toml_file(conf, diag);
    ASSERT_EQ(diag.items().size(), 1u) << diag.str();
    EXPECT_THAT(strs(diag)[0], Diag(conf + ":", "error: TOML syntax: "));
}

TEST(ExampleConfig, ParsesWithoutAnyMessage) {
    std::string text = read_text(source_dir() + "/etc/duet.toml");
    Parsed p;
    parse_toml(text, "etc/duet.toml", p.cfg, p.diag);
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.auth.key_file, "/etc/duet/authkey");
}

TEST(ExampleConfig, LoadsWithItsKeyFile) {
    TempDir dir;
    std::string key = dir.write("authkey", "an example secret\n", 0600);
    std::string text = read_text(source_dir() + "/etc/duet.toml");
    size_t at = text.find("key_file = \"/etc/duet/authkey\"");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, std::strlen("key_file = \"/etc/duet/authkey\""), "key_file = \"" + key + "\"");
    std::string conf = dir.write("duet.toml", text, 0644);
    Diagnostics diag;
    Config c = load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), IsEmpty());
    EXPECT_EQ(c.cluster, "duet-lab");
    EXPECT_THAT(c.nodes, ElementsAre("alpha", "beta"));
    ASSERT_EQ(c.paths.size(), 3u);
    EXPECT_EQ(c.paths[0].name(), "mcast eth0 239.0.0.10:694");
    EXPECT_EQ(c.paths[1].name(), "ucast eth1 203.0.113.1:694");
    EXPECT_EQ(c.paths[2].name(), "ucast eth1 203.0.113.2:694");
    ASSERT_EQ(c.groups.size(), 1u);
    EXPECT_EQ(c.groups[0].name, "share");
    EXPECT_EQ(c.groups[0].resources.size(), 5u);
    EXPECT_EQ(c.groups[0].resources[1].str(), "replica::r0");
    EXPECT_EQ(c.groups[0].resources[4].str(), "MailTo::root::Duet share");
    EXPECT_EQ(c.groups[0].resources[4].monitor, false);
    EXPECT_EQ(c.groups[0].resources[2].params.at("options"), "noatime");
    EXPECT_EQ(c.groups[0].resources[2].stop_timeout, std::chrono::seconds(120));
    EXPECT_EQ(c.groups[0].resources[3].monitor_interval, std::chrono::seconds(30));
    ASSERT_EQ(c.replicas.size(), 1u);
    EXPECT_EQ(c.replicas[0].device, "/dev/duet/r0");
    EXPECT_EQ(c.replicas[0].secret, "an example secret");  // the [auth] key, as no secret is set
    EXPECT_FALSE(c.groups[0].migration_threshold);
    // The [resources], [policy] and [mail] sections show the defaults.
    Config defaults = c;
    defaults.resource_defaults = ResourceDefaults{};
    defaults.policy = Policy{};
    defaults.mail = Mail{};
    EXPECT_TRUE(same_settings(defaults, c));
    EXPECT_EQ(c.auth.secret, "an example secret");
}

// ---- drbd.conf next to ha.cf, or the fallback

TEST(LoadDrbd, TheSeedsDirectoryRunsWithoutADuetToml) {
    TempDir dir;
    copy_seed(dir, "samba", 0600, true);
    Diagnostics diag;
    Config c = load_dir(dir, diag, dir.file("no-such-fallback.conf"));
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    for (const auto& d : diag.items()) EXPECT_EQ(d.severity, Diagnostic::Severity::Warning) << d.str();
    ASSERT_EQ(c.replicas.size(), 1u);
    const Replica& r = c.replicas[0];
    EXPECT_EQ(r.name, "r0");
    EXPECT_EQ(r.device, "/dev/drbd0");
    EXPECT_EQ(r.secret, "secret-partage-drbd-r0");
    EXPECT_EQ(r.origin.str(), dir.file("drbd.d/r0.res") + ":2");
    EXPECT_EQ(r.nodes[0].node, "serv1");
    EXPECT_EQ(r.nodes[1].address, "198.51.100.12");
}

TEST(LoadDrbd, ASharedSecretInAnOpenFileIsAWarning) {
    TempDir dir;
    copy_seed(dir, "samba", 0600, true, 0644);
    Diagnostics diag;
    load_dir(dir, diag);
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    std::string res = dir.file("drbd.d/r0.res");
    EXPECT_EQ(strs(diag).back(), res + ":10: warning: shared-secret: this file holds replica r0's link secret and has mode "
                                       "0644, which lets group or others access it: anyone who reads it can connect as the peer; "
                                       "run `chmod 600 " + res + "; chown root " + res + "`");
}

TEST(LoadDrbd, TheFallbackIsReadOnlyWhenTheDirectoryHasNone) {
    TempDir dir, etc;
    copy_seed(dir, "samba");
    std::string res = read_text(source_dir() + "/tests/fixtures/seeds-drbd/drbd.d/r0.res");
    std::string fallback = etc.write("drbd.conf", res, 0600);
    Diagnostics diag;
    Config c = load_dir(dir, diag, fallback);
    EXPECT_FALSE(diag.has_errors()) << diag.str();
    ASSERT_EQ(c.replicas.size(), 1u);
    EXPECT_EQ(c.sources.back(), fallback);
    // drbd.conf in the directory wins: the fallback (now garbage) is not read.
    etc.write("drbd.conf", "garbage {", 0600);
    dir.write("drbd.conf", res, 0600);
    Diagnostics mine;
    Config d = load_dir(dir, mine, fallback);
    EXPECT_FALSE(mine.has_errors()) << mine.str();
    EXPECT_EQ(d.sources.back(), dir.file("drbd.conf"));
}

TEST(LoadDrbd, WithoutAnyDrbdConfTheChainsReplicaIsAnError) {
    TempDir dir;
    copy_seed(dir, "samba");
    Diagnostics diag;
    Config c = load_dir(dir, diag, dir.file("missing/drbd.conf"));
    EXPECT_THAT(c.replicas, IsEmpty());
    EXPECT_THAT(strs(diag).back(), dir.file("haresources") + ":3: error: drbddisk::r0: no replica is named 'r0': none is "
                                                             "defined (add a drbd.conf next to ha.cf, or [replica.r0] to duet.toml)");
}

TEST(LoadDrbd, AFileThatCannotBeReadStopsBeforeTheCrossFileChecks) {
    TempDir dir;
    copy_seed(dir, "samba");
    ASSERT_EQ(::mkdir(dir.file("drbd.conf").c_str(), 0755), 0);
    Diagnostics diag;
    load_dir(dir, diag);
    EXPECT_THAT(strs(diag).back(), dir.file("drbd.conf") + ": error: not a regular file");
    TempDir dir2;
    copy_seed(dir2, "samba");
    dir2.write("drbd.conf", "include \"common.conf\";\n", 0600);
    Diagnostics diag2;
    load_dir(dir2, diag2);
    // No "drbddisk::r0 names no replica" after it: the missing file explains everything.
    EXPECT_THAT(strs(diag2).back(), dir2.file("drbd.conf") + ":1: error: include: '" + dir2.file("common.conf") +
                                        "': cannot open: No such file or directory");
}

TEST(LoadToml, ReplicaSecretFileIsReadLikeTheKeyFile) {
    TempDir dir;
    std::string secret = dir.write("r0.secret", "the link secret\n", 0600);
    std::string replica = "[replica.r0]\nsecret_file = \"" + secret + "\"\n"
                          "[replica.r0.node.alpha]\naddress = \"198.51.100.1\"\ndisk = \"/dev/lab/disk0\"\n"
                          "[replica.r0.node.beta]\naddress = \"198.51.100.2\"\ndisk = \"/dev/lab/disk0\"\n";
    std::string conf = dir.write("duet.toml", toml_base(replica), 0600);
    Diagnostics diag;
    Config c = load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), IsEmpty());
    EXPECT_EQ(c.replicas.at(0).secret, "the link secret");
    EXPECT_THAT(c.sources, ElementsAre(conf, secret));
    ASSERT_EQ(::chmod(secret.c_str(), 0640), 0);
    Diagnostics open;
    load_toml_file(conf, open);
    EXPECT_THAT(strs(open), ElementsAre(conf + ":9: error: [replica.r0] secret_file: refused: '" + secret +
                                        "' holds replica r0's link secret and has mode 0640, which lets group or others access "
                                        "it; fix it with `chmod 600 " + secret + "; chown root " + secret + "`"));
    dir.write("r0.secret", "\n", 0600);
    Diagnostics empty;
    load_toml_file(conf, empty);
    EXPECT_THAT(strs(empty), ElementsAre(conf + ":9: error: [replica.r0] secret_file: the secret file '" + secret + "' is empty"));
}

TEST(LoadToml, AnInlineReplicaSecretInAnOpenFileIsAWarning) {
    TempDir dir;
    std::string conf = dir.write("duet.toml",
                                 "nodes = [\"alpha\", \"beta\"]\n[auth]\nkey_file = \"" + dir.file("key") + "\"\n"
                                 "[[path]]\ntype = \"bcast\"\ninterface = \"eth0\"\n"
                                 "[replica.r0]\nsecret = \"inline\"\n"
                                 "[replica.r0.node.alpha]\naddress = \"198.51.100.1\"\ndisk = \"/dev/x\"\n"
                                 "[replica.r0.node.beta]\naddress = \"198.51.100.2\"\ndisk = \"/dev/x\"\n",
                                 0644);
    dir.write("key", "k\n", 0600);
    Diagnostics diag;
    load_toml_file(conf, diag);
    EXPECT_THAT(strs(diag), ElementsAre(Diag(conf + ":8: warning: [replica.r0] secret: this file holds replica r0's link secret "
                                                    "and has mode 0644",
                                             "or move the secret to a secret_file")));
}

// ---- hactl import

TEST(Import, TheSeedsDirectoryBecomesAnEquivalentDuetToml) {
    TempDir dir;
    copy_seed(dir, "samba", 0600, true);
    Source src;
    src.ha_dir = dir.path();
    src.drbd_conf_fallback = "";
    Diagnostics diag;
    auto text = import_to_toml(src, diag);
    ASSERT_TRUE(text) << diag.str();
    EXPECT_FALSE(diag.has_errors());
    EXPECT_EQ(diag.items().size(), 9u);  // the warnings, for hactl to print
    EXPECT_THAT(*text, ::testing::HasSubstr("key = \"cle-secrete-du-cluster-samba\"\n"));
    EXPECT_THAT(*text, ::testing::HasSubstr("\n[replica.r0]\ndevice = \"/dev/drbd0\"\nprotocol = \"C\"\n"
                                            "secret = \"secret-partage-drbd-r0\"\n"));
    // What hactl writes loads to the same settings as the directory.
    std::string conf = dir.write("duet.toml", *text, 0600);
    Diagnostics again, original;
    Config converted = load_toml_file(conf, again);
    EXPECT_THAT(strs(again), IsEmpty());
    Config from_dir = load_dir(dir, original);
    EXPECT_TRUE(same_settings(from_dir, converted)) << *text;
    EXPECT_EQ(converted.replicas.at(0).key_origins.at("secret").key, "[replica.r0] secret");
}

TEST(Import, ADirectoryWithErrorsIsNotConverted) {
    TempDir dir;
    copy_seed(dir, "samba");  // drbddisk::r0, and no drbd.conf
    Source src;
    src.ha_dir = dir.path();
    src.drbd_conf_fallback = "";
    Diagnostics diag;
    EXPECT_FALSE(import_to_toml(src, diag));
    EXPECT_THAT(strs(diag).back(), Diag(dir.file("haresources") + ":3: error: drbddisk::r0: ", "no replica is named 'r0'"));
}

}  // namespace
}  // namespace duet::config::test
