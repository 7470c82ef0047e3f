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

// A copy of a seed directory (git does not keep mode 0600), with authkeys set to `mode`.
void copy_seed(const TempDir& dir, const std::string& seed, unsigned authkeys_mode = 0600) {
    std::string from = source_dir() + "/tests/fixtures/seeds/" + seed + "/";
    dir.write("ha.cf", read_text(from + "ha.cf"), 0644);
    dir.write("authkeys", read_text(from + "authkeys"), authkeys_mode);
    dir.write("haresources", read_text(from + "haresources"), 0644);
}

Config load_dir(const TempDir& dir, Diagnostics& diag) {
    Source s;
    s.ha_dir = dir.path();
    return load(s, diag);
}

TEST(LoadSeeds, SambaTutorialFilesParse) {
    TempDir dir;
    copy_seed(dir, "samba");
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_THAT(strs(diag), ElementsAre(dir.file("ha.cf") + ":5: warning: logfacility: not supported by Duet, ignored: "
                                                            "Duet logs to stderr, which systemd passes to the journal (journalctl -u duetd)"));
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
    EXPECT_THAT(c.sources, ElementsAre(dir.file("ha.cf"), dir.file("authkeys"), dir.file("haresources")));
}

TEST(LoadSeeds, FtpTutorialFilesParse) {
    TempDir dir;
    copy_seed(dir, "ftp");
    Diagnostics diag;
    Config c = load_dir(dir, diag);
    EXPECT_THAT(strs(diag), ElementsAre(Diag(dir.file("ha.cf") + ":3: warning: logfacility: ", "ignored")));
    EXPECT_FALSE(diag.has_errors());
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
    copy_seed(dir, "samba", 0400);
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
    EXPECT_EQ(c.groups[0].resources.size(), 4u);
    EXPECT_EQ(c.groups[0].resources[3].str(), "MailTo::root::Duet share");
    EXPECT_EQ(c.groups[0].resources[3].monitor, false);
    EXPECT_EQ(c.groups[0].resources[1].params.at("options"), "noatime");
    EXPECT_EQ(c.groups[0].resources[1].stop_timeout, std::chrono::seconds(120));
    EXPECT_EQ(c.groups[0].resources[2].monitor_interval, std::chrono::seconds(30));
    EXPECT_FALSE(c.groups[0].migration_threshold);
    // The [resources], [policy] and [mail] sections show the defaults.
    Config defaults = c;
    defaults.resource_defaults = ResourceDefaults{};
    defaults.policy = Policy{};
    defaults.mail = Mail{};
    EXPECT_TRUE(same_settings(defaults, c));
    EXPECT_EQ(c.auth.secret, "an example secret");
}

}  // namespace
}  // namespace duet::config::test
