#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "daemon/state/generation.hpp"

namespace fs = std::filesystem;
using duet::state::next_generation;

class Generation : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/duet-gen-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    void TearDown() override { fs::remove_all(dir); }
    std::string read() {
        std::ifstream f(dir + "/generation");
        std::string s;
        std::getline(f, s);
        return s;
    }
    std::string dir;
};

TEST_F(Generation, StartsAtTheClockAndIncrements) {
    EXPECT_EQ(next_generation(dir, 1000), 1000u);
    EXPECT_EQ(read(), "1000");
    EXPECT_EQ(next_generation(dir, 1000), 1001u) << "two starts in the same second";
    EXPECT_EQ(next_generation(dir, 900), 1002u) << "a clock set back never makes it go backwards";
    EXPECT_EQ(next_generation(dir, 5000), 5000u);
    EXPECT_FALSE(fs::exists(dir + "/generation.tmp"));
}

TEST_F(Generation, LostOrCorruptFileStillMovesForward) {
    next_generation(dir, 1000);
    fs::remove(dir + "/generation");
    EXPECT_EQ(next_generation(dir, 1200), 1200u);
    std::ofstream(dir + "/generation") << "garbage\n";
    EXPECT_EQ(next_generation(dir, 1300), 1300u);
    EXPECT_EQ(read(), "1300");
}

TEST_F(Generation, CreatesTheStateDirectory) {
    EXPECT_EQ(next_generation(dir + "/a/b", 7), 7u);
    EXPECT_TRUE(fs::is_directory(dir + "/a/b"));
}

TEST_F(Generation, UnwritableDirectoryIsAClearError) {
    std::ofstream(dir + "/file") << "x";
    try {
        next_generation(dir + "/file/sub", 1);
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(dir + "/file/sub"), std::string::npos) << e.what();
    }
}
