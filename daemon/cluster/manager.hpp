// The group manager: runs the resource groups of this node. It applies the placement policy to
// what this node and the peer report, runs chains (start, stop, probe) through the agent runner,
// monitors running resources, handles standby/takeover/cleanup/maintenance, and produces the
// cluster-state report carried in our heartbeats.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/cluster/chain.hpp"
#include "daemon/cluster/policy.hpp"
#include "daemon/config/model.hpp"
#include "daemon/resources/agent.hpp"
#include "daemon/resources/runner.hpp"
#include "daemon/util/asio.hpp"
#include "proto/cluster_state.hpp"

namespace duet::cluster {

enum class Scope { All, Local, Foreign };  // Heartbeat's hb_standby / hb_takeover arguments
std::optional<Scope> parse_scope(const std::string& s);

class Manager {
public:
    using Json = nlohmann::json;
    using EventSink = std::function<void(const Json&)>;
    using Reply = std::function<void(bool ok, Json result_or_error)>;

    struct Hooks {
        EventSink event;                  // an event for `hactl events`
        std::function<void()> send_now;   // our report changed: send a heartbeat now
        // Reboots this node (on_stop_failure = reboot). Default: sync + reboot(2), which in a
        // child PID namespace (the lab) ends that namespace's init instead of the machine.
        std::function<void()> reboot;
    };

    Manager(boost::asio::io_context& io, const config::Config& cfg, std::string self, std::string peer,
            const resources::SearchPath& search, Hooks hooks);
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // Probes every group (adopting what already runs, after a duetd restart), then manages.
    void start();

    // Membership changed.
    void on_peer(PeerLiveness liveness);
    // A report from the peer's heartbeat; applied only if newer than the last one applied.
    void on_peer_report(const proto::ClusterState& s, uint64_t generation, uint64_t sequence);
    // Our report, for the next heartbeat.
    proto::ClusterState report() const;

    // Control commands. With wait, the reply comes when the outcome is known (or after `timeout`).
    void standby(Scope scope, bool wait, Reply reply);
    void takeover(Scope scope, bool wait, Reply reply);
    void cleanup(const std::string& group, Reply reply);  // here, and asks the peer to do the same
    void maintenance(bool on, Reply reply);
    // SIGTERM: release every group this node runs (the peer takes them over), then call `done`.
    // In maintenance mode, leaves them running.
    void shutdown(std::function<void()> done);

    Json groups_json() const;
    size_t size() const;

private:
    struct Group;
    struct Waiter;
    void evaluate();
    void evaluate(Group& g);
    GroupView view(const Group& g) const;
    void set_state(Group& g, proto::GroupState s, const std::string& why = "");
    void run_chain(Group& g, std::optional<Step> step);
    static std::string hactl_path();
    std::map<std::string, std::string> agent_env(const Group& g, const std::string& event) const;
    void on_chain_done(Group& g);
    void arm_monitors(Group& g);
    void note_failure(Group& g);
    void cancel_monitors(Group& g);
    void on_monitor(Group& g, size_t resource);
    void apply_request(const proto::Request& r);
    bool cleanup_here(const std::string& group);
    void check_waiters();
    void wait_for(const std::vector<Group*>& set, std::function<bool()> done,
                  std::function<std::pair<bool, Json>()> result, Reply reply, std::string timeout_message);
    void emit(const Group& g, const std::string& type, Json extra = Json::object());
    void changed();
    std::vector<Group*> in_scope(Scope scope);
    std::chrono::milliseconds operation_budget(const Group& g) const;

    boost::asio::io_context& io_;
    const config::Config cfg_;
    std::string self_, peer_;
    Hooks hooks_;
    resources::Runner runner_;
    std::vector<std::unique_ptr<Group>> groups_;
    PeerLiveness liveness_ = PeerLiveness::Unknown;
    bool peer_known_ = false;
    bool peer_maintenance_ = false;
    uint64_t report_gen_ = 0, report_seq_ = 0;
    uint32_t next_claim_ = 0;
    uint32_t acked_request_ = 0;
    uint32_t peer_acked_ = 0;  // the highest of our requests the peer has applied
    uint64_t last_peer_generation_ = 0;  // the generation acked_request_ refers to
    proto::Request request_;  // our pending request to the peer
    bool maintenance_ = false;
    bool started_ = false;
    bool shutting_down_ = false;
    std::function<void()> shutdown_done_;
    std::vector<std::unique_ptr<Waiter>> waiters_;
    bool evaluating_ = false;
    bool again_ = false;
};

}  // namespace duet::cluster
