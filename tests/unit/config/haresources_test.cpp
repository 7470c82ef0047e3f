// haresources: groups, '::' arguments, bare addresses, continuations, and every error.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> texts(const Group& g) {
    std::vector<std::string> v;
    for (const auto& r : g.resources) v.push_back(r.str());
    return v;
}

TEST(Haresources, TutorialLine) {
    auto p = haresources("serv1 IPaddr::198.51.100.20 drbddisk::r0 Filesystem::/dev/drbd0::/data::ext3 samba "
                         "MailTo::admin@domain.fr::Subject\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 1u);
    const Group& g = p.cfg.groups[0];
    EXPECT_EQ(g.home_node, "serv1");
    EXPECT_EQ(g.name, "IPaddr::198.51.100.20");
    EXPECT_EQ(g.origin.str(), "haresources:1");
    ASSERT_EQ(g.resources.size(), 5u);
    EXPECT_EQ(g.resources[0].agent, "IPaddr");
    EXPECT_THAT(g.resources[0].args, ElementsAre("198.51.100.20"));
    EXPECT_EQ(g.resources[1].agent, "drbddisk");
    EXPECT_THAT(g.resources[1].args, ElementsAre("r0"));
    EXPECT_EQ(g.resources[2].agent, "Filesystem");
    EXPECT_THAT(g.resources[2].args, ElementsAre("/dev/drbd0", "/data", "ext3"));
    EXPECT_EQ(g.resources[3].agent, "samba");
    EXPECT_THAT(g.resources[3].args, IsEmpty());
    EXPECT_EQ(g.resources[4].agent, "MailTo");
    EXPECT_THAT(g.resources[4].args, ElementsAre("admin@domain.fr", "Subject"));
    EXPECT_THAT(p.cfg.sources, ElementsAre("haresources"));
}

TEST(Haresources, BareAddressIsIPaddrAndNamesTheGroup) {
    auto p = haresources("Serv2 198.51.100.21/24/eth0 proftpd\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 1u);
    const Group& g = p.cfg.groups[0];
    EXPECT_EQ(g.home_node, "serv2");
    EXPECT_EQ(g.name, "198.51.100.21/24/eth0");
    EXPECT_EQ(g.resources[0].agent, "IPaddr");
    EXPECT_THAT(g.resources[0].args, ElementsAre("198.51.100.21/24/eth0"));
    EXPECT_THAT(texts(g), ElementsAre("IPaddr::198.51.100.21/24/eth0", "proftpd"));
}

TEST(Haresources, AddressForms) {
    auto p = haresources("a 198.51.100.20\n"
                         "a 198.51.100.22/24/eth0:1/198.51.100.255\n"
                         "a 198.51.100.23//eth0\n"
                         "a 2001:db8::20/64/eth0\n"
                         "a IPaddr::2001:db8::21/64/eth0\n"
                         "a IPv6addr::2001:db8::22\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 6u);
    EXPECT_THAT(p.cfg.groups[3].resources[0].args, ElementsAre("2001:db8::20/64/eth0"));
    EXPECT_EQ(p.cfg.groups[3].resources[0].agent, "IPaddr");
    EXPECT_THAT(p.cfg.groups[4].resources[0].args, ElementsAre("2001:db8::21/64/eth0"));
    EXPECT_EQ(p.cfg.groups[5].resources[0].agent, "IPv6addr");
    EXPECT_THAT(p.cfg.groups[5].resources[0].args, ElementsAre("2001:db8::22"));
}

TEST(Haresources, ContinuationLines) {
    auto p = haresources("serv1 198.51.100.20 \\\n"
                         "      drbddisk::r0 \\\n"
                         "      samba\n"
                         "serv2 proftpd\\\n"
                         "  MailTo::root\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 2u);
    EXPECT_THAT(texts(p.cfg.groups[0]), ElementsAre("IPaddr::198.51.100.20", "drbddisk::r0", "samba"));
    ASSERT_EQ(p.cfg.groups[0].resources.size(), 3u);
    EXPECT_EQ(p.cfg.groups[0].origin.str(), "haresources:1");
    EXPECT_EQ(p.cfg.groups[0].resources[1].origin.str(), "haresources:2");
    EXPECT_EQ(p.cfg.groups[0].resources[2].origin.str(), "haresources:3");
    EXPECT_THAT(texts(p.cfg.groups[1]), ElementsAre("proftpd", "MailTo::root"));
}

TEST(Haresources, BlankLineEndsAContinuation) {
    // As in Heartbeat: the backslash joins the empty line, and the group ends there.
    auto p = haresources("serv1 samba \\\n\nserv2 proftpd\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 2u);
    EXPECT_THAT(texts(p.cfg.groups[0]), ElementsAre("samba"));
}

TEST(Haresources, Comments) {
    auto p = haresources("# serv1 10.0.0.1 httpd\n  #indented\nserv1 samba # the share \\\nserv2 proftpd\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.groups.size(), 2u);
    EXPECT_THAT(texts(p.cfg.groups[0]), ElementsAre("samba"));
    EXPECT_EQ(p.cfg.groups[1].home_node, "serv2");
}

TEST(Haresources, EmptyArgumentsAreErrors) {
    auto p = haresources("serv1 Filesystem::::/data\nserv1 samba::\nserv1 a::b::::c\nserv1 IPaddr::::1\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("haresources:1: error: Filesystem::::/data: ", "argument 1 is empty (nothing between two '::')"),
                            Diag("haresources:2: error: samba::: ", "ends with '::' but has no argument after it"),
                            Diag("haresources:3: error: a::b::::c: ", "argument 2 is empty"),
                            Diag("haresources:4: error: IPaddr::::1: ", "argument 1 is empty")));
    EXPECT_THAT(p.cfg.groups, IsEmpty());
}

TEST(Haresources, BadAgentNames) {
    auto p = haresources("serv1 ::x\nserv1 ../../bin/sh\nserv1 IP$addr::1\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("haresources:1: error: ::x: ", "has no agent name before '::'"),
                                       Diag("haresources:2: error: ../../bin/sh: ", "expected an agent name"),
                                       Diag("haresources:3: error: IP$addr::1: ", "got 'IP$addr'")));
}

TEST(Haresources, ExplicitOcfAgents) {
    auto p = haresources("serv1 ocf:heartbeat:IPaddr2::198.51.100.20 ocf:duet:Filesystem::/dev/sdb1::/data\n"
                         "serv2 ocf:heartbeat::x\nserv2 ocf:a:b:c\n");
    ASSERT_GE(p.cfg.groups.size(), 1u);
    EXPECT_EQ(p.cfg.groups[0].resources[0].agent, "ocf:heartbeat:IPaddr2");
    EXPECT_THAT(p.cfg.groups[0].resources[0].args, ElementsAre("198.51.100.20"));
    EXPECT_EQ(p.cfg.groups[0].resources[1].agent, "ocf:duet:Filesystem");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("haresources:2: error: ocf:heartbeat::x: ", "expected an agent name"),
                                       Diag("haresources:3: error: ocf:a:b:c: ", "expected an agent name")));
}

TEST(Haresources, BadAddresses) {
    auto p = haresources("serv1 198.51.100.300\n"
                         "serv1 198.51.100.20/33\n"
                         "serv1 198.51.100.20/24/eth0/198.51.100.255/x\n"
                         "serv1 198.51.100.20/24/eth0/nope\n"
                         "serv1 198.51.100.20/24/a::b\n"
                         "serv1 2001:db8::1/129\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(Diag("haresources:1: error: 198.51.100.300: ", "is not a valid IPv4 address"),
                            Diag("haresources:2: error: 198.51.100.20/33: ", "prefix length '33' is not a number from 0 to 32"),
                            Diag("haresources:3: error: 198.51.100.20/24/eth0/198.51.100.255/x: ", "more than four"),
                            Diag("haresources:4: error: 198.51.100.20/24/eth0/nope: ", "broadcast 'nope' is not an IPv4 address"),
                            Diag("haresources:5: error: 198.51.100.20/24/a::b: ", "interface 'a::b' is not an interface name"),
                            Diag("haresources:6: error: 2001:db8::1/129: ", "from 0 to 128")));
}

TEST(Haresources, HomeNodeErrors) {
    auto p = haresources("serv1\nserv_1! samba\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("haresources:1: error: serv1: ", "no resources after the node name"),
                                       Diag("haresources:2: error: serv_1!: ", "expected a node name")));
}

TEST(Haresources, UnknownHomeNodeIsReportedByFinalize) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 s3cret-s3cret\n", "alpha samba\n\ngamma proftpd\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("haresources:3: error: gamma: ",
                                            "home node 'gamma' is not a node of this cluster (alpha and beta)")));
}

TEST(Haresources, DuplicateGroupName) {
    auto p = legacy(kHacf, "auth 1\n1 sha1 s3cret-s3cret\n", "alpha samba\nbeta samba\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("haresources:2: error: samba: ",
                                            "a second group named 'samba' (the first is at haresources:1)")));
}

TEST(Haresources, EmptyFileMeansNoGroups) {
    auto p = haresources("# nothing yet\n\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_THAT(p.cfg.groups, IsEmpty());
}

TEST(Haresources, NonTextLineDropsItsGroup) {
    auto p = haresources(std::string("serv1 a \\\n b\x7f\nserv2 c\n"));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("haresources:2: error: ", "control character 0x7F")));
    ASSERT_EQ(p.cfg.groups.size(), 1u);
    EXPECT_EQ(p.cfg.groups[0].home_node, "serv2");
}

}  // namespace
}  // namespace duet::config::test
