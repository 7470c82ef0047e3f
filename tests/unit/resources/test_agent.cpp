// Agent lookup: search order, errors, and positional -> named parameters from real meta-data.
#include "daemon/resources/agent.hpp"

#include "tests/unit/resources/helpers.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace duet::resources {
namespace {

using namespace duet::resources::test;
using std::chrono::milliseconds;

config::Resource res(std::string agent, std::vector<std::string> args = {}, std::map<std::string, std::string> params = {}) {
    config::Resource r;
    r.agent = std::move(agent);
    r.args = std::move(args);
    r.params = std::move(params);
    return r;
}

const char* kTrivial = "exit 0\n";

// duet_dir, an OCF root with providers, two Heartbeat resource.d dirs and an init.d, all temporary.
struct Tree {
    TempDir dir;
    SearchPath sp;
    Tree() {
        sp.duet_dir = dir / "duet";
        sp.ocf_root = dir / "ocf";
        sp.heartbeat_dirs = {dir / "ha1", dir / "ha2"};
        sp.initd = dir / "init.d";
        for (auto d : {sp.duet_dir, sp.ocf_root + "/resource.d", sp.heartbeat_dirs[0], sp.heartbeat_dirs[1], sp.initd})
            std::filesystem::create_directories(d);
    }
    std::string ocf(const std::string& provider, const std::string& type) const {
        return sp.ocf_root + "/resource.d/" + provider + "/" + type;
    }
};

std::optional<Agent> ok(const config::Resource& r, const SearchPath& sp) {
    std::string error;
    auto a = resolve(r, sp, error);
    EXPECT_TRUE(a) << error;
    return a;
}

std::string fails(const config::Resource& r, const SearchPath& sp) {
    std::string error;
    auto a = resolve(r, sp, error);
    EXPECT_FALSE(a) << "resolved to " << (a ? a->str() : "");
    EXPECT_FALSE(error.empty());
    return error;
}

TEST(Resolve, SearchOrderDuetThenOcfThenHeartbeatThenLsb) {
    Tree t;
    const std::string places[] = {
        t.sp.duet_dir + "/svc", t.ocf("heartbeat", "svc"), t.ocf("acme", "svc"), t.ocf("zeta", "svc"),
        t.sp.heartbeat_dirs[0] + "/svc", t.sp.heartbeat_dirs[1] + "/svc", t.sp.initd + "/svc"};
    for (const auto& p : places) write_script(p, kTrivial);

    auto a = ok(res("svc"), t.sp);
    EXPECT_EQ(a->convention, Convention::Ocf);
    EXPECT_EQ(a->provider, "duet");
    EXPECT_EQ(a->path, places[0]);
    EXPECT_EQ(a->type, "svc");
    EXPECT_EQ(a->name, "svc");
    EXPECT_EQ(a->ocf_root, t.sp.ocf_root);

    std::filesystem::remove(places[0]);
    a = ok(res("svc"), t.sp);
    EXPECT_EQ(a->convention, Convention::Ocf);
    EXPECT_EQ(a->provider, "heartbeat");  // preferred over acme, which sorts first
    EXPECT_EQ(a->path, places[1]);

    std::filesystem::remove(places[1]);
    a = ok(res("svc"), t.sp);
    EXPECT_EQ(a->provider, "acme");  // then alphabetical
    EXPECT_EQ(a->path, places[2]);

    std::filesystem::remove(places[2]);
    std::filesystem::remove(places[3]);
    a = ok(res("svc", {"r0"}), t.sp);
    EXPECT_EQ(a->convention, Convention::Heartbeat);
    EXPECT_EQ(a->path, places[4]);
    EXPECT_EQ(a->args, std::vector<std::string>{"r0"});
    EXPECT_TRUE(a->provider.empty());

    std::filesystem::remove(places[4]);
    a = ok(res("svc"), t.sp);
    EXPECT_EQ(a->convention, Convention::Heartbeat);
    EXPECT_EQ(a->path, places[5]);

    std::filesystem::remove(places[5]);
    a = ok(res("svc"), t.sp);
    EXPECT_EQ(a->convention, Convention::Lsb);
    EXPECT_EQ(a->path, places[6]);
    EXPECT_EQ(a->str(), "lsb " + places[6]);

    std::filesystem::remove(places[6]);
    std::string e = fails(res("svc"), t.sp);
    EXPECT_NE(e.find("agent 'svc' not found"), std::string::npos) << e;
    for (const auto& p : {t.sp.duet_dir + "/svc", t.sp.ocf_root + "/resource.d/*/svc", places[4], places[5], places[6]})
        EXPECT_NE(e.find(p), std::string::npos) << "error does not name " << p << ": " << e;
}

TEST(Resolve, ExplicitOcfNames) {
    Tree t;
    write_script(t.ocf("heartbeat", "IPaddr2"), kTrivial);
    write_script(t.ocf("acme", "IPaddr2"), kTrivial);
    write_script(t.sp.duet_dir + "/IPaddr", kTrivial);

    auto a = ok(res("ocf:acme:IPaddr2"), t.sp);
    EXPECT_EQ(a->path, t.ocf("acme", "IPaddr2"));
    EXPECT_EQ(a->provider, "acme");
    EXPECT_EQ(a->type, "IPaddr2");
    EXPECT_EQ(a->name, "ocf:acme:IPaddr2");

    a = ok(res("ocf:duet:IPaddr"), t.sp);  // Duet's own agents under their OCF name
    EXPECT_EQ(a->path, t.sp.duet_dir + "/IPaddr");
    EXPECT_EQ(a->provider, "duet");

    std::string e = fails(res("ocf:nobody:IPaddr2"), t.sp);
    EXPECT_NE(e.find(t.ocf("nobody", "IPaddr2")), std::string::npos) << e;
    // An explicit OCF name is not looked for elsewhere.
    write_script(t.sp.initd + "/Only", kTrivial);
    e = fails(res("ocf:heartbeat:Only"), t.sp);
    EXPECT_EQ(e.find(t.sp.initd), std::string::npos) << e;

    for (auto bad : {"ocf:acme", "ocf::IPaddr2", "ocf:acme:", "ocf:a/b:c", "ocf:acme:..", "ocf:a:b:c"}) {
        e = fails(res(bad), t.sp);
        EXPECT_NE(e.find("ocf:PROVIDER:TYPE"), std::string::npos) << bad << ": " << e;
    }
    e = fails(res("lsb:svc"), t.sp);
    EXPECT_NE(e.find("unknown agent class"), std::string::npos) << e;
    e = fails(res(".."), t.sp);
    EXPECT_NE(e.find("not a file name"), std::string::npos) << e;
}

TEST(Resolve, FirstExistingFileDecidesAndMustBeExecutable) {
    Tree t;
    write_script(t.sp.duet_dir + "/svc", kTrivial, 0644);
    write_script(t.sp.initd + "/svc", kTrivial);  // would run, but is not what the user gets
    std::string e = fails(res("svc"), t.sp);
    EXPECT_NE(e.find(t.sp.duet_dir + "/svc is not executable"), std::string::npos) << e;

    std::filesystem::remove(t.sp.duet_dir + "/svc");
    std::filesystem::create_symlink(t.dir / "nowhere", t.sp.heartbeat_dirs[0] + "/svc");
    e = fails(res("svc"), t.sp);
    EXPECT_NE(e.find("symbolic link to nothing"), std::string::npos) << e;

    std::filesystem::remove(t.sp.heartbeat_dirs[0] + "/svc");
    std::filesystem::create_directories(t.ocf("heartbeat", "svc"));
    e = fails(res("svc"), t.sp);
    EXPECT_NE(e.find("is not a regular file"), std::string::npos) << e;

    std::filesystem::remove(t.ocf("heartbeat", "svc"));
    auto a = ok(res("svc"), t.sp);  // now init.d's
    EXPECT_EQ(a->convention, Convention::Lsb);

    // A symbolic link to an executable is fine.
    std::filesystem::create_symlink(t.sp.initd + "/svc", t.sp.heartbeat_dirs[1] + "/svc");
    a = ok(res("svc"), t.sp);
    EXPECT_EQ(a->convention, Convention::Heartbeat);
}

TEST(Resolve, ErrorsNameTheResourceAndItsOrigin) {
    Tree t;
    auto r = res("nosuch", {"a", "b"});
    r.origin = config::Origin{"/etc/ha.d/haresources", 3, ""};
    std::string e = fails(r, t.sp);
    EXPECT_EQ(e.rfind("/etc/ha.d/haresources:3: resource 'nosuch::a::b': agent 'nosuch' not found", 0), 0u) << e;
}

TEST(Resolve, ConventionsLimitArguments) {
    Tree t;
    write_script(t.sp.heartbeat_dirs[0] + "/drbddisk", kTrivial);
    write_script(t.sp.initd + "/samba", kTrivial);
    auto a = ok(res("drbddisk", {"r0", "r1"}), t.sp);
    EXPECT_EQ(a->str(), "heartbeat " + t.sp.heartbeat_dirs[0] + "/drbddisk r0 r1");
    std::string e = fails(res("drbddisk", {}, {{"resource", "r0"}}), t.sp);
    EXPECT_NE(e.find("positional arguments only"), std::string::npos) << e;
    e = fails(res("samba", {"x"}), t.sp);
    EXPECT_NE(e.find("LSB init script, which takes no arguments"), std::string::npos) << e;
    e = fails(res("samba", {}, {{"x", "y"}}), t.sp);
    EXPECT_NE(e.find("LSB init script"), std::string::npos) << e;
}

// An OCF agent whose meta-data names three parameters, with markup that a naive scan gets wrong.
std::string metadata_agent(const std::string& counter) {
    return "case \"$1\" in\n"
           "meta-data)\n"
           "  echo x >> '" + counter + "'\n"
           "  cat <<'END'\n"
           "<?xml version=\"1.0\"?>\n"
           "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n"
           "<resource-agent name=\"Thing\" version=\"1.0\">\n"
           "<version>1.0</version>\n"
           "<longdesc lang=\"en\">Uses <![CDATA[<parameter name=\"cdata\">]]> as text.</longdesc>\n"
           "<parameter name=\"outside\"/>\n"
           "<parameters>\n"
           "<!-- <parameter name=\"commented\"> -->\n"
           "<parameter name=\"ip\" unique=\"1\" required=\"1\">\n"
           "  <longdesc lang=\"en\">a &lt;b&gt; c</longdesc><content type=\"string\" default=\"\"/>\n"
           "</parameter>\n"
           "<parameter required = '0' name = 'cidr_netmask' >\n"
           "  <content type=\"integer\"/>\n"
           "</parameter>\n"
           "<parameter name=\"ip\"/>\n"
           "<parameter\n  name=\"nic\"><content type=\"string\"/></parameter>\n"
           "</parameters>\n"
           "<actions><action name=\"start\" timeout=\"20s\"/></actions>\n"
           "</resource-agent>\n"
           "END\n"
           "  exit 0;;\n"
           "*) exit 3;;\n"
           "esac\n";
}

TEST(Resolve, PositionalArgumentsTakeMetadataParameterNamesInOrder) {
    Tree t;
    write_script(t.ocf("heartbeat", "Thing"), metadata_agent(t.dir / "count"));
    auto a = ok(res("Thing", {"198.51.100.20", "24"}), t.sp);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->params, (std::map<std::string, std::string>{{"ip", "198.51.100.20"}, {"cidr_netmask", "24"}}));
    EXPECT_EQ(a->args, (std::vector<std::string>{"198.51.100.20", "24"}));

