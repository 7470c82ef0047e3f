// drbd.conf: the seeds' files, every form of DRBD 8.3/8.4 that Duet reads, and every error and
// warning with its file and line.
#include "helpers.hpp"

#include <fnmatch.h>
#include <sys/stat.h>

#include <map>

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Included files served from memory: a pattern matches the names fnmatch() matches, in name order.
IncludeReader files_from(std::map<std::string, std::string> files) {
    return [files = std::move(files)](const std::string& pattern, const Origin&, Diagnostics&) {
        std::vector<IncludedFile> out;
        for (const auto& [name, text] : files)
            if (::fnmatch(pattern.c_str(), name.c_str(), FNM_PATHNAME) == 0) out.push_back({name, text});
        return out;
    };
}

// `text` as /etc/drbd.conf, after kHacf (nodes alpha and beta), a valid authkeys and `resources`,
// then finalized.
Parsed drbd(const std::string& text, std::map<std::string, std::string> files = {}, const std::string& resources = "") {
    Parsed p;
    parse_hacf(kHacf, "ha.cf", p.cfg, p.diag);
    parse_authkeys("auth 1\n1 sha1 s3cret-s3cret\n", "authkeys", p.cfg, p.diag);
    parse_haresources(resources, "haresources", p.cfg, p.diag);
    parse_drbdconf(text, "/etc/drbd.conf", p.cfg, p.diag, files_from(std::move(files)));
    finalize(p.cfg, p.diag);
    return p;
}

// One valid resource; `inside` is added to its body.
std::string resource(const std::string& inside = "", const std::string& name = "r0") {
    return "resource " + name + " {\n"
           "  device /dev/drbd0;\n"
           "  disk /dev/sdb1;\n"
           "  meta-disk internal;\n"
           "  on alpha { address 198.51.100.1:7788; }\n"
           "  on beta { address 198.51.100.2:7788; }\n" +
           inside + "}\n";
}

const std::string kFile = "/etc/drbd.conf";

TEST(DrbdSeeds, TheTutorialsFilesWithTheirIncludes) {
    std::string seeds = source_dir() + "/tests/fixtures/seeds/samba/";
    std::string dir = source_dir() + "/tests/fixtures/seeds-drbd/";
    Parsed p;
    parse_hacf(read_text(seeds + "ha.cf"), "ha.cf", p.cfg, p.diag);
    parse_authkeys(read_text(seeds + "authkeys"), "authkeys", p.cfg, p.diag);
    parse_haresources(read_text(seeds + "haresources"), "haresources", p.cfg, p.diag);
    parse_drbdconf(read_text(dir + "drbd.conf"), dir + "drbd.conf", p.cfg, p.diag, read_included_files);
    finalize(p.cfg, p.diag);

    std::string common = dir + "drbd.d/global_common.conf:";
    const std::string handler = "handler not run: Duet runs no DRBD handler scripts";
    EXPECT_THAT(p.lines(), ElementsAre(Diag("ha.cf:5: warning: logfacility: ", "ignored"),
                                       Diag(common + "15: warning: pri-on-incon-degr: ", handler),
                                       Diag(common + "16: warning: pri-lost-after-sb: ", handler),
                                       Diag(common + "21: warning: wfc-timeout: ", "does not hold the boot waiting for the peer"),
                                       Diag(common + "22: warning: degr-wfc-timeout: ", "not supported by Duet, ignored"),
                                       Diag(common + "26: warning: on-io-error: ", "not supported by Duet, ignored"),
                                       Diag(common + "30: warning: after-sb-0pri: ", "never resolves a split brain by discarding"),
                                       Diag(common + "31: warning: after-sb-1pri: ", "split brain"),
                                       Diag(common + "32: warning: after-sb-2pri: ", "split brain")));
    EXPECT_THAT(p.cfg.sources, ElementsAre("ha.cf", "authkeys", "haresources", dir + "drbd.conf",
                                           dir + "drbd.d/global_common.conf", dir + "drbd.d/r0.res"));
    ASSERT_EQ(p.cfg.replicas.size(), 1u);
    const Replica& r = p.cfg.replicas[0];
    EXPECT_EQ(r.name, "r0");
    EXPECT_EQ(r.device, "/dev/drbd0");
    EXPECT_EQ(r.protocol, 'C');
    EXPECT_EQ(r.secret, "secret-partage-drbd-r0");
    EXPECT_EQ(r.resync_rate, 100u << 20);  // "rate 100M": 100 MiB/s, in bytes
    EXPECT_EQ(r.verify_alg, "sha1");
    EXPECT_EQ(r.meta_disk, "internal");
    EXPECT_FALSE(r.encrypt);
    EXPECT_EQ(r.origin.str(), dir + "drbd.d/r0.res:2");
    EXPECT_EQ(r.key_origins.at("secret").str(), dir + "drbd.d/r0.res:10");
    EXPECT_EQ(r.key_origins.at("resync_rate").str(), common + "10");
    ASSERT_EQ(r.nodes.size(), 2u);
    EXPECT_EQ(r.nodes[0].node, "serv1");
    EXPECT_EQ(r.nodes[0].address, "198.51.100.11");
    EXPECT_EQ(r.nodes[0].port, 7788);
    EXPECT_EQ(r.nodes[0].disk, "/dev/sdb1");
    EXPECT_EQ(r.nodes[0].meta_disk, "internal");
    EXPECT_EQ(r.nodes[1].node, "serv2");
    EXPECT_EQ(r.nodes[1].address, "198.51.100.12");
    EXPECT_EQ(r.on("serv2"), &r.nodes[1]);
    EXPECT_EQ(r.on("serv3"), nullptr);
}

