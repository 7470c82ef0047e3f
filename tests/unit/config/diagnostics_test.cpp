// Diagnostic lines, path names and resource text: the strings users and logs see.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

TEST(Diagnostic, ErrorWithFileLineAndDirective) {
    Diagnostic d{Diagnostic::Severity::Error, Origin{"ha.cf", 12, "deadtime"}, "deadtime",
                 "expected a duration such as 30 or 500ms, got 'x'"};
    EXPECT_EQ(d.str(), "ha.cf:12: error: deadtime: expected a duration such as 30 or 500ms, got 'x'");
}

TEST(Diagnostic, WarningWithoutDirective) {
    Diagnostic d{Diagnostic::Severity::Warning, Origin{"haresources", 3}, "", "something"};
    EXPECT_EQ(d.str(), "haresources:3: warning: something");
}

TEST(Diagnostic, WholeFileAndNoFile) {
    EXPECT_EQ((Diagnostic{Diagnostic::Severity::Error, Origin{"/etc/ha.d/ha.cf", 0}, "", "cannot open"}).str(),
              "/etc/ha.d/ha.cf: error: cannot open");
    EXPECT_EQ((Diagnostic{Diagnostic::Severity::Error, Origin{}, "", "nothing"}).str(), "error: nothing");
}

TEST(Diagnostic, ColumnForSyntaxErrors) {
    Origin o{"duet.toml", 4, "", 7};
    EXPECT_EQ(o.str(), "duet.toml:4:7");
}

TEST(Diagnostics, CollectsInOrderAndTellsErrors) {
    Diagnostics d;
    EXPECT_FALSE(d.has_errors());
    d.warn(Origin{"a", 1}, "x", "w");
    EXPECT_FALSE(d.has_errors());
    d.error(Origin{"a", 2}, "y", "e");
    EXPECT_TRUE(d.has_errors());
    EXPECT_EQ(d.str(), "a:1: warning: x: w\na:2: error: y: e\n");
}

TEST(PathName, EveryKind) {
    Path m{PathKind::Mcast, "eth0", "239.0.0.10", 694};
    EXPECT_EQ(m.name(), "mcast eth0 239.0.0.10:694");
    Path m6{PathKind::Mcast, "eth0", "ff02::694", 700};
    EXPECT_EQ(m6.name(), "mcast eth0 [ff02::694]:700");
    Path b{PathKind::Bcast, "eth1", "", 694};
    EXPECT_EQ(b.name(), "bcast eth1:694");
    Path u{PathKind::Ucast, "eth0", "198.51.100.2", 694};
    EXPECT_EQ(u.name(), "ucast eth0 198.51.100.2:694");
    Path u2{PathKind::Ucast, "", "203.0.113.2", 695};
    EXPECT_EQ(u2.name(), "ucast 203.0.113.2:695");
}

TEST(ResourceText, BackToHaresourcesForm) {
    Resource r{"Filesystem", {"/dev/drbd0", "/data", "ext3"}};
    EXPECT_EQ(r.str(), "Filesystem::/dev/drbd0::/data::ext3");
    EXPECT_EQ((Resource{"samba", {}}).str(), "samba");
}

}  // namespace
}  // namespace duet::config::test
