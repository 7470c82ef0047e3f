#include "daemon/heartbeat/service.hpp"

#include <ctime>

#include "daemon/util/clock.hpp"
#include <stdexcept>

namespace duet::heartbeat {
namespace asio = boost::asio;
using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

std::vector<config::Path> without_own(std::vector<config::Path> paths, std::vector<std::string>& dropped) {
    dropped = transport::drop_own_ucast(paths);
    if (paths.empty())
        throw std::runtime_error("no heartbeat path is left for this node: every configured path is a ucast path to "
                                 "one of this node's own addresses (list the peer's address, or add an mcast path)");
    return paths;
}

membership::Settings settings_of(const config::Timings& t, const std::vector<config::Path>& paths) {
    membership::Settings s;
    s.keepalive = t.keepalive;
    s.warntime = t.warntime;
    s.deadtime = t.deadtime;
    s.initdead = t.initdead;
    for (const auto& p : paths) s.paths.push_back(p.name());
    return s;
}

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

const char* hint_for(proto::DecodeError e) {
    switch (e) {
        case proto::DecodeError::BadMac: return " (a sender with another key: check authkeys on both nodes)";
        case proto::DecodeError::WrongCluster: return " (another cluster on the same group and port)";
        case proto::DecodeError::BadVersion: return " (a Duet of another protocol version)";
        default: return "";
    }
}

// Stable names for the status and event schema (docs/control.md); the codec's and the state
// machine's own texts are for humans and may change.
const char* reason_key(proto::DecodeError e) {
    switch (e) {
        case proto::DecodeError::None: return "none";
        case proto::DecodeError::Truncated: return "truncated";
        case proto::DecodeError::Oversized: return "oversized";
        case proto::DecodeError::BadMagic: return "bad_magic";
        case proto::DecodeError::BadVersion: return "bad_version";
        case proto::DecodeError::Malformed: return "malformed";
        case proto::DecodeError::WrongCluster: return "wrong_cluster";
        case proto::DecodeError::BadMac: return "bad_mac";
    }
    return "unknown";
}

const char* event_type(membership::Event::Kind k) {
    using K = membership::Event::Kind;
    switch (k) {
        case K::PeerUp: return "peer_up";
        case K::PeerRestarted: return "peer_restarted";
        case K::PeerLate: return "peer_late";
        case K::PeerDead: return "peer_dead";
        case K::PathUp: return "path_up";
        case K::PathDown: return "path_down";
        case K::LateHeartbeat: return "late_heartbeat";
    }
    return "unknown";
}

std::string ip_of(const std::string& source) {
    auto colon = source.rfind(':');
    return colon == std::string::npos ? source : source.substr(0, colon);
}

}  // namespace

Service::Service(asio::io_context& io, const config::Config& cfg, Identity id, EventSink sink)
    : io_(io),
      id_(std::move(id)),
      cluster_id_(proto::cluster_id_of(id_.cluster)),
      timings_(cfg.timings),
      sink_(std::move(sink)),
      paths_(without_own(cfg.paths, dropped_paths_)),
      transport_(io, paths_,
                 [this](int p, std::span<const uint8_t> b, const std::string& s, steady_clock::time_point at) {
                     on_packet(p, b, s, at);
                 }),
      membership_(settings_of(cfg.timings, paths_), now()),
      send_timer_(io),
      deadline_timer_(io) {
    for (const auto& d : dropped_paths_) log::info("path " + d + " is this node's own address: not used here");
    next_send_ = steady_clock::now();
    last_retry_ = steady_clock::now();
    send_beats();
    schedule_deadline();
}

membership::Time Service::now() {
    return std::chrono::duration_cast<milliseconds>(steady_clock::now().time_since_epoch());
}

proto::NodeState Service::our_state() const {
    if (leaving_) return proto::NodeState::Leaving;
    return membership_.peer().state == membership::PeerState::Unknown ? proto::NodeState::Starting
                                                                      : proto::NodeState::Active;
}

