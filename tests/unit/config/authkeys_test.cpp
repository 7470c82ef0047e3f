// authkeys: key selection, methods, and every error. The owner and mode checks are in load_test.cpp.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(Authkeys, SelectsTheKeyNamedByAuth) {
    auto p = authkeys("# keys\nauth 2\n1 md5 first secret\n2 sha1 second#secret  with spaces \n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.auth.method, "sha1");
    EXPECT_EQ(p.cfg.auth.secret, "second#secret  with spaces");
    EXPECT_EQ(p.cfg.auth.origin.str(), "authkeys:4");
    EXPECT_THAT(p.cfg.sources, ElementsAre("authkeys"));
}

TEST(Authkeys, Md5AndMethodCase) {
    auto p = authkeys("auth 1\n1 MD5 abc\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.auth.method, "md5");
    EXPECT_EQ(p.cfg.auth.secret, "abc");
}

TEST(Authkeys, AuthMayFollowTheKeys) {
    auto p = authkeys("3 sha1 k3\nauth 3\n");
    EXPECT_THAT(p.lines(), IsEmpty());
    EXPECT_EQ(p.cfg.auth.secret, "k3");
}

TEST(Authkeys, CrcIsRefusedWithAnExplanation) {
    auto p = authkeys("auth 1\n1 crc\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:2: error: key 1: ",
                                            "method crc is refused: it is a checksum, not authentication")));
    EXPECT_TRUE(p.cfg.auth.secret.empty());
    EXPECT_THAT(p.lines()[0], Diag("authkeys:2: error: key 1: ", "Use `1 sha1 SECRET`"));
}

TEST(Authkeys, UnselectedCrcKeyIsAWarning) {
    auto p = authkeys("auth 2\n1 crc\n2 sha1 good\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:2: warning: key 1: ", "not selected by `auth` and is ignored")));
    EXPECT_EQ(p.cfg.auth.secret, "good");
}

TEST(Authkeys, MissingAuthLine) {
    auto p = authkeys("1 sha1 secret\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys: error: auth: ", "no `auth N` line")));
    EXPECT_TRUE(p.cfg.auth.secret.empty());
}

TEST(Authkeys, SelectedKeyNotDefined) {
    auto p = authkeys("auth 3\n1 sha1 secret\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:1: error: auth: ", "selects key 3, which is not defined in this file")));
}

TEST(Authkeys, DuplicateKeyIndex) {
    auto p = authkeys("auth 1\n1 sha1 first\n1 sha1 second\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:3: error: key 1: ", "key 1 is defined twice (first at authkeys:2)")));
    EXPECT_EQ(p.cfg.auth.secret, "first");
}

TEST(Authkeys, EmptySecret) {
    auto p = authkeys("auth 1\n1 sha1\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:2: error: key 1: ", "empty secret: expected `1 sha1 SECRET`")));
    EXPECT_TRUE(p.cfg.auth.secret.empty());
}

TEST(Authkeys, UnknownMethodAndMissingMethod) {
    auto p = authkeys("auth 1\n1 sha256 x\n2\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:2: error: key 1: ", "unknown method 'sha256': expected sha1 or md5"),
                                       Diag("authkeys:3: error: key 2: ", "got no method")));
}

TEST(Authkeys, AuthLineErrors) {
    auto p = authkeys("auth\nauth x\nauth 16\nauth 1 2\nauth 1\nauth 1\n1 sha1 s\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:1: error: auth: ", "expected `auth N` with one key number, got 0 values"),
                                       Diag("authkeys:2: error: auth: ", "expected a key number from 0 to 15, got 'x'"),
                                       Diag("authkeys:3: error: auth: ", "got '16'"),
                                       Diag("authkeys:4: error: auth: ", "got 2 values"),
                                       Diag("authkeys:6: error: auth: ", "a second `auth` line (the first is at authkeys:5)")));
    EXPECT_EQ(p.cfg.auth.secret, "s");
}

TEST(Authkeys, KeyIndexOutOfRangeAndGarbage) {
    auto p = authkeys("auth 1\n1 sha1 s\n16 sha1 x\nhello world\n");
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:3: error: key 16: ", "key numbers go from 0 to 15"),
                                       Diag("authkeys:4: error: ", "expected `auth N` or `N METHOD SECRET`")));
}

TEST(Authkeys, BinaryLine) {
    auto p = authkeys(std::string("auth 1\n1 sha1 a\x01" "b\n"));
    EXPECT_THAT(p.lines(), ElementsAre(Diag("authkeys:2: error: ", "control character 0x01"),
                                       Diag("authkeys:1: error: auth: ", "not defined")));
}

}  // namespace
}  // namespace duet::config::test