TEST(DrbdGrammar, The84FormWithAVolume) {
    auto p = drbd(R"(resource r0 {
  net {
    protocol A;
    cram-hmac-alg sha1;
    shared-secret "FooFunFactory";
  }
  disk {
    resync-rate 10M;
  }
  on alpha {
    volume 0 {
      device minor 1;
      disk /dev/sda7;
      meta-disk internal;
    }
    address 198.51.100.1:7789;
  }
  on beta {
    volume 0 {
      device minor 1;
      disk /dev/sda7;
      meta-disk internal;
    }
    address 198.51.100.2:7789;
  }
}
)");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.replicas.size(), 1u);
    const Replica& r = p.cfg.replicas[0];
    EXPECT_EQ(r.device, "/dev/drbd1");
    EXPECT_EQ(r.protocol, 'A');
    EXPECT_EQ(r.secret, "FooFunFactory");
    EXPECT_EQ(r.resync_rate, 10u << 20);
    EXPECT_EQ(r.nodes[0].disk, "/dev/sda7");
    EXPECT_EQ(r.nodes[1].port, 7789);
}

TEST(DrbdGrammar, VolumeAtTheResourceLevelAndAddressesOnly) {
    auto p = drbd("resource data {\n"
                  "  volume 0 { device /dev/drbd5 minor 5; disk /dev/vg/data; meta-disk /dev/vg/meta; disk { resync-rate 40000K; } }\n"
                  "  on alpha { address ipv4 198.51.100.1:7000; }\n"
                  "  on beta { address ipv4 198.51.100.2:7000; }\n"
                  "}\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    const Replica& r = p.cfg.replicas.at(0);
    EXPECT_EQ(r.device, "/dev/drbd5");
    EXPECT_EQ(r.meta_disk, "/dev/vg/meta");
    EXPECT_EQ(r.nodes[1].meta_disk, "/dev/vg/meta");
    EXPECT_EQ(r.nodes[1].disk, "/dev/vg/data");
    EXPECT_EQ(r.resync_rate, 40000u * 1024);
}

TEST(DrbdGrammar, DeviceForms) {
    auto device = [](const std::string& form) {
        auto p = drbd("resource r0 {\n  device " + form + ";\n  disk /dev/sdb1;\n"
                      "  on alpha { address 198.51.100.1:7788; }\n  on beta { address 198.51.100.2:7788; }\n}\n");
        EXPECT_FALSE(p.diag.has_errors()) << form << ": " << p.diag.str();
        return p.cfg.replicas.empty() ? std::string("(none)") : p.cfg.replicas[0].device;
    };
    EXPECT_EQ(device("/dev/drbd0"), "/dev/drbd0");
    EXPECT_EQ(device("/dev/drbd0 minor 0"), "/dev/drbd0");
    EXPECT_EQ(device("minor 3"), "/dev/drbd3");
    EXPECT_EQ(device("drbd1"), "/dev/drbd1");
    EXPECT_EQ(device("drbd2 minor 2"), "/dev/drbd2");
    EXPECT_EQ(device("\"/dev/duet/r0\""), "/dev/duet/r0");
}

TEST(DrbdGrammar, MetaDiskForms) {
    auto p = drbd("resource r0 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n  flexible-meta-disk /dev/sdc1;\n"
                  "  on alpha { address 198.51.100.1:7788; meta-disk internal; }\n"
                  "  on beta { address 198.51.100.2:7788; }\n}\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    const Replica& r = p.cfg.replicas.at(0);
    EXPECT_EQ(r.meta_disk, "/dev/sdc1");
    EXPECT_EQ(r.nodes[0].meta_disk, "internal");
    EXPECT_EQ(r.nodes[1].meta_disk, "/dev/sdc1");
}

TEST(DrbdGrammar, AddressForms) {
    auto p = drbd("resource r0 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n"
                  "  on alpha { address ipv6 [2001:db8::1]:7790; }\n"
                  "  on beta { address 2001:db8::2; }\n}\n");
    // The second has no brackets: an error naming the form.
    EXPECT_THAT(p.lines(), ElementsAre(kFile + ":5: error: address: expected ADDRESS:PORT such as 198.51.100.1:7788 or "
                                               "[2001:db8::1]:7788, got '2001:db8::2': an IPv6 address needs brackets, such as "
                                               "[2001:db8::1]:7788"));
    auto q = drbd("resource r0 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n"
                  "  on alpha { address ipv6 [2001:db8::1]:7790; }\n"
                  "  on beta { address [2001:db8::2]; }\n}\n");
    EXPECT_THAT(q.lines(), IsEmpty());
    const Replica& r = q.cfg.replicas.at(0);
    EXPECT_EQ(r.nodes[0].address, "2001:db8::1");
    EXPECT_EQ(r.nodes[0].port, 7790);
    EXPECT_EQ(r.nodes[1].port, 7788);  // no port: DRBD's customary one
}

TEST(DrbdGrammar, CommentsQuotesSkipAndStraySemicolons) {
    auto p = drbd("# a comment\n"
                  "skip resource old { this is { not read } at all; ; }\n"
                  "global { usage-count yes; } # the answer does not matter\n"
                  "resource \"r0\" {  # quoted names too\n"
                  "  device \"/dev/drbd0\"; disk /dev/sdb1;\n"
                  "  net { shared-secret \"with \\\"quotes\\\" # and a hash\"; }\n"
                  "  on alpha { address 198.51.100.1:7788; };\n"
                  "  on beta {\n    address\n      198.51.100.2:7788\n    ;\n  }\n"
                  "};\n"
                  "resource r1 { device /dev/drbd1; disk /dev/sdc1;\n"
                  "  net { shared-secret pass#word; }\n"  // '#' inside a word is part of it
                  "  on alpha { address 198.51.100.1:7789; } on beta { address 198.51.100.2:7789; } }\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.replicas.size(), 2u);
    EXPECT_EQ(p.cfg.replicas[0].secret, "with \"quotes\" # and a hash");
    EXPECT_EQ(p.cfg.replicas[1].secret, "pass#word");
    EXPECT_EQ(p.cfg.replicas[0].nodes[1].origin.str(), kFile + ":8");
    EXPECT_EQ(p.cfg.replicas[0].nodes[1].key_origins.at("address").str(), kFile + ":9");
}

TEST(DrbdGrammar, PerHostSettingsOverrideTheResource) {
    auto p = drbd("resource r0 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n  meta-disk internal;\n"
                  "  on alpha { address 198.51.100.1:7788; disk /dev/sdc1; meta-disk /dev/sdd1; device /dev/drbd0; }\n"
                  "  on beta { address 198.51.100.2:7788; }\n}\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    const Replica& r = p.cfg.replicas.at(0);
    EXPECT_EQ(r.nodes[0].disk, "/dev/sdc1");
    EXPECT_EQ(r.nodes[0].meta_disk, "/dev/sdd1");
    EXPECT_EQ(r.nodes[0].key_origins.at("disk").str(), kFile + ":5");
    EXPECT_EQ(r.nodes[1].disk, "/dev/sdb1");
    EXPECT_EQ(r.nodes[1].meta_disk, "internal");
}

TEST(DrbdGrammar, CommonAppliesToEveryResourceWhateverTheOrderOfTheFiles) {
    auto p = drbd("include \"drbd.d/*.res\";\ninclude \"/etc/drbd.d/global_common.conf\";\n",
                  {{"/etc/drbd.d/r0.res", resource()},
                   {"/etc/drbd.d/r1.res", "resource r1 {\n  protocol B;\n  syncer { rate 2G; }\n  device /dev/drbd1;\n"
                                          "  disk /dev/sdc1;\n  on alpha { address 198.51.100.1:7789; }\n"
                                          "  on beta { address 198.51.100.2:7789; }\n}\n"},
                   {"/etc/drbd.d/global_common.conf",
                    "common {\n  protocol A;\n  net { shared-secret common-secret; protocol A; }\n"
                    "  disk { resync-rate 512; }\n  syncer { verify-alg SHA256; }\n}\n"},
                   {"/etc/other/r9.res", "this is not read"}});
    // `protocol A` twice in common: the later one is used, with a warning.
    EXPECT_THAT(p.lines(), ElementsAre("/etc/drbd.d/global_common.conf:3: warning: protocol: given again (also at "
                                       "/etc/drbd.d/global_common.conf:2); this later value is used"));
    ASSERT_EQ(p.cfg.replicas.size(), 2u);
    const Replica& r0 = p.cfg.replicas[0];
    const Replica& r1 = p.cfg.replicas[1];
    EXPECT_EQ(r0.protocol, 'A');
    EXPECT_EQ(r0.secret, "common-secret");
    EXPECT_EQ(r0.resync_rate, 512u * 1024);  // a bare number: KiB/s, as in DRBD
    EXPECT_EQ(r0.verify_alg, "sha256");
    EXPECT_EQ(r1.protocol, 'B');
    EXPECT_EQ(r1.key_origins.at("protocol").str(), "/etc/drbd.d/r1.res:2");
    EXPECT_EQ(r1.resync_rate, uint64_t(2) << 30);
    EXPECT_EQ(r1.secret, "common-secret");
    EXPECT_THAT(p.cfg.sources, ElementsAre("ha.cf", "authkeys", "haresources", kFile, "/etc/drbd.d/r0.res",
                                           "/etc/drbd.d/r1.res", "/etc/drbd.d/global_common.conf"));
}

TEST(DrbdGrammar, HostNamesAreNodeNamesInAnyCase) {
    auto p = drbd("resource r0 { device /dev/drbd0; disk /dev/sdb1;\n"
                  "  on BETA { address 198.51.100.2:7788; }\n  on Alpha { address 198.51.100.1:7788; }\n}\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    const Replica& r = p.cfg.replicas.at(0);
    // In the cluster's order, whatever the file's.
    EXPECT_EQ(r.nodes[0].node, "alpha");
    EXPECT_EQ(r.nodes[1].node, "beta");
}

TEST(DrbdSecret, WithoutASharedSecretTheLinkUsesTheClusterKey) {
    auto p = drbd(resource());
    EXPECT_THAT(p.lines(), IsEmpty());
    const Replica& r = p.cfg.replicas.at(0);
    EXPECT_EQ(r.secret, "s3cret-s3cret");  // filled in by finalize(), so the engine need not know
    EXPECT_TRUE(r.secret_from_auth);
    EXPECT_EQ(link_secret(p.cfg, r), "s3cret-s3cret");
    EXPECT_THAT(to_toml(p.cfg, true), ::testing::HasSubstr("# no secret of its own: the link is authenticated with the [auth] key\n"));
    auto q = drbd(resource("  net { shared-secret own; }\n"));
    EXPECT_EQ(link_secret(q.cfg, q.cfg.replicas.at(0)), "own");
    EXPECT_FALSE(q.cfg.replicas.at(0).secret_from_auth);
}

TEST(DrbdSyntax, ErrorsNameTheLine) {
    // Each broken file stops there: what follows an unbalanced brace cannot be placed.
    // A lost ';' joins two statements: the hint says where.
    EXPECT_EQ(drbd("resource r0 {\n  device /dev/drbd0\n  disk /dev/sdb1;\n}\n").lines().at(0),
              kFile + ":2: error: device: expected `device /dev/drbdN;`, `device /dev/drbdN minor N;` or `device minor N`, got "
                      "'/dev/drbd0 disk /dev/sdb1' (is a ';' missing at the end of line 2?)");
    EXPECT_THAT(drbd("resource r0 {\n  device /dev/drbd0;\n").lines(),
                ElementsAre(kFile + ":1: error: the section opened here with '{' is never closed (a '}' is missing)"));
    EXPECT_THAT(drbd("global { }\n}\n").lines(), ElementsAre(kFile + ":2: error: '}' without a section to close"));
    EXPECT_THAT(drbd("resource r0 {\n  net { shared-secret \"abc; }\n}\n").lines(),
                ElementsAre(kFile + ":2: error: a quoted value opened here is not closed on its line (missing '\"')"));
    EXPECT_THAT(drbd("\n{ }\n").lines(), ElementsAre(Diag(kFile + ":2: error: '{' without a keyword before it", "")));
    EXPECT_THAT(drbd("skip;\n").lines(), ElementsAre(kFile + ":1: error: expected `skip { ... }`: a '{' after skip"));
    EXPECT_THAT(drbd("skip {\n{\n").lines(),
                ElementsAre(kFile + ":1: error: the skip section opened here is never closed (a '}' is missing)"));
    EXPECT_THAT(drbd("resource r0 {\n  device /dev/drbd0;\n}\nresource r1 { device").lines(),
                ElementsAre(kFile + ":4: error: expected ';' after 'device'"));
    std::string deep;
    for (int i = 0; i < 17; ++i) deep += "a {\n";
    EXPECT_THAT(drbd(deep).lines(), ElementsAre(kFile + ":17: error: sections nested more than 16 deep"));
    EXPECT_THAT(drbd("global { usage-count no; }\nresource r0 {\x01}\n").lines(),
                ElementsAre(kFile + ":2: error: the line contains control character 0x01; drbd.conf is a text file"));
    EXPECT_THAT(drbd(std::string("global {\0}\n", 11)).lines(),
                ElementsAre(kFile + ":1: error: the line contains a NUL byte; drbd.conf is a text file"));
}

TEST(DrbdErrors, UnknownKeywordsAndOptions) {
    EXPECT_THAT(drbd("resouce r0 { }\n").lines(),
                ElementsAre(kFile + ":1: error: resouce: unknown top-level keyword 'resouce' (did you mean 'resource'?)"));
    EXPECT_THAT(drbd(resource("  net { shared-secrte x; }\n")).lines(),
                ElementsAre(kFile + ":7: error: shared-secrte: unknown option in net: 'shared-secrte' (did you mean "
                                    "'shared-secret'?)"));
    EXPECT_THAT(drbd(resource("  on gamma { adress 198.51.100.3:7788; }\n")).lines(),
                ElementsAre(kFile + ":7: error: adress: unknown keyword in an on section 'adress' (did you mean 'address'?)",
                            Diag(kFile + ":7: error: on gamma: 'gamma' is not a node of this cluster (alpha and beta)",
                                 "host names in `on` sections must be the node names of ha.cf")));
    EXPECT_THAT(drbd(resource("  frobnicate yes;\n")).lines(),
                ElementsAre(kFile + ":7: error: frobnicate: unknown keyword in a resource 'frobnicate'"));
    EXPECT_THAT(drbd("common { device /dev/drbd0; on alpha { } }\n").lines(),
                ElementsAre(kFile + ":1: error: device: device belongs in a resource, not in common",
                            kFile + ":1: error: on: on belongs in a resource, not in common"));
    EXPECT_THAT(drbd("global { minor-count 64; frobs 1; }\n").lines(),
                ElementsAre(kFile + ":1: warning: minor-count: not supported by Duet, ignored: not used by Duet",
                            kFile + ":1: error: frobs: unknown global option 'frobs'"));
    EXPECT_THAT(drbd(resource("  net { timeout 60 { } }\n")).lines(),
                ElementsAre(kFile + ":7: error: timeout: unexpected section 'timeout' in net"));
    EXPECT_THAT(drbd("\"global\" { }\n").lines(), ElementsAre(kFile + ":1: error: global: expected a keyword, got a quoted string"));
}

TEST(DrbdErrors, ValuesThatDuetRefuses) {
    auto first_error = [](const std::string& text) {
        for (const auto& l : drbd(text).lines())
            if (l.find(": error: ") != std::string::npos) return l;
        return std::string("(no error)");
    };
    EXPECT_EQ(first_error(resource("  protocol D;\n")), kFile + ":7: error: protocol: expected A, B or C, got 'D'");
    EXPECT_EQ(first_error(resource("  protocol;\n")), kFile + ":7: error: protocol: expected `protocol A|B|C;`, got 0 values");
    EXPECT_EQ(first_error(resource("  syncer { rate 10Mbit; }\n")),
              kFile + ":7: error: rate: expected a rate in bytes per second such as 100M (K, M, G: powers of 1024; no "
                      "suffix: KiB/s), at most 1 TiB/s, got '10Mbit'");
    EXPECT_EQ(first_error(resource("  disk { resync-rate 0; }\n")),
              kFile + ":7: error: resync-rate: expected a rate in bytes per second such as 100M (K, M, G: powers of 1024; no "
                      "suffix: KiB/s), at most 1 TiB/s, got '0'");
    EXPECT_EQ(first_error(resource("  net { shared-secret \"\"; }\n")), kFile + ":7: error: shared-secret: the shared secret is empty");
    EXPECT_EQ(first_error("resource r0 { device /dev/drbd0; disk none;\n on alpha { address 198.51.100.1:7788; }\n"
                          " on beta { address 198.51.100.2:7788; } }\n"),
              kFile + ":1: error: disk: disk none (a diskless node) is not supported: Duet needs a backing disk on both nodes");
    EXPECT_EQ(first_error("resource r0 { device /dev/drbd0; disk sdb1; on alpha { address 198.51.100.1:7788; }\n"
                          " on beta { address 198.51.100.2:7788; } }\n"),
              kFile + ":1: error: disk: expected the absolute path of the backing disk, got 'sdb1'");
    EXPECT_EQ(first_error(resource("  meta-disk /dev/sdc1 [0];\n")),
              kFile + ":7: error: meta-disk: indexed external metadata (DRBD's 128 MiB slots) is not supported: use "
                      "`meta-disk internal;` or a metadata device of its own (`meta-disk /dev/...;`)");
    EXPECT_EQ(first_error(resource("  meta-disk /dev/sdc1[1];\n")),
              kFile + ":7: error: meta-disk: indexed external metadata (DRBD's 128 MiB slots) is not supported: use `meta-disk "
              "internal;` or a metadata device of its own (`meta-disk /dev/...;`)");
    EXPECT_EQ(first_error(resource("  meta-disk sdc1;\n")),
              kFile + ":7: error: meta-disk: expected internal or the absolute path of a metadata device, got 'sdc1'");
    EXPECT_EQ(first_error(resource("  device /dev/drbd0 minor x;\n")),
              kFile + ":7: error: device: expected `device /dev/drbdN;`, `device /dev/drbdN minor N;` or `device minor N`, "
                      "got '/dev/drbd0 minor x'");
    EXPECT_EQ(first_error(resource("  device drbd;\n")),
              kFile + ":7: error: device: expected `device /dev/drbdN;`, `device /dev/drbdN minor N;` or `device minor N`, "
                      "got 'drbd'");
    EXPECT_EQ(first_error("resource r0 { device /dev/drbd0; disk /dev/sdb1;\n on alpha { address sdp 198.51.100.1:7788; }\n"
                          " on beta { address 198.51.100.2:7788; } }\n"),
              kFile + ":2: error: address: address family sdp is not supported: Duet replicates over TCP (ipv4 or ipv6)");
    EXPECT_EQ(first_error("resource r0 { device /dev/drbd0; disk /dev/sdb1;\n on alpha { address inet 198.51.100.1:7788; }\n"
                          " on beta { address 198.51.100.2:7788; } }\n"),
              kFile + ":2: error: address: expected an address family ipv4 or ipv6 before the address, got 'inet'");
    EXPECT_EQ(first_error("resource r0 { device /dev/drbd0; disk /dev/sdb1;\n on alpha { address 198.51.100.1:77880; }\n"
                          " on beta { address 198.51.100.2:7788; } }\n"),
              kFile + ":2: error: address: expected ADDRESS:PORT such as 198.51.100.1:7788 or [2001:db8::1]:7788, got "
                      "'198.51.100.1:77880': port '77880' is not a number from 1 to 65535");
    EXPECT_EQ(first_error("resource r0 { device /dev/drbd0; disk /dev/sdb1;\n on alpha { address serv1.example.org:7788; }\n"
                          " on beta { address 198.51.100.2:7788; } }\n"),
              kFile + ":2: error: address: expected an IP address, got 'serv1.example.org' (Duet does not resolve host "
                      "names: DNS may be down exactly when failover matters)");
    EXPECT_EQ(first_error(resource() + resource("", "r0")),
              kFile + ":8: error: resource r0: resource 'r0' is defined twice (also at " + kFile + ":1)");
    EXPECT_EQ(first_error(resource("  on Alpha { address 198.51.100.3:7788; }\n")),
              kFile + ":7: error: on Alpha: host 'alpha' appears twice in resource 'r0' (also at " + kFile + ":5)");
    EXPECT_EQ(first_error(resource("  on alpha_! { }\n")),
              kFile + ":7: error: on alpha_!: expected a host name as `uname -n` prints it (letters, digits, '.', '-', '_'), "
                      "got 'alpha_!'");
    EXPECT_EQ(first_error("common { }\ncommon { }\n"),
              kFile + ":2: error: common: a second common section (the first is at " + kFile + ":1); merge them");
    EXPECT_EQ(first_error(resource("  floating 198.51.100.9:7788 { }\n")),
              kFile + ":7: error: floating: not supported by Duet: Duet needs `on NODE` sections, named as the nodes of ha.cf");
    EXPECT_EQ(first_error("resource r0 { connection-mesh { hosts alpha beta; } }\n"),
              kFile + ":1: error: connection-mesh: not supported by Duet: Duet replicates between the two `on` hosts of a "
                      "resource (DRBD 8 style)");
    EXPECT_EQ(first_error("resource { }\n"), kFile + ":1: error: resource: expected `resource NAME { ... }`, got 0 values");
    EXPECT_EQ(first_error("resource r0;\n"), kFile + ":1: error: resource: expected a section `resource NAME { ... }`");
    EXPECT_EQ(first_error("resource r0 { volume 0 { disk /dev/sdb1; } volume 1 { disk /dev/sdc1; } }\n"),
              kFile + ":1: error: volume: a second volume (1, after volume 0 at " + kFile +
                      ":1): Duet replicates one disk per replica; give each volume a resource of its own");
    EXPECT_EQ(first_error("resource r0 { volume x { } }\n"), kFile + ":1: error: volume: expected a volume number, got 'x'");
}

TEST(DrbdErrors, WhatAResourceLacks) {
    EXPECT_THAT(drbd("resource r0 {\n  disk /dev/sdb1;\n  on alpha { address 198.51.100.1:7788; }\n"
                     "  on beta { address 198.51.100.2:7788; }\n}\n").lines(),
                ElementsAre(kFile + ":3: error: on alpha: no device for alpha: expected `device /dev/drbdN;` in this on section "
                                    "or in resource 'r0'",
                            kFile + ":4: error: on beta: no device for beta: expected `device /dev/drbdN;` in this on section "
                                    "or in resource 'r0'"));
    EXPECT_THAT(drbd("resource r0 {\n  device /dev/drbd0;\n  on alpha { address 198.51.100.1:7788; disk /dev/sdb1; }\n"
                     "  on beta { address 198.51.100.2:7788; }\n}\n").lines(),
                ElementsAre(kFile + ":4: error: on beta: no backing disk for beta: expected `disk /dev/...;` in this on "
                                    "section or in the resource"));
    EXPECT_THAT(drbd("resource r0 {\n  disk /dev/sdb1;\n  on alpha { address 198.51.100.1:7788; device /dev/drbd0; }\n"
                     "  on beta { address 198.51.100.2:7788; device /dev/drbd1; }\n}\n").lines(),
                ElementsAre(kFile + ":4: error: device: Duet serves a replica at the same device path on both nodes: "
                                    "'/dev/drbd1' here, '/dev/drbd0' at " + kFile + ":3"));
    EXPECT_THAT(drbd("resource r0 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n  on alpha { address 198.51.100.1:7788; }\n"
                     "  on beta { }\n}\n").lines(),
                ElementsAre(kFile + ":5: error: on beta: no address for beta: expected `address 198.51.100.1:7788;`"));
    EXPECT_THAT(drbd("resource r0 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n  on alpha { address 198.51.100.1:7788; }\n}\n").lines(),
                ElementsAre(kFile + ":1: error: resource r0: replica r0 has nothing for node beta: expected `on beta { address "
                                    "...; }` in resource r0"));
    EXPECT_THAT(drbd("resource r0 {\n}\n").lines(),
                ElementsAre(kFile + ":1: error: resource r0: no device: expected `device /dev/drbdN;` (or `device minor N;`) in "
                                    "the resource or its on sections",
                            Diag(kFile + ":1: error: resource r0: replica r0 has nothing for node alpha", ""),
                            Diag(kFile + ":1: error: resource r0: replica r0 has nothing for node beta", "")));
}

TEST(DrbdErrors, ReplicasMustNotShareAddressesDevicesOrDisks) {
    auto p = drbd(resource() +
                  "resource r1 {\n  device /dev/drbd0;\n  disk /dev/sdb1;\n"
                  "  on alpha { address 198.51.100.1:7788; }\n  on beta { address 198.51.100.2:7789; disk /dev/sdc1; }\n}\n");
    EXPECT_THAT(p.lines(),
                ElementsAre(kFile + ":9: error: device: replicas r0 and r1 both use the device '/dev/drbd0' (r0 at " + kFile + ":2)",
                            kFile + ":11: error: address: the address 198.51.100.1:7788 is also used at " + kFile +
                                ":5: every node of every replica needs an address and port of its own",
                            kFile + ":10: error: disk: the disk '/dev/sdb1' of alpha is also used at " + kFile +
                                ":3: two replicas cannot share a backing disk"));
    auto same = drbd("resource r0 { device /dev/drbd0; disk /dev/sdb1;\n on alpha { address 198.51.100.1:7788; }\n"
                     " on beta { address 198.51.100.1:7788; } }\n");
    EXPECT_THAT(same.lines(), ElementsAre(Diag(kFile + ":3: error: address: the address 198.51.100.1:7788 is also used at " +
                                                   kFile + ":2",
                                               "")));
}

TEST(DrbdWarnings, OptionsDuetDoesNotUseSayWhatItDoesInstead) {
    auto p = drbd(resource("  net { allow-two-primaries; max-buffers 8000; data-integrity-alg crc32c; csums-alg md5; }\n"
                           "  disk { fencing resource-only; no-disk-flushes; al-extents 3389; c-plan-ahead 0; size 10G; }\n"
                           "  syncer { verify-alg crc32c; after r9; }\n"
                           "  handlers { split-brain \"/usr/lib/drbd/notify-split-brain.sh root\"; fence-peer \"x\"; }\n"
                           "  startup { become-primary-on alpha; }\n"
                           "  options { cpu-mask 1; }\n"));
    std::string at = kFile + ":";
    EXPECT_THAT(p.lines(),
                ElementsAre(at + "7: warning: allow-two-primaries: not supported by Duet, ignored: Duet allows one Primary at a "
                                 "time, never two",
                            Diag(at + "7: warning: max-buffers: not supported by Duet, ignored: ", "sizes its buffers"),
                            Diag(at + "7: warning: data-integrity-alg: not supported by Duet, ignored: ", "encrypt = true"),
                            Diag(at + "7: warning: csums-alg: not supported by Duet, ignored: ", "bitmap"),
                            at + "8: warning: fencing: not supported by Duet, ignored: Duet does not fence the peer: this line "
                                 "gives NO fencing",
                            Diag(at + "8: warning: no-disk-flushes: not supported by Duet, ignored: ", "always passes flushes"),
                            Diag(at + "8: warning: al-extents: not supported by Duet, ignored: ", "activity log"),
                            Diag(at + "8: warning: c-plan-ahead: not supported by Duet, ignored: ", "backs off for application I/O"),
                            Diag(at + "8: warning: size: not supported by Duet, ignored: ", "whole backing disk"),
                            at + "9: warning: verify-alg: 'crc32c' is not supported by Duet, ignored: online verify uses one of "
                                 "md5, sha1, sha256, sha384, sha512",
                            Diag(at + "9: warning: after: not supported by Duet, ignored: ", "independently"),
                            Diag(at + "10: warning: split-brain: handler not run: ", "hactl events"),
                            at + "10: warning: fence-peer: handler not run: Duet runs no DRBD handler scripts and does not fence "
                                 "the peer",
                            Diag(at + "11: warning: become-primary-on: not supported by Duet, ignored: ", "drbddisk::NAME"),
                            at + "12: warning: cpu-mask: not supported by Duet, ignored: not used by Duet"));
    EXPECT_FALSE(p.diag.has_errors());
    EXPECT_TRUE(p.cfg.replicas.at(0).verify_alg.empty());
}

TEST(DrbdIncludes, RelativeToTheIncludingFileAndNested) {
    auto p = drbd("include \"drbd.d/*.res\";\n",
                  {{"/etc/drbd.d/a.res", "include \"sub/*.conf\";\n"},
                   {"/etc/drbd.d/sub/r0.conf", resource()},
                   {"/etc/drbd.d/r0.conf", "not included: no .res"}});
    EXPECT_THAT(p.lines(), IsEmpty());
    ASSERT_EQ(p.cfg.replicas.size(), 1u);
    EXPECT_EQ(p.cfg.replicas[0].origin.str(), "/etc/drbd.d/sub/r0.conf:1");
    // A wildcard that matches nothing is fine (drbd.d/*.res with no resource yet).
    EXPECT_THAT(drbd("include \"drbd.d/*.res\";\n").lines(), IsEmpty());
}

TEST(DrbdIncludes, LoopsAndReaderlessParsingAreErrors) {
    auto p = drbd("include \"/etc/drbd.conf\";\n", {{"/etc/drbd.conf", "include \"/etc/drbd.conf\";\n"}});
    EXPECT_THAT(p.lines(), ElementsAre("/etc/drbd.conf:1: error: include: includes nested more than 8 deep: does a file "
                                       "include itself?"));
    Parsed q;
    parse_drbdconf("include \"drbd.d/*.res\";\n", "drbd.conf", q.cfg, q.diag);
    EXPECT_THAT(q.lines(), ElementsAre("drbd.conf:1: error: include: includes are not followed here (only when the file is "
                                       "loaded from disk)"));
    EXPECT_THAT(drbd("include;\n").lines(),
                ElementsAre(kFile + ":1: error: include: expected `include \"PATTERN\";`, got 0 values"));
}

TEST(DrbdIncludes, TheFileReaderGlobsInNameOrderAndNamesTheIncludeLine) {
    TempDir dir;
    ASSERT_EQ(::mkdir(dir.file("drbd.d").c_str(), 0755), 0);
    dir.write("drbd.d/b.res", "resource rb { }\n");
    dir.write("drbd.d/a.res", "resource ra { }\n");
    Origin at{"drbd.conf", 3, "include"};
    Diagnostics diag;
    auto files = read_included_files(dir.file("drbd.d/*.res"), at, diag);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0].path, dir.file("drbd.d/a.res"));
    EXPECT_EQ(files[1].text, "resource rb { }\n");
    EXPECT_TRUE(read_included_files(dir.file("drbd.d/*.conf"), at, diag).empty());
    EXPECT_THAT(strs(diag), IsEmpty());
    EXPECT_TRUE(read_included_files(dir.file("missing.conf"), at, diag).empty());
    EXPECT_THAT(strs(diag), ElementsAre("drbd.conf:3: error: include: '" + dir.file("missing.conf") +
                                        "': cannot open: No such file or directory"));
}

TEST(DrbdHaresources, TheChainNamesDefinedReplicas) {
    std::string fs = "Filesystem::/dev/drbd0::/data::ext3";
    EXPECT_THAT(drbd(resource(), {}, "alpha 198.51.100.20 drbddisk::r0 " + fs + " samba\n").lines(), IsEmpty());
    EXPECT_THAT(drbd(resource(), {}, "alpha 198.51.100.20 replica::r0 " + fs + "\n").lines(), IsEmpty());
    EXPECT_THAT(drbd(resource(), {}, "alpha 198.51.100.20 drbddisk::r1 " + fs + "\n").lines(),
                ElementsAre("haresources:1: error: drbddisk::r1: no replica is named 'r1' (defined: r0)",
                            Diag("haresources:1: warning: " + fs + ": the filesystem is on replica r0's device '/dev/drbd0'",
                                 "put drbddisk::r0 (or replica::r0) before it")));
    EXPECT_THAT(drbd("", {}, "alpha drbddisk::r0\n").lines(),
                ElementsAre("haresources:1: error: drbddisk::r0: no replica is named 'r0': none is defined (add a drbd.conf "
                            "next to ha.cf, or [replica.r0] to duet.toml)"));
    EXPECT_THAT(drbd(resource(), {}, "alpha drbddisk\n").lines(),
                ElementsAre("haresources:1: error: drbddisk: drbddisk needs the replica's name, such as drbddisk::r0 (Duet "
                            "promotes one replica per resource)"));
    EXPECT_THAT(drbd(resource(), {}, "alpha 198.51.100.20 " + fs + " drbddisk::r0\n").lines(),
                ElementsAre("haresources:1: warning: " + fs + ": the filesystem is on replica r0's device '/dev/drbd0', which "
                            "exists only where the replica is Primary, but no earlier resource of this group promotes it; put "
                            "drbddisk::r0 (or replica::r0) before it"));
    EXPECT_THAT(drbd(resource(), {}, "alpha drbddisk::r0\nbeta replica::r0\n").lines(),
                ElementsAre("haresources:2: error: replica::r0: replica r0 is also in group 'drbddisk::r0' at haresources:1: "
                            "two groups cannot both promote one replica"));
}

}  // namespace
}  // namespace duet::config::test