void Service::send_beats() {
    // The send timer always runs, so it is where a pause of this process shows: a beat due long ago.
    auto lag = std::chrono::duration_cast<milliseconds>(steady_clock::now() - next_send_);
    if (!leaving_ && lag > timings_.warntime)
        log::warning("duetd was not scheduled for " + ms_text(lag) + " (stopped, or starved of CPU?): heartbeats " +
                     "were not sent meanwhile; what arrived was read with its kernel arrival time");
    send_one_round();
    if (leaving_) return;
    auto t = steady_clock::now();
    if (t - last_retry_ >= std::chrono::seconds(1)) {
        transport_.retry_closed();
        last_retry_ = t;
    }
    schedule_send();
}

void Service::send_one_round() {
    proto::Heartbeat hb;
    hb.cluster_id = cluster_id_;
    hb.node = id_.self;
    hb.generation = id_.generation;
    hb.state = our_state();
    hb.interval_ms = static_cast<uint32_t>(timings_.keepalive.count());
    if (provide_) hb.tlvs = provide_();
    for (size_t i = 0; i < transport_.size(); ++i) {
        hb.sequence = ++sequence_;  // one number per copy: see docs/protocol.md
        auto bytes = proto::encode(hb, id_.key);
        transport_.send(static_cast<int>(i), bytes);
    }
}

void Service::send_now() {
    // Coalesced: several changes in one turn of the event loop make one extra round.
    if (send_now_posted_ || leaving_) return;
    send_now_posted_ = true;
    asio::post(io_, [this] {
        send_now_posted_ = false;
        if (!leaving_) send_one_round();
    });
}

void Service::set_payload(std::function<std::vector<proto::Tlv>()> provide,
                          std::function<void(const proto::Heartbeat&)> receive) {
    provide_ = std::move(provide);
    receive_ = std::move(receive);
}

void Service::schedule_send() {
    // A fixed schedule, not "keepalive after the last send": no drift. If we fell behind (the
    // process was stopped), send now and restart the schedule from now.
    next_send_ += timings_.keepalive;
    auto t = steady_clock::now();
    if (next_send_ < t) next_send_ = t;
    send_timer_.expires_at(next_send_);
    send_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) send_beats();
    });
}

void Service::schedule_deadline() {
    auto d = membership_.next_deadline();
    if (d == membership::Time::max()) {
        deadline_timer_.cancel();
        return;
    }
    deadline_timer_.expires_at(steady_clock::time_point(std::chrono::duration_cast<steady_clock::duration>(d)));
    deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) on_deadline();
    });
}

void Service::on_deadline() {
    // Before blaming the peer, read whatever is already queued: if this daemon was the one that was
    // stopped (SIGSTOP, a paused VM), the peer's heartbeats are waiting in the sockets.
    transport_.drain();
    auto t = now();
    if (t < last_fed_) t = last_fed_;
    last_fed_ = t;
    handle(membership_.on_tick(t));
    schedule_deadline();
}

void Service::reject(const std::string& reason, int path, const std::string& source, const std::string& detail) {
    ++rejected_[reason];
    uint64_t suppressed = 0;
    auto t = now().count();
    if (!reject_log_.allow(reason + "|" + ip_of(source), t, suppressed)) return;
    std::string msg = "rejected heartbeat from " + source + " on path " + transport_.path(path).name() + ": " + detail;
    if (suppressed) msg += " (" + std::to_string(suppressed) + " more like it since the last report)";
    log::warning(msg, {{"DUET_REJECT", reason}, {"DUET_SOURCE", source}});
}

