// Membership: a pure state machine. Authenticated heartbeats and the clock go in; the peer's and
// each path's state, and events describing changes, come out. No I/O, no sleeps, no real clock:
// time is whatever the caller passes, so tests drive it in simulated milliseconds.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace duet::membership {

using Millis = std::chrono::milliseconds;
using Time = std::chrono::milliseconds;  // monotonic time since an arbitrary origin

struct Settings {
    Millis keepalive{2000};
    Millis warntime{10000};
    Millis deadtime{30000};
    Millis initdead{60000};
    std::vector<std::string> paths;  // path names, index = path id
};

enum class PeerState { Unknown, Up, Dead };
enum class PathState { Unknown, Up, Down };
const char* to_string(PeerState s);
const char* to_string(PathState s);

// Heartbeat gaps (time between consecutive heartbeats on one path), in fixed buckets, for tuning
// deadtime. Bucket i counts gaps < kBounds[i] (and >= kBounds[i-1]); the last bucket is unbounded.
struct GapHistogram {
    static constexpr std::array<int64_t, 13> kBounds{10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000, INT64_MAX};
    std::array<uint64_t, 13> counts{};
    Millis max{0};
    uint64_t total = 0;
    void add(Millis gap);
};

struct PathStatus {
    std::string name;
    PathState state = PathState::Unknown;
    std::optional<Time> last_heard;
    uint64_t received = 0;
    uint64_t late = 0;        // gaps on this path longer than warntime
    GapHistogram gaps;
};

struct PeerStatus {
    PeerState state = PeerState::Unknown;
    std::optional<Time> last_heard;   // on any path
    std::optional<Time> since;        // when `state` was entered
    uint64_t generation = 0;          // peer's boot generation, 0 if never heard
    uint8_t reported_state = 0;       // peer's self-reported NodeState (proto), 0 if never heard
    uint64_t late = 0;                // heartbeats (any path) that came after more than warntime
    uint64_t deaths = 0;
    uint64_t restarts = 0;            // generation changes seen without a death in between
};

struct Event {
    enum class Kind {
        PeerUp,         // first contact, or return after death (detail: generation)
        PeerRestarted,  // new generation while up: peer restarted within deadtime
        PeerLate,       // silence on every path passed warntime (gap = silence so far); once per silence
        PeerDead,       // silence on every path passed deadtime, or initdead passed with no contact
        PathUp,         // a path heard after Unknown or Down
        PathDown,       // a path silent for deadtime
        LateHeartbeat,  // a heartbeat arrived after a gap > warntime on its path (gap = that gap)
    };
    Kind kind;
    Time at{0};
    int path = -1;       // path id for path events
    Millis gap{0};       // silence or gap, where meaningful
    uint64_t generation = 0;
};
const char* to_string(Event::Kind k);

class Membership {
public:
    Membership(Settings settings, Time start);

    // An authenticated, non-replayed heartbeat from the peer arrived on `path` at `now`.
    std::vector<Event> on_heartbeat(int path, Time now, uint64_t generation, uint8_t reported_state);
    // The clock advanced; call at least at next_deadline().
    std::vector<Event> on_tick(Time now);
    // The next time at which on_tick may produce an event (the caller arms a timer for it).
    Time next_deadline() const;

    // New timings (SIGHUP). Paths are unchanged.
    void set_timings(Millis keepalive, Millis warntime, Millis deadtime, Millis initdead);

    const PeerStatus& peer() const { return peer_; }
    const std::vector<PathStatus>& paths() const { return paths_; }
    const Settings& settings() const { return settings_; }

private:
    Settings settings_;
    Time start_;
    PeerStatus peer_;
    std::vector<PathStatus> paths_;
    bool late_reported_ = false;
};

}  // namespace duet::membership