    // Named parameters override positional ones and may name any declared parameter.
    a = ok(res("Thing", {"198.51.100.20", "24"}, {{"cidr_netmask", "16"}, {"nic", "eth1"}}), t.sp);
    EXPECT_EQ(a->params, (std::map<std::string, std::string>{{"ip", "198.51.100.20"}, {"cidr_netmask", "16"}, {"nic", "eth1"}}));
    EXPECT_EQ(a->str(), "ocf:heartbeat:Thing " + t.ocf("heartbeat", "Thing") + " cidr_netmask=16 ip=198.51.100.20 nic=eth1");

    std::string e = fails(res("Thing", {"a", "b", "c", "d"}), t.sp);
    EXPECT_NE(e.find("ocf:heartbeat:Thing takes 3 parameters (ip, cidr_netmask, nic) but 4 arguments were given"),
              std::string::npos) << e;
    e = fails(res("Thing", {}, {{"commented", "x"}}), t.sp);
    EXPECT_NE(e.find("has no parameter 'commented' (its parameters: ip, cidr_netmask, nic)"), std::string::npos) << e;
}

TEST(Resolve, MetadataRunsOncePerUnchangedExecutable) {
    Tree t;
    const std::string counter = t.dir / "count";
    const std::string path = t.sp.duet_dir + "/Thing";
    write_script(path, metadata_agent(counter));
    ok(res("Thing", {"198.51.100.20"}), t.sp);
    ok(res("Thing", {"198.51.100.21", "24"}), t.sp);
    ok(res("ocf:duet:Thing", {}, {{"nic", "eth0"}}), t.sp);
    EXPECT_EQ(lines_of(read_file(counter)).size(), 1u);

    // No arguments, no parameters: no need to ask.
    ok(res("Thing"), t.sp);
    EXPECT_EQ(lines_of(read_file(counter)).size(), 1u);

    // A changed agent is asked again (here: a fourth parameter appears).
    std::string text = metadata_agent(counter);
    text.replace(text.find("</parameters>"), 0, "<parameter name=\"extra\"/>\n");
    write_script(path, text);
    auto a = ok(res("Thing", {"1", "2", "3", "4"}), t.sp);
    EXPECT_EQ(a->params.at("extra"), "4");
    EXPECT_EQ(lines_of(read_file(counter)).size(), 2u);
}