void Service::on_packet(int path, std::span<const uint8_t> bytes, const std::string& source,
                        steady_clock::time_point arrival) {
    auto res = proto::decode(bytes, cluster_id_, id_.key);
    if (res.error != proto::DecodeError::None) {
        reject(reason_key(res.error), path, source, std::string(proto::to_string(res.error)) + hint_for(res.error));
        return;
    }
    const auto& hb = res.hb;
    if (hb.node == id_.self) {
        if (hb.generation == id_.generation) {
            ++rejected_["own"];  // our own datagram looped back (broadcast, or mcast loop on)
        } else if (hb.generation < id_.generation) {
            reject("replay", path, source, "replay of one of our own earlier heartbeats");
        } else {
            reject("duplicate_node", path, source,
                   "another node signs heartbeats as '" + hb.node + "' (this node's name): two nodes share a name?");
        }
        return;
    }
    if (hb.node != id_.peer) {
        reject("unknown_node", path, source,
               "node '" + hb.node + "' is not in this cluster (nodes: " + id_.self + ", " + id_.peer + ")");
        return;
    }
    auto v = replay_.check_and_update(hb.generation, hb.sequence);
    if (v != proto::ReplayWindow::Verdict::Accept) {
        reject("replay", path, source,
               v == proto::ReplayWindow::Verdict::OldGeneration
                   ? "generation " + std::to_string(hb.generation) + " is older than the peer's current one"
                   : "sequence " + std::to_string(hb.sequence) + " already seen or too old (replay)");
        return;
    }
    // Membership's clock must not go backwards: datagrams drained from several sockets after a
    // pause are not in arrival order across paths.
    auto at = std::chrono::duration_cast<milliseconds>(arrival.time_since_epoch());
    if (at < last_fed_) at = last_fed_;
    last_fed_ = at;
    handle(membership_.on_heartbeat(path, at, hb.generation, static_cast<uint8_t>(hb.state)));
    if (receive_) receive_(hb);
    if (hb.state == proto::NodeState::Leaving && membership_.peer().reported_state == static_cast<uint8_t>(hb.state))
        log::notice("peer " + id_.peer + " says it is shutting down");
    schedule_deadline();
}

void Service::handle(const std::vector<membership::Event>& events) {
    using K = membership::Event::Kind;
    const auto& t = timings_;
    for (const auto& e : events) {
        Json j{{"type", event_type(e.kind)}, {"time", util::utc_now()}, {"node", id_.peer}};
        std::string path = e.path >= 0 ? transport_.path(e.path).name() : "";
        if (!path.empty()) j["path"] = path;
        switch (e.kind) {
            case K::PeerUp:
                j["generation"] = e.generation;
                log::notice("peer " + id_.peer + " is up (generation " + std::to_string(e.generation) + ")",
                            {{"DUET_EVENT", "peer_up"}, {"DUET_PEER", id_.peer}});
                break;
            case K::PeerRestarted:
                j["generation"] = e.generation;
                log::warning("peer " + id_.peer + " restarted within deadtime (new generation " +
                                 std::to_string(e.generation) + ")",
                             {{"DUET_EVENT", "peer_restarted"}, {"DUET_PEER", id_.peer}});
                break;
            case K::PeerLate:
                j["silence_ms"] = e.gap.count();
                log::warning("peer " + id_.peer + ": no heartbeat on any path for " + ms_text(e.gap) + " (warntime " +
                                 ms_text(t.warntime) + ", deadtime " + ms_text(t.deadtime) + ")",
                             {{"DUET_EVENT", "peer_late"}, {"DUET_PEER", id_.peer}});
                break;
            case K::PeerDead: {
                j["silence_ms"] = e.gap.count();
                bool never = !membership_.peer().last_heard.has_value();
                j["never_seen"] = never;
                log::error(never ? "peer " + id_.peer + " did not appear within initdead (" + ms_text(t.initdead) +
                                       "): declared dead"
                                 : "peer " + id_.peer + " is dead: no heartbeat on any path for " + ms_text(e.gap) +
                                       " (deadtime " + ms_text(t.deadtime) + ")",
                           {{"DUET_EVENT", "peer_dead"}, {"DUET_PEER", id_.peer}});
                break;
            }
            case K::PathUp:
                log::notice("path " + path + ": heartbeats from " + id_.peer + " arrive",
                            {{"DUET_EVENT", "path_up"}, {"DUET_PATH", path}});
                break;
            case K::PathDown:
                j["silence_ms"] = e.gap.count();
                log::warning("path " + path + " is down: nothing from " + id_.peer + " for " + ms_text(e.gap),
                             {{"DUET_EVENT", "path_down"}, {"DUET_PATH", path}});
                break;
            case K::LateHeartbeat:
                j["gap_ms"] = e.gap.count();
                log::warning("late heartbeat from " + id_.peer + " on path " + path + ": gap " + ms_text(e.gap) +
                                 " (warntime " + ms_text(t.warntime) + ")",
                             {{"DUET_EVENT", "late_heartbeat"}, {"DUET_PATH", path}});
                break;
        }
        if (sink_) sink_(j);
    }
}

