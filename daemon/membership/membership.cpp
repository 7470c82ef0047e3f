// Membership state machine. See membership.hpp for the contract; the timing rules are:
//   initdead: no contact by start+initdead            -> PeerDead at start+initdead
//   warntime: silence on every path reaches warntime  -> PeerLate at last_heard+warntime (once)
//   deadtime: silence on every path reaches deadtime  -> PeerDead at last_heard+deadtime
//   path:     silence on one path reaches deadtime    -> PathDown at path.last_heard+deadtime
// A deadline is reached when now >= deadline; the event carries the deadline, not `now`, so a late
// on_tick (suspend, busy loop) reports when things happened, in time order.
#include "daemon/membership/membership.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace duet::membership {

const char* to_string(PeerState s) {
    switch (s) {
        case PeerState::Unknown: return "unknown";
        case PeerState::Up: return "up";
        case PeerState::Dead: return "dead";
    }
    return "?";
}

const char* to_string(PathState s) {
    switch (s) {
        case PathState::Unknown: return "unknown";
        case PathState::Up: return "up";
        case PathState::Down: return "down";
    }
    return "?";
}

const char* to_string(Event::Kind k) {
    switch (k) {
        case Event::Kind::PeerUp: return "peer-up";
        case Event::Kind::PeerRestarted: return "peer-restarted";
        case Event::Kind::PeerLate: return "peer-late";
        case Event::Kind::PeerDead: return "peer-dead";
        case Event::Kind::PathUp: return "path-up";
        case Event::Kind::PathDown: return "path-down";
        case Event::Kind::LateHeartbeat: return "late-heartbeat";
    }
    return "?";
}

void GapHistogram::add(Millis gap) {
    if (gap < Millis{0}) gap = Millis{0};
    const int64_t g = gap.count();
    size_t i = 0;
    while (i + 1 < kBounds.size() && g >= kBounds[i]) ++i;
    ++counts[i];
    if (gap > max) max = gap;
    ++total;
}

namespace {

void check_timings(Millis keepalive, Millis warntime, Millis deadtime, Millis initdead) {
    if (keepalive <= Millis{0}) throw std::invalid_argument("membership: keepalive must be positive");
    if (warntime <= Millis{0}) throw std::invalid_argument("membership: warntime must be positive");
    if (deadtime <= Millis{0}) throw std::invalid_argument("membership: deadtime must be positive");
    if (initdead < Millis{0}) throw std::invalid_argument("membership: initdead must not be negative");
}

// Ties between events due at the same instant: paths go down before the peer is declared late or
// dead (the last path's silence is the peer's silence).
int tie_rank(Event::Kind k) {
    switch (k) {
        case Event::Kind::PathDown: return 0;
        case Event::Kind::PeerLate: return 1;
        case Event::Kind::PeerDead: return 2;
        default: return 3;
    }
}

}  // namespace

Membership::Membership(Settings settings, Time start) : settings_(std::move(settings)), start_(start) {
    check_timings(settings_.keepalive, settings_.warntime, settings_.deadtime, settings_.initdead);
    if (settings_.paths.empty()) throw std::invalid_argument("membership: at least one path is needed");
    paths_.reserve(settings_.paths.size());
    for (const auto& name : settings_.paths) {
        PathStatus p;
        p.name = name;
        paths_.push_back(std::move(p));
    }
    peer_.since = start;
}

void Membership::set_timings(Millis keepalive, Millis warntime, Millis deadtime, Millis initdead) {
    check_timings(keepalive, warntime, deadtime, initdead);
    settings_.keepalive = keepalive;
    settings_.warntime = warntime;
    settings_.deadtime = deadtime;
    settings_.initdead = initdead;
}

Time Membership::next_deadline() const {
    Time next = Time::max();
    if (peer_.state == PeerState::Unknown && !peer_.last_heard) next = std::min(next, start_ + settings_.initdead);
    if (peer_.state == PeerState::Up && peer_.last_heard) {
        if (!late_reported_ && settings_.warntime < settings_.deadtime)
            next = std::min(next, *peer_.last_heard + settings_.warntime);
        next = std::min(next, *peer_.last_heard + settings_.deadtime);
    }
    for (const auto& p : paths_)
        if (p.state == PathState::Up && p.last_heard) next = std::min(next, *p.last_heard + settings_.deadtime);
    return next;
}