TEST(Resolve, MetadataFailuresAreErrors) {
    Tree t;
    t.sp.metadata_timeout = milliseconds(300);
    write_script(t.sp.duet_dir + "/Broken", "echo 'cannot find my library' >&2\nexit 5\n");
    std::string e = fails(res("Broken", {"x"}), t.sp);
    EXPECT_NE(e.find("meta-data` exited with 5: cannot find my library"), std::string::npos) << e;

    write_script(t.sp.duet_dir + "/Garbage", "echo '<resource-agent><parameters><parameter nam=\"x\"/>'\n");
    e = fails(res("Garbage", {"x"}), t.sp);
    EXPECT_NE(e.find("<parameter> without a name attribute"), std::string::npos) << e;

    // A hanging meta-data is killed with everything it started, in bounded time.
    const std::string pidfile = t.dir / "hang.pid";
    write_script(t.sp.duet_dir + "/Hangs", "sleep 1000 &\necho $! > '" + pidfile + "'\nwait\n");
    auto start = std::chrono::steady_clock::now();
    e = fails(res("Hangs", {"x"}), t.sp);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_NE(e.find("did not finish within 300 ms"), std::string::npos) << e;
    EXPECT_LT(took, milliseconds(900));
    pid_t sleeper = read_pid(pidfile);
    ASSERT_GT(sleeper, 0);
    EXPECT_TRUE(wait_until([&] {
        ::waitpid(sleeper, nullptr, WNOHANG);  // this process is a subreaper in this test binary
        return !alive(sleeper);
    }, milliseconds(2000)));
    kill_pid(sleeper);

    // No parameters declared at all.
    write_script(t.sp.duet_dir + "/NoParams", "echo '<resource-agent name=\"n\"><actions/></resource-agent>'\n");
    e = fails(res("NoParams", {"x"}), t.sp);
    EXPECT_NE(e.find("takes 0 parameters (none) but 1 argument was given"), std::string::npos) << e;
}

