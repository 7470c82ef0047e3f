#include "daemon/util/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <vector>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

namespace duet::log {
namespace {

struct State {
    std::string ident = "duetd";
    bool verbose = false;
    bool journal = false;
    std::mutex mu;
};
State& state() {
    static State s;
    return s;
}

// systemd sets JOURNAL_STREAM=dev:ino for the stream it connected; only use the journal if stderr
// is still that stream (not redirected by the user).
bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

const char* level_name(Level l) {
    switch (l) {
        case Level::Error: return "error";
        case Level::Warning: return "warning";
        case Level::Notice: return "notice";
        case Level::Info: return "info";
        case Level::Debug: return "debug";
    }
    return "?";
}

}  // namespace

void init(std::string_view ident, bool verbose) {
    auto& s = state();
    s.ident = std::string(ident);
    s.verbose = verbose;
    s.journal = stderr_is_journal();
}

bool to_journal() { return state().journal; }

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
    auto& s = state();
    if (level == Level::Debug && !s.verbose) return;
    std::lock_guard lock(s.mu);
    if (s.journal) {
        std::vector<std::string> strs;
        strs.reserve(fields.size() + 3);
        strs.push_back("MESSAGE=" + std::string(message));
        strs.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
        strs.push_back("SYSLOG_IDENTIFIER=" + s.ident);
        for (const auto& [k, v] : fields) strs.push_back(std::string(k) + "=" + v);
        std::vector<iovec> iov;
        iov.reserve(strs.size());
        for (auto& x : strs) iov.push_back({x.data(), x.size()});
        sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
        return;
    }
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string line;
    line.reserve(message.size() + 64);
    line += ts;
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms));
    line += frac;
    line += ' ';
    line += s.ident;
    line += '[' + std::to_string(getpid()) + "]: ";
    line += level_name(level);
    line += ": ";
    line += message;
    line += '\n';
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

bool RateLimiter::allow(const std::string& key, int64_t now_ms, uint64_t& suppressed) {
    auto& e = entries_[key];
    if (e.used && now_ms - e.last < interval_ms_) {
        ++e.dropped;
        return false;
    }
    suppressed = e.dropped;
    e.dropped = 0;
    e.last = now_ms;
    e.used = true;
    if (entries_.size() > 4096) {  // hostile traffic from many sources must not grow memory without bound
        for (auto it = entries_.begin(); it != entries_.end();) {
            if (now_ms - it->second.last >= interval_ms_ && it->second.dropped == 0) it = entries_.erase(it);
            else ++it;
        }
    }
    return true;
}

}  // namespace duet::log
