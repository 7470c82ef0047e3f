// parse_duration and format_duration.
#include "helpers.hpp"

namespace duet::config::test {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, Seconds) {
    EXPECT_EQ(parse_duration("30"), milliseconds(30000));
    EXPECT_EQ(parse_duration("0"), milliseconds(0));
    EXPECT_EQ(parse_duration("30s"), milliseconds(30000));
    EXPECT_EQ(parse_duration("2sec"), milliseconds(2000));
    EXPECT_EQ(parse_duration("1.5"), milliseconds(1500));
    EXPECT_EQ(parse_duration("1.5s"), milliseconds(1500));
    EXPECT_EQ(parse_duration(".5"), milliseconds(500));
    EXPECT_EQ(parse_duration("5."), milliseconds(5000));
    EXPECT_EQ(parse_duration("0.001"), milliseconds(1));
}

TEST(ParseDuration, MillisecondsAndMicroseconds) {
    EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
    EXPECT_EQ(parse_duration("500MS"), milliseconds(500));
    EXPECT_EQ(parse_duration("500msec"), milliseconds(500));
    EXPECT_EQ(parse_duration("1000000us"), milliseconds(1000));
    EXPECT_EQ(parse_duration("1000usec"), milliseconds(1));
    EXPECT_EQ(parse_duration("2 s"), milliseconds(2000));
    EXPECT_EQ(parse_duration(" 3 "), milliseconds(3000));
}

TEST(ParseDuration, RoundsToNearestMillisecondHalfUp) {
    EXPECT_EQ(parse_duration("0.0005"), milliseconds(1));
    EXPECT_EQ(parse_duration("0.0004999"), milliseconds(0));
    EXPECT_EQ(parse_duration("1.5ms"), milliseconds(2));
    EXPECT_EQ(parse_duration("1.4ms"), milliseconds(1));
    EXPECT_EQ(parse_duration("499us"), milliseconds(0));
    EXPECT_EQ(parse_duration("500us"), milliseconds(1));
    EXPECT_EQ(parse_duration("1.23456789123s"), milliseconds(1235));
}

TEST(ParseDuration, Malformed) {
    for (const char* bad : {"", " ", "-1", "+1", "1m", "1min", "s", "ms", ".", "1..2", "1.2.3", "1e3", "0x10", "1 2",
                            "one", "1s s", "1000000000000000"}) {
        EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
    }
}

TEST(ParseDuration, Largest) {
    EXPECT_EQ(parse_duration("999999999999"), milliseconds(999999999999000));
}

TEST(FormatDuration, SecondsWhenWhole) {
    EXPECT_EQ(format_duration(milliseconds(2000)), "2s");
    EXPECT_EQ(format_duration(milliseconds(0)), "0s");
    EXPECT_EQ(format_duration(milliseconds(500)), "500ms");
    EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
    for (int64_t ms : {0, 1, 999, 1000, 1001, 30000, 86400000})
        EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), milliseconds(ms));
}

}  // namespace
}  // namespace duet::config::test