std::vector<Event> Membership::on_tick(Time now) {
    // Nothing but the clock changes during a tick, so every deadline that has passed can be
    // computed from the current state; then they are applied in time order.
    std::vector<Event> due;

    if (peer_.state == PeerState::Unknown && !peer_.last_heard) {
        const Time at = start_ + settings_.initdead;
        if (now >= at) due.push_back(Event{Event::Kind::PeerDead, at, -1, settings_.initdead, 0});
    }
    if (peer_.state == PeerState::Up && peer_.last_heard) {
        const Time warn_at = *peer_.last_heard + settings_.warntime;
        const Time dead_at = *peer_.last_heard + settings_.deadtime;
        if (!late_reported_ && settings_.warntime < settings_.deadtime && now >= warn_at)
            due.push_back(Event{Event::Kind::PeerLate, warn_at, -1, settings_.warntime, peer_.generation});
        if (now >= dead_at)
            due.push_back(Event{Event::Kind::PeerDead, dead_at, -1, settings_.deadtime, peer_.generation});
    }
    for (size_t i = 0; i < paths_.size(); ++i) {
        const auto& p = paths_[i];
        if (p.state != PathState::Up || !p.last_heard) continue;
        const Time at = *p.last_heard + settings_.deadtime;
        if (now >= at) due.push_back(Event{Event::Kind::PathDown, at, static_cast<int>(i), settings_.deadtime, 0});
    }

    std::stable_sort(due.begin(), due.end(), [](const Event& a, const Event& b) {
        if (a.at != b.at) return a.at < b.at;
        return tie_rank(a.kind) < tie_rank(b.kind);
    });

    for (const auto& e : due) {
        switch (e.kind) {
            case Event::Kind::PeerLate: late_reported_ = true; break;
            case Event::Kind::PeerDead:
                peer_.state = PeerState::Dead;
                peer_.since = e.at;
                ++peer_.deaths;
                break;
            case Event::Kind::PathDown: paths_[static_cast<size_t>(e.path)].state = PathState::Down; break;
            default: break;
        }
    }
    return due;
}

std::vector<Event> Membership::on_heartbeat(int path, Time now, uint64_t generation, uint8_t reported_state) {
    if (path < 0 || static_cast<size_t>(path) >= paths_.size())
        throw std::out_of_range("membership: heartbeat on unknown path " + std::to_string(path));

    // Deadlines that passed before this heartbeat happened first (the caller's timer may not have
    // fired yet): a heartbeat arriving exactly at the death point comes from a peer already dead.
    std::vector<Event> events = on_tick(now);

    auto& p = paths_[static_cast<size_t>(path)];
    // A gap is an interval between heartbeats of one continuous contact: after the path was down,
    // the peer dead, or a restart (new generation), the silence was an outage, already reported
    // as such, and neither a late heartbeat nor a sample for tuning deadtime.
    const bool continuous = p.state == PathState::Up && peer_.state == PeerState::Up && generation == peer_.generation;
    // Time is monotonic; should a caller ever pass an earlier time, gaps count as zero.
    if (p.last_heard && continuous) {
        const Millis gap = std::max(now - *p.last_heard, Millis{0});
        p.gaps.add(gap);
        if (gap > settings_.warntime) {
            ++p.late;
            events.push_back(Event{Event::Kind::LateHeartbeat, now, path, gap, generation});
            if (peer_.last_heard && now - *peer_.last_heard > settings_.warntime) ++peer_.late;
        }
    }
    ++p.received;
    if (!p.last_heard || now > *p.last_heard) p.last_heard = now;
    if (p.state != PathState::Up) {
        p.state = PathState::Up;
        events.push_back(Event{Event::Kind::PathUp, now, path, Millis{0}, generation});
    }

    if (peer_.state != PeerState::Up) {
        // First contact, or return after death.
        peer_.state = PeerState::Up;
        peer_.since = now;
        peer_.generation = generation;
        events.push_back(Event{Event::Kind::PeerUp, now, -1, Millis{0}, generation});
    } else if (generation != peer_.generation) {
        // Restarted without ever being silent for deadtime.
        ++peer_.restarts;
        events.push_back(Event{Event::Kind::PeerRestarted, now, -1, Millis{0}, generation});
        peer_.generation = generation;
    }
    late_reported_ = false;
    peer_.reported_state = reported_state;
    if (!peer_.last_heard || now > *peer_.last_heard) peer_.last_heard = now;
    return events;
}

}  // namespace duet::membership