TEST(ParameterNames, TolerantOfRealMarkupStrictOnBrokenMarkup) {
    std::string err;
    auto n = parameter_names(
        "<resource-agent><parameters><parameter name='a&amp;b'/><parameter name=\"c\">"
        "<content default=\"x > y\"/></parameter></parameters><parameter name=\"late\"/></resource-agent>",
        err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(*n, (std::vector<std::string>{"a&b", "c"}));

    n = parameter_names("<resource-agent/>", err);
    ASSERT_TRUE(n) << err;
    EXPECT_TRUE(n->empty());

    for (auto bad : {"<parameters><!-- never closed", "<parameters><parameter name=\"x", "<parameters><parameter name=x/>",
                     "<parameters><parameter name=\"a b\"/>", "<parameters><parameter name=\"&bogus;\"/>",
                     "<parameters>< parameter name=\"x\"/>"}) {
        err.clear();
        EXPECT_FALSE(parameter_names(bad, err)) << bad;
        EXPECT_NE(err.find("line 1: "), std::string::npos) << bad << ": " << err;
    }
    err.clear();
    EXPECT_FALSE(parameter_names("<parameters>\n\n<parameter/>", err));
    EXPECT_NE(err.find("line 3: "), std::string::npos) << err;
}

// The real thing, when resource-agents is installed: Dummy's first parameter is "state".
TEST(Resolve, RealResourceAgentsDummy) {
    SearchPath sp;
    if (::access("/usr/lib/ocf/resource.d/heartbeat/Dummy", X_OK) != 0)
        GTEST_SKIP() << "resource-agents is not installed (no /usr/lib/ocf/resource.d/heartbeat/Dummy)";
    auto a = ok(res("ocf:heartbeat:Dummy", {"/run/x.state"}), sp);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->params.at("state"), "/run/x.state");
    EXPECT_EQ(a->convention, Convention::Ocf);
    auto b = ok(res("Dummy", {}, {{"fake", "y"}}), sp);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->path, "/usr/lib/ocf/resource.d/heartbeat/Dummy");
    EXPECT_EQ(b->params.at("fake"), "y");
}

}  // namespace
}  // namespace duet::resources
