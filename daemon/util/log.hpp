// Logging: structured journal entries when stderr is connected to the journal (systemd sets
// JOURNAL_STREAM), plain timestamped lines on stderr otherwise.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <cstdint>
#include <utility>

namespace duet::log {

enum class Level { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };  // syslog priorities

using Field = std::pair<std::string_view, std::string>;  // extra journal field: {"DUET_PATH", "mcast eth0 ..."}

void init(std::string_view ident, bool verbose);
bool to_journal();
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Error, m, f); }
inline void warning(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Warning, m, f); }
inline void notice(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Notice, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Info, m, f); }
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Debug, m, f); }

// Limits a repeated message (per key) to one line per interval, reporting how many were suppressed.
class RateLimiter {
public:
    explicit RateLimiter(int64_t interval_ms) : interval_ms_(interval_ms) {}
    // True when the caller should log now; `suppressed` is how many were dropped since the last one.
    bool allow(const std::string& key, int64_t now_ms, uint64_t& suppressed);
private:
    struct Entry { int64_t last = 0; uint64_t dropped = 0; bool used = false; };
    int64_t interval_ms_;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace duet::log
