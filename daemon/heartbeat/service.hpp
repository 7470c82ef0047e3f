// The heartbeat service: sends our heartbeats on every path at each keepalive, authenticates and
// de-duplicates what arrives, feeds the membership machine, and reports its events.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/config/model.hpp"
#include "daemon/membership/membership.hpp"
#include "daemon/transport/transport.hpp"
#include "daemon/util/asio.hpp"
#include "daemon/util/log.hpp"
#include "proto/heartbeat.hpp"

namespace duet::heartbeat {

struct Identity {
    std::string self;
    std::string peer;
    std::string cluster;
    uint64_t generation = 0;
    std::string key;
};

class Service {
public:
    // Called for every membership event, already formatted for `hactl events`.
    using EventSink = std::function<void(const nlohmann::json& event)>;

    Service(boost::asio::io_context& io, const config::Config& cfg, Identity id, EventSink sink);
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Tells the peer we are leaving (one heartbeat in state Leaving on every path) and stops sending.
    void leave();
    // Our heartbeats carry the TLVs `provide` returns; `receive` gets every accepted heartbeat of
    // the peer (after membership has seen it).
    void set_payload(std::function<std::vector<proto::Tlv>()> provide,
                     std::function<void(const proto::Heartbeat&)> receive);
    // Sends a heartbeat on every path now, besides the regular ones (our state changed).
    void send_now();
    void set_timings(const config::Timings& t);

    nlohmann::json nodes_json() const;     // the status "nodes" list (both nodes)
    nlohmann::json rejected_json() const;  // counters of rejected packets by reason
    std::string summary() const;           // one line for sd_notify STATUS and logs
    const membership::Membership& membership() const { return membership_; }

private:
    static membership::Time now();
    void schedule_send();
    void send_beats();
    void send_one_round();
    void schedule_deadline();
    void on_deadline();
    void on_packet(int path, std::span<const uint8_t> bytes, const std::string& source,
                   std::chrono::steady_clock::time_point arrival);
    void reject(const std::string& reason, int path, const std::string& source, const std::string& detail);
    void handle(const std::vector<membership::Event>& events);
    proto::NodeState our_state() const;

    boost::asio::io_context& io_;
    Identity id_;
    uint64_t cluster_id_;
    config::Timings timings_;
    EventSink sink_;
    std::vector<std::string> dropped_paths_;  // ucast paths to our own address
    std::vector<config::Path> paths_;         // the paths in use; index = path id everywhere
    transport::Transport transport_;
    membership::Membership membership_;
    proto::ReplayWindow replay_;
    boost::asio::steady_timer send_timer_;
    boost::asio::steady_timer deadline_timer_;
    std::chrono::steady_clock::time_point next_send_;
    std::chrono::steady_clock::time_point last_retry_;
    uint64_t sequence_ = 0;
    membership::Time last_fed_{0};  // the latest time given to membership
    bool leaving_ = false;
    bool send_now_posted_ = false;
    std::function<std::vector<proto::Tlv>()> provide_;
    std::function<void(const proto::Heartbeat&)> receive_;
    std::map<std::string, uint64_t> rejected_;
    log::RateLimiter reject_log_{10000};
};

}  // namespace duet::heartbeat