void Service::leave() {
    leaving_ = true;
    send_timer_.cancel();
    deadline_timer_.cancel();
    send_one_round();
}

void Service::set_timings(const config::Timings& t) {
    timings_ = t;
    membership_.set_timings(t.keepalive, t.warntime, t.deadtime, t.initdead);
    next_send_ = steady_clock::now();
    send_timer_.cancel();
    schedule_send();
    schedule_deadline();
}

Json Service::nodes_json() const {
    auto t = now();
    auto ago = [&](const std::optional<membership::Time>& x) -> Json {
        if (!x) return nullptr;
        return (t - *x).count();
    };
    Json self_paths = Json::array();
    Json peer_paths = Json::array();
    const auto& mpaths = membership_.paths();
    for (size_t i = 0; i < transport_.size(); ++i) {
        const auto& c = transport_.counters(static_cast<int>(i));
        Json sp{{"name", transport_.path(static_cast<int>(i)).name()},
                {"state", c.open && c.last_error.empty() ? "up" : "down"},
                {"sent", c.sent},
                {"send_errors", c.send_errors}};
        if (!c.last_error.empty()) sp["error"] = c.last_error;
        self_paths.push_back(sp);
        const auto& mp = mpaths[i];
        Json buckets = Json::array();
        for (size_t b = 0; b < mp.gaps.counts.size(); ++b) {
            auto bound = membership::GapHistogram::kBounds[b];
            buckets.push_back(Json{{"lt_ms", bound == INT64_MAX ? Json(nullptr) : Json(bound)}, {"count", mp.gaps.counts[b]}});
        }
        peer_paths.push_back(Json{{"name", mp.name},
                                  {"state", membership::to_string(mp.state)},
                                  {"last_heard_ms_ago", ago(mp.last_heard)},
                                  {"received", mp.received},
                                  {"late", mp.late},
                                  {"gaps", Json{{"count", mp.gaps.total}, {"max_ms", mp.gaps.max.count()}, {"buckets", buckets}}}});
    }
    const auto& p = membership_.peer();
    Json self{{"name", id_.self}, {"self", true}, {"state", "up"}, {"generation", id_.generation}, {"paths", self_paths}};
    Json peer{{"name", id_.peer},
              {"self", false},
              {"state", membership::to_string(p.state)},
              {"generation", p.generation},
              {"last_heard_ms_ago", ago(p.last_heard)},
              {"since_ms_ago", ago(p.since)},
              {"late", p.late},
              {"deaths", p.deaths},
              {"restarts", p.restarts},
              {"leaving", p.reported_state == static_cast<uint8_t>(proto::NodeState::Leaving)},
              {"paths", peer_paths}};
    return Json::array({self, peer});
}

Json Service::rejected_json() const {
    Json j = Json::object();
    uint64_t total = 0;
    for (const auto& [k, v] : rejected_) {
        j[k] = v;
        if (k != "own") total += v;
    }
    j["total"] = total;
    return j;
}

std::string Service::summary() const {
    const auto& p = membership_.peer();
    size_t up = 0;
    for (const auto& mp : membership_.paths()) up += mp.state == membership::PathState::Up;
    return "peer " + id_.peer + " " + membership::to_string(p.state) + ", " + std::to_string(up) + "/" +
           std::to_string(membership_.paths().size()) + " paths up";
}

}  // namespace duet::heartbeat
