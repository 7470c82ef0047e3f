// Wall-clock timestamps for events and status: "2026-11-22T04:01:02.345Z" (UTC, milliseconds).
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace duet::util {

inline std::string utc_now() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[40];
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
    return buf;
}

}  // namespace duet::util
