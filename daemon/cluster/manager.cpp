#include "daemon/cluster/manager.hpp"

#include <sys/reboot.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "daemon/util/clock.hpp"
#include "daemon/util/log.hpp"

namespace duet::cluster {
namespace asio = boost::asio;
using Json = nlohmann::json;
using proto::GroupState;
using proto::holds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// OCF_RESOURCE_INSTANCE: the resource's text with everything but [A-Za-z0-9._-] made '_'.
std::string instance_of(const config::Resource& r) {
    std::string s = r.str();
    for (auto& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
    return s;
}

resources::Action action_of(Act a) {
    switch (a) {
        case Act::Start: return resources::Action::Start;
        case Act::Stop: return resources::Action::Stop;
        case Act::Monitor: return resources::Action::Monitor;
    }
    return resources::Action::Monitor;
}

}  // namespace

std::optional<Scope> parse_scope(const std::string& s) {
    if (s.empty() || s == "all") return Scope::All;
    if (s == "local") return Scope::Local;
    if (s == "foreign") return Scope::Foreign;
    return std::nullopt;
}

// What a running chain is for.
enum class Op { None, Probe, Start, Release, Restart, FailOver, Shutdown };

struct Manager::Group {
    Group(const config::Group& c, int stop_retries, asio::io_context& io)
        : cfg(c), chain(c.resources.size(), stop_retries), expiry(io) {}
    const config::Group& cfg;
    std::vector<std::optional<resources::Agent>> agents;
    Chain chain;
    Op op = Op::None;
    std::optional<Step> step;
    GroupState state = GroupState::Probing;
    uint32_t claim = 0;
    uint32_t ack = 0;
    bool standby = false;
    uint16_t failures = 0;
    std::string last_failure;
    std::string last_failure_time;
    bool peer_seen = false;
    proto::GroupReport theirs;
    GroupState theirs_last = GroupState::Stopped;
    std::vector<std::string> res_state;  // per resource, as this node last saw it
    std::vector<std::unique_ptr<asio::steady_timer>> monitors;
    bool monitor_running = false;
    bool reprobe = false;  // probe again when the current operation ends (cleanup of a blocked group)
    asio::steady_timer expiry;  // [policy] failure_timeout: forgets failures after that long
};

struct Manager::Waiter {
    explicit Waiter(asio::io_context& io) : timer(io) {}
    std::function<bool()> done;
    std::function<std::pair<bool, Json>()> result;
    Reply reply;
    asio::steady_timer timer;
};

Manager::Manager(asio::io_context& io, const config::Config& cfg, std::string self, std::string peer,
                 const resources::SearchPath& search, Hooks hooks)
    : io_(io), cfg_(cfg), self_(std::move(self)), peer_(std::move(peer)), hooks_(std::move(hooks)), runner_(io) {
    if (!hooks_.reboot) {
        hooks_.reboot = [] {
            ::sync();
            ::reboot(RB_AUTOBOOT);
        };
    }
    for (const auto& gc : cfg_.groups) {
        auto g = std::make_unique<Group>(gc, cfg_.policy.stop_retries, io_);
        g->res_state.assign(gc.resources.size(), "unknown");
        for (const auto& r : gc.resources) {
            std::string err;
            auto a = resources::resolve(r, search, err);
            if (!a) {
                log::error("group " + gc.name + ": " + err);
                g->last_failure = err;
                g->last_failure_time = util::utc_now();
            } else {
                log::info("group " + gc.name + ": " + r.str() + " -> " + a->str());
            }
            g->agents.push_back(std::move(a));
            g->monitors.push_back(std::make_unique<asio::steady_timer>(io_));
        }
        groups_.push_back(std::move(g));
    }
}

Manager::~Manager() = default;

size_t Manager::size() const { return groups_.size(); }

void Manager::start() {
    started_ = true;
    for (auto& g : groups_) {
        g->op = Op::Probe;
        set_state(*g, GroupState::Probing);
        run_chain(*g, g->chain.probe());
    }
    changed();
}

GroupView Manager::view(const Group& g) const {
    GroupView v;
    v.home_is_me = g.cfg.home_node == self_;
    v.auto_failback = g.cfg.auto_failback.value_or(cfg_.auto_failback);
    v.mine = g.state;
    v.my_claim = g.claim;
    v.my_ack = g.ack;
    v.my_standby = g.standby;
    v.maintenance = maintenance_;
    v.peer = liveness_;
    v.peer_known = peer_known_ && g.peer_seen;
    v.theirs = g.theirs.state;
    v.peer_standby = g.theirs.standby;
    v.peer_maintenance = peer_maintenance_;
    v.peer_claim = g.theirs.claim;
    v.peer_ack = g.theirs.ack;
    v.theirs_last = g.theirs_last;
    return v;
}

void Manager::set_state(Group& g, GroupState s, const std::string& why) {
    if (g.state == s) return;
    g.state = s;
    if (s != GroupState::Claiming) g.claim = 0;
    Json extra = Json::object();
    if (!why.empty()) extra["reason"] = why;
    emit(g, std::string("group_") + proto::to_string(s), extra);
    changed();
}

void Manager::emit(const Group& g, const std::string& type, Json extra) {
    Json e{{"type", type}, {"group", g.cfg.name}, {"node", self_}, {"time", util::utc_now()}};
    for (auto& [k, v] : extra.items()) e[k] = v;
    if (hooks_.event) hooks_.event(e);
}

void Manager::changed() {
    if (hooks_.send_now) hooks_.send_now();
    check_waiters();
}

void Manager::on_peer(PeerLiveness liveness) {
    if (liveness == liveness_) return;
    liveness_ = liveness;
    if (liveness != PeerLiveness::Up) {
        // What the peer said is stale from now on; a blocked group stays blocked.
        for (auto& g : groups_) {
            if (g->peer_seen) g->theirs_last = g->theirs.state;
            g->peer_seen = false;
            g->theirs = proto::GroupReport{};
        }
        peer_known_ = false;
        peer_maintenance_ = false;
        report_gen_ = report_seq_ = 0;
    }
    evaluate();
}

void Manager::on_peer_report(const proto::ClusterState& s, uint64_t generation, uint64_t sequence) {
    if (generation < report_gen_ || (generation == report_gen_ && sequence <= report_seq_)) return;
    // A restarted peer numbers its requests from 1 again: forget which of its old ones we applied.
    if (generation != report_gen_ && generation != last_peer_generation_) {
        acked_request_ = 0;
        last_peer_generation_ = generation;
    }
    report_gen_ = generation;
    report_seq_ = sequence;
    peer_known_ = true;
    peer_maintenance_ = s.maintenance;
    peer_acked_ = s.acked_request;
    if (s.acked_request >= request_.seq) request_ = proto::Request{request_.seq, proto::RequestKind::None, {}};
    for (auto& g : groups_) g->peer_seen = false;
    for (const auto& r : s.groups) {
        bool found = false;
        for (auto& g : groups_) {
            if (g->cfg.name != r.name) continue;
            g->theirs = r;
            g->theirs_last = r.state;
            g->peer_seen = true;
            found = true;
        }
        if (!found) {
            static log::RateLimiter limiter(60000);
            uint64_t suppressed = 0;
            if (limiter.allow(r.name, steady_clock::now().time_since_epoch().count() / 1000000, suppressed))
                log::error("peer " + peer_ + " runs a group '" + r.name +
                           "' that this node's configuration does not have: the two configurations differ");
        }
    }
    if (s.request.seq > acked_request_ && s.request.kind != proto::RequestKind::None) apply_request(s.request);
    if (s.request.seq > acked_request_) {
        acked_request_ = s.request.seq;
        changed();
    }
    evaluate();
}

void Manager::apply_request(const proto::Request& r) {
    for (const auto& name : r.groups) {
        for (auto& g : groups_) {
            if (g->cfg.name != name) continue;
            if (r.kind == proto::RequestKind::Standby) {
                log::notice("group " + name + ": " + peer_ + " takes it over (hactl takeover there): standby here");
                g->standby = true;
            } else if (r.kind == proto::RequestKind::Unstandby) {
                if (g->standby) log::notice("group " + name + ": " + peer_ + " gives it up (hactl standby there): standby here ends");
                g->standby = false;
            } else if (r.kind == proto::RequestKind::Cleanup) {
                cleanup_here(name);  // never forwarded back: that would loop
            }
        }
    }
}

proto::ClusterState Manager::report() const {
    proto::ClusterState s;
    s.maintenance = maintenance_;
    s.acked_request = acked_request_;
    s.request = request_;
    for (const auto& g : groups_)
        s.groups.push_back(proto::GroupReport{g->cfg.name, g->state, g->standby, g->claim, g->ack, g->failures});
    return s;
}

void Manager::evaluate() {
    if (!started_) return;
    if (evaluating_) {
        again_ = true;
        return;
    }
    evaluating_ = true;
    do {
        again_ = false;
        for (auto& g : groups_) evaluate(*g);
    } while (again_);
    evaluating_ = false;
    check_waiters();
    if (shutting_down_ && shutdown_done_) {
        bool idle = true;
        for (auto& g : groups_)  // a blocked group cannot be stopped by us: do not wait for it
            idle = idle && !g->chain.busy() && !g->monitor_running && (!holds(g->state) || g->state == GroupState::Blocked);
        if (idle) {
            auto done = std::move(shutdown_done_);
            shutdown_done_ = nullptr;
            asio::post(io_, done);
        }
    }
}

void Manager::evaluate(Group& g) {
    if (g.chain.busy() || maintenance_) return;
    Decision d = decide(view(g));
    if (shutting_down_) {
        d = g.state == GroupState::Running ? Decision::Stop
            : g.state == GroupState::Claiming ? Decision::Withdraw
                                              : Decision::Nothing;
    }
    switch (d) {
        case Decision::Nothing:
            break;
        case Decision::Claim:
            g.claim = ++next_claim_;
            g.state = GroupState::Claiming;
            emit(g, "group_claiming", Json{{"claim", g.claim}});
            changed();
            break;
        case Decision::Withdraw:
            set_state(g, GroupState::Stopped, "it belongs to " + peer_);
            break;
        case Decision::Start: {
            if (liveness_ == PeerLiveness::Dead && g.standby) {
                log::notice("group " + g.cfg.name + ": the peer is dead; this node's standby ends");
                g.standby = false;
            }
            log::notice("group " + g.cfg.name + ": starting here" +
                        (liveness_ == PeerLiveness::Dead ? " (peer " + peer_ + " is dead)" : ""));
            g.op = Op::Start;
            set_state(g, GroupState::Starting);
            run_chain(g, g.chain.start());
            break;
        }
        case Decision::Stop:
            log::notice("group " + g.cfg.name + ": stopping here" +
                        (shutting_down_ ? " (duetd is stopping)" : " (it belongs to " + peer_ + ")"));
            cancel_monitors(g);
            g.op = shutting_down_ ? Op::Shutdown : Op::Release;
            set_state(g, GroupState::Stopping);
            run_chain(g, g.chain.stop());
            break;
    }
    const uint32_t ack = g.chain.busy() ? 0 : acknowledge_claim(view(g));
    if (ack != g.ack) {
        g.ack = ack;
        changed();
    }
}

milliseconds Manager::operation_budget(const Group& g) const {
    milliseconds total{0};
    for (const auto& r : g.cfg.resources)
        total += r.start_timeout.value_or(cfg_.resource_defaults.start_timeout) +
                 r.stop_timeout.value_or(cfg_.resource_defaults.stop_timeout) * (cfg_.policy.stop_retries + 1);
    return total;
}

// What every agent action of a group gets besides its convention's variables: the group, the
// nodes, the event, and the [mail] settings (MailTo uses them for parameters left unset).
std::map<std::string, std::string> Manager::agent_env(const Group& g, const std::string& event) const {
    std::string resources_text;
    for (const auto& x : g.cfg.resources) resources_text += (resources_text.empty() ? "" : "\n") + x.str();
    return {
        {"DUET_GROUP", g.cfg.name},
        {"DUET_GROUP_RESOURCES", resources_text},
        {"DUET_NODE", self_},
        {"DUET_PEER", peer_},
        {"DUET_EVENT", event},
        {"DUET_MAIL_RELAY", cfg_.mail.relay},
        {"DUET_MAIL_FROM", cfg_.mail.from.empty() ? "duet@" + self_ : cfg_.mail.from},
        {"DUET_MAIL_STARTTLS", cfg_.mail.starttls ? "1" : "0"},
        {"DUET_MAIL_TLS_VERIFY", cfg_.mail.tls_verify ? "1" : "0"},
        // For the replica agent: the hactl beside this duetd, and how duetd read its configuration
        // (so an engine the agent starts reads the same files).
        {"DUET_HACTL", hactl_path()},
        // What membership says of the peer: the replica agent may then promote without waiting
        // for its link to time out (a dead peer cannot be Primary any more).
        {"DUET_PEER_STATE", liveness_ == PeerLiveness::Up ? "up" : liveness_ == PeerLiveness::Dead ? "dead" : "unknown"},
        {"DUET_CONFIG_ARGS", cfg_.sources.empty() ? std::string()
                             : cfg_.syntax == config::Syntax::Toml ? "-c " + cfg_.sources.front()
                             : "--ha-dir " + std::filesystem::path(cfg_.sources.front()).parent_path().string()},
    };
}

// hactl next to duetd (a build tree) or in ../bin (an installation); else whatever PATH has.
std::string Manager::hactl_path() {
    static const std::string path = [] {
        std::error_code ec;
        auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
        if (!ec)
            for (auto cand : {self.parent_path() / "hactl", self.parent_path().parent_path() / "bin" / "hactl"})
                if (::access(cand.c_str(), X_OK) == 0) return cand.string();
        return std::string("hactl");
    }();
    return path;
}

void Manager::run_chain(Group& g, std::optional<Step> step) {
    if (!step) {
        g.step.reset();
        on_chain_done(g);
        return;
    }
    g.step = step;
    const auto& r = g.cfg.resources[step->resource];
    const auto& agent = g.agents[step->resource];
    if (!agent) {
        // The agent could not be found: it cannot run, start fails as "not installed".
        asio::post(io_, [this, gp = &g] { run_chain(*gp, gp->chain.on_result(resources::ocf::kErrInstalled)); });
        return;
    }
    const auto& d = cfg_.resource_defaults;
    milliseconds timeout = step->act == Act::Start  ? r.start_timeout.value_or(d.start_timeout)
                           : step->act == Act::Stop ? r.stop_timeout.value_or(d.stop_timeout)
                                                    : r.monitor_timeout.value_or(d.monitor_timeout);
    auto env = agent_env(g, g.op == Op::Probe ? "probe" : to_string(step->act));
    if (step->act != Act::Monitor)
        log::info("group " + g.cfg.name + ": " + to_string(step->act) + " " + r.str());
    runner_.run(*agent, action_of(step->act), timeout, instance_of(r), env,
                [this, gp = &g, s = *step](resources::Result res) {
                    Group& grp = *gp;
                    const auto& rr = grp.cfg.resources[s.resource];
                    if (s.act == Act::Monitor) {
                        grp.res_state[s.resource] = res.rc == 0 ? "running" : res.rc == 7 ? "stopped" : "failed";
                    } else if (res.rc == 0) {
                        grp.res_state[s.resource] = s.act == Act::Start ? "running" : "stopped";
                    } else {
                        grp.res_state[s.resource] = "failed";
                        grp.last_failure = std::string(to_string(s.act)) + " of " + rr.str() + ": " + res.summary();
                        grp.last_failure_time = util::utc_now();
                        log::error("group " + grp.cfg.name + ": " + grp.last_failure);
                    }
                    run_chain(grp, grp.chain.on_result(res.rc));
                });
}

void Manager::on_chain_done(Group& g) {
    const Op op = g.op;
    g.op = Op::None;
    const Outcome o = g.chain.outcome();
    if (o == Outcome::Blocked) {
        auto on_fail = g.cfg.on_stop_failure.value_or(cfg_.policy.on_stop_failure);
        if (on_fail == config::Policy::OnStopFailure::Reboot) {
            // Heartbeat's way: a reboot stops everything for sure. The group is NOT reported
            // blocked (the peer would then never start it): the peer sees this node die and takes
            // the group over after deadtime.
            log::error("group " + g.cfg.name + ": " + g.last_failure +
                       "; on_stop_failure = reboot: rebooting this node now so that " + peer_ + " can take over");
            emit(g, "alert", Json{{"reason", "stop failed: rebooting"}, {"detail", g.last_failure}});
            asio::post(io_, hooks_.reboot);
            return;
        }
        log::error("group " + g.cfg.name + ": BLOCKED: " + g.last_failure +
                   ". Its resources may still run here; it will not be started anywhere until `hactl cleanup " +
                   g.cfg.name + "` after you have checked them");
        set_state(g, GroupState::Blocked, g.last_failure);
        emit(g, "alert", Json{{"reason", "stop failed: group blocked"}, {"detail", g.last_failure}});
        // The alert by mail, through the group's own MailTo resources.
        for (size_t i = 0; i < g.agents.size(); ++i) {
            if (!g.agents[i] || g.agents[i]->type != "MailTo") continue;
            auto env = agent_env(g, "blocked");
            env["DUET_REASON"] = g.last_failure;
            runner_.run(*g.agents[i], resources::Action::Start, std::chrono::seconds(30),
                        instance_of(g.cfg.resources[i]), env, [](resources::Result) {});
        }
        evaluate();
        return;
    }
    switch (op) {
        case Op::Probe:
            if (o == Outcome::ProbedRunning) {
                log::notice("group " + g.cfg.name + ": found running here; adopted");
                set_state(g, GroupState::Running, "found running");
                arm_monitors(g);
            } else if (o == Outcome::ProbedStopped) {
                set_state(g, GroupState::Stopped);
            } else {
                log::warning("group " + g.cfg.name + ": found partly running here; stopping what runs");
                g.op = Op::Release;
                set_state(g, GroupState::Stopping, "partly running");
                run_chain(g, g.chain.stop());
                return;
            }
            break;
        case Op::Restart:
            if (o == Outcome::Stopped) {  // the first half of a restart in place: now start
                g.op = Op::Start;
                set_state(g, GroupState::Starting, "restart after a monitor failure");
                run_chain(g, g.chain.start());
                return;
            }
            [[fallthrough]];
        case Op::Start:
            if (o == Outcome::Started) {
                set_state(g, GroupState::Running);
                arm_monitors(g);
            } else {
                log::error("group " + g.cfg.name + ": start failed here (" + g.last_failure +
                           "); what had started was stopped again");
                set_state(g, GroupState::Failed, g.last_failure);
                note_failure(g);
            }
            break;
        case Op::Release:
        case Op::Shutdown:
            set_state(g, GroupState::Stopped);
            break;
        case Op::FailOver:
            set_state(g, GroupState::Failed, g.last_failure);
            break;
        case Op::None:
            break;
    }
    if (g.reprobe) {
        g.reprobe = false;
        g.op = Op::Probe;
        set_state(g, GroupState::Probing);
        run_chain(g, g.chain.probe());
        return;
    }
    evaluate();
}

// A failure was counted or the group failed here: with [policy] failure_timeout, it is forgotten
// after that long without a new one (the group may then run here again), as if cleaned up.
void Manager::note_failure(Group& g) {
    const auto timeout = cfg_.policy.failure_timeout;
    if (timeout.count() <= 0) return;
    g.expiry.expires_after(timeout);
    g.expiry.async_wait([this, gp = &g, timeout](const boost::system::error_code& ec) {
        if (ec) return;
        Group& grp = *gp;
        if (grp.failures == 0 && grp.state != GroupState::Failed) return;
        log::notice("group " + grp.cfg.name + ": no failure for " + std::to_string(timeout.count()) +
                    " ms (failure_timeout): failures forgotten");
        grp.failures = 0;
        if (grp.state == GroupState::Failed) set_state(grp, GroupState::Stopped, "failure_timeout");
        changed();
        evaluate();
    });
}

void Manager::arm_monitors(Group& g) {
    if (maintenance_) return;
    for (size_t i = 0; i < g.cfg.resources.size(); ++i) {
        const auto& r = g.cfg.resources[i];
        if (!r.monitor.value_or(true) || !g.agents[i]) continue;
        auto& t = *g.monitors[i];
        t.expires_after(r.monitor_interval.value_or(cfg_.resource_defaults.monitor_interval));
        t.async_wait([this, gp = &g, i](const boost::system::error_code& ec) {
            if (!ec) on_monitor(*gp, i);
        });
    }
}

void Manager::cancel_monitors(Group& g) {
    for (auto& t : g.monitors) t->cancel();
}

void Manager::on_monitor(Group& g, size_t i) {
    if (g.state != GroupState::Running || g.chain.busy() || maintenance_ || shutting_down_) return;
    const auto& r = g.cfg.resources[i];
    g.monitor_running = true;
    runner_.run(*g.agents[i], resources::Action::Monitor, r.monitor_timeout.value_or(cfg_.resource_defaults.monitor_timeout),
                instance_of(r), agent_env(g, "monitor"),
                [this, gp = &g, i](resources::Result res) {
                    Group& grp = *gp;
                    grp.monitor_running = false;
                    const auto& rr = grp.cfg.resources[i];
                    if (grp.state != GroupState::Running || grp.chain.busy() || maintenance_) {
                        evaluate();
                        return;
                    }
                    if (res.rc == 0) {
                        grp.res_state[i] = "running";
                        auto& t = *grp.monitors[i];
                        t.expires_after(rr.monitor_interval.value_or(cfg_.resource_defaults.monitor_interval));
                        t.async_wait([this, gp, i](const boost::system::error_code& ec) {
                            if (!ec) on_monitor(*gp, i);
                        });
                        return;
                    }
                    grp.res_state[i] = res.rc == 7 ? "stopped" : "failed";
                    ++grp.failures;
                    note_failure(grp);
                    grp.last_failure = "monitor of " + rr.str() + ": " + res.summary();
                    grp.last_failure_time = util::utc_now();
                    const int threshold = grp.cfg.migration_threshold.value_or(cfg_.policy.migration_threshold);
                    emit(grp, "resource_failed",
                         Json{{"resource", rr.str()}, {"reason", res.summary()}, {"failures", grp.failures},
                              {"threshold", threshold}});
                    cancel_monitors(grp);
                    if (grp.failures >= threshold) {
                        log::error("group " + grp.cfg.name + ": " + grp.last_failure + "; " +
                                   std::to_string(grp.failures) + " failures here (threshold " +
                                   std::to_string(threshold) + "): moving it to " + peer_);
                        grp.op = Op::FailOver;
                    } else {
                        log::error("group " + grp.cfg.name + ": " + grp.last_failure + "; restarting it here (failure " +
                                   std::to_string(grp.failures) + " of " + std::to_string(threshold) + ")");
                        grp.op = Op::Restart;
                    }
                    set_state(grp, GroupState::Stopping, grp.last_failure);
                    run_chain(grp, grp.chain.stop());
                });
}

void Manager::check_waiters() {
    for (size_t i = 0; i < waiters_.size();) {
        auto& w = *waiters_[i];
        if (w.done()) {
            auto [ok, result] = w.result();
            auto reply = std::move(w.reply);
            w.timer.cancel();
            waiters_.erase(waiters_.begin() + static_cast<long>(i));
            reply(ok, std::move(result));
        } else {
            ++i;
        }
    }
}

std::vector<Manager::Group*> Manager::in_scope(Scope scope) {
    std::vector<Group*> out;
    for (auto& g : groups_) {
        const bool local = g->cfg.home_node == self_;
        if (scope == Scope::All || (scope == Scope::Local && local) || (scope == Scope::Foreign && !local)) out.push_back(g.get());
    }
    return out;
}

void Manager::standby(Scope scope, bool wait, Reply reply) {
    if (maintenance_) return reply(false, "maintenance mode is on: nothing is moved (hactl maintenance off first)");
    auto set = in_scope(scope);
    if (set.empty()) return reply(true, Json{{"groups", Json::array()}, {"message", "no group in that scope"}});
    std::vector<std::string> names;
    for (auto* g : set) {
        g->standby = true;
        names.push_back(g->cfg.name);
    }
    // The newest command wins: a standby of the peer's for these groups (from an earlier takeover
    // here) ends, or the groups would have nowhere preferred to go.
    if (liveness_ == PeerLiveness::Up) request_ = proto::Request{request_.seq + 1, proto::RequestKind::Unstandby, names};
    log::notice("standby: giving up " + std::to_string(set.size()) + " group(s) to " + peer_);
    changed();
    evaluate();
    const uint32_t request = request_.seq;
    auto settled = [this, set, request] {
        // The peer first applies the request sent with this command (its own standby for these
        // groups ends), else the groups could look settled on a state the command is changing.
        if (liveness_ == PeerLiveness::Up && peer_acked_ < request) return false;
        for (auto* g : set) {
            if (g->chain.busy() || g->state == GroupState::Claiming || g->state == GroupState::Probing) return false;
            const bool there = peer_known_ && g->theirs.state == GroupState::Running;
            const bool stays = g->state == GroupState::Running && placement(view(*g)) == Placement::Here;
            const bool stuck = g->state == GroupState::Blocked || g->theirs.state == GroupState::Blocked ||
                               (!holds(g->state) && placement(view(*g)) == Placement::Nowhere);
            if (!there && !stays && !stuck) return false;
        }
        return true;
    };
    auto result = [this, set] {
        Json groups = Json::array();
        bool ok = true;
        for (auto* g : set) {
            const bool there = peer_known_ && g->theirs.state == GroupState::Running;
            ok = ok && there;
            groups.push_back(Json{{"name", g->cfg.name}, {"node", there ? Json(peer_) : g->state == GroupState::Running ? Json(self_) : Json(nullptr)}});
        }
        Json r{{"groups", groups}};
        if (!ok) return std::pair<bool, Json>{false, Json("standby: not every group could move to " + peer_ + ": " + groups.dump())};
        return std::pair<bool, Json>{true, r};
    };
    if (!wait) return reply(true, Json{{"groups", Json::array()}, {"message", "standby requested"}});
    wait_for(set, settled, result, std::move(reply), "timed out waiting for the groups to move");
}

// Replies once `done` holds (checked after every change), or with `timeout_message` after the
// time the groups' operations may take at most.
void Manager::wait_for(const std::vector<Group*>& set, std::function<bool()> done,
                       std::function<std::pair<bool, Json>()> result, Reply reply, std::string timeout_message) {
    auto w = std::make_unique<Waiter>(io_);
    w->done = std::move(done);
    w->result = std::move(result);
    w->reply = std::move(reply);
    milliseconds budget = cfg_.timings.deadtime;
    for (auto* g : set) budget += operation_budget(*g);
    w->timer.expires_after(budget);
    Waiter* wp = w.get();
    w->timer.async_wait([this, wp, msg = std::move(timeout_message)](const boost::system::error_code& ec) {
        if (ec) return;
        for (size_t i = 0; i < waiters_.size(); ++i) {
            if (waiters_[i].get() != wp) continue;
            auto reply = std::move(wp->reply);
            waiters_.erase(waiters_.begin() + static_cast<long>(i));
            reply(false, msg);
            return;
        }
    });
    waiters_.push_back(std::move(w));
    check_waiters();
}

void Manager::takeover(Scope scope, bool wait, Reply reply) {
    if (maintenance_) return reply(false, "maintenance mode is on: nothing is moved (hactl maintenance off first)");
    auto set = in_scope(scope);
    if (set.empty()) return reply(true, Json{{"groups", Json::array()}, {"message", "no group in that scope"}});
    std::vector<std::string> names;
    for (auto* g : set) {
        g->standby = false;
        if (g->state == GroupState::Failed) {
            g->failures = 0;
            g->state = GroupState::Stopped;  // an explicit takeover retries a group that failed here
        }
        names.push_back(g->cfg.name);
    }
    if (liveness_ == PeerLiveness::Up) request_ = proto::Request{request_.seq + 1, proto::RequestKind::Standby, names};
    log::notice("takeover: taking " + std::to_string(set.size()) + " group(s) from " + peer_);
    changed();
    evaluate();
    if (!wait) return reply(true, Json{{"groups", Json::array()}, {"message", "takeover requested"}});
    auto done = [set] {
        for (auto* g : set)
            if (g->state != GroupState::Running && g->state != GroupState::Failed && g->state != GroupState::Blocked &&
                !(g->theirs.state == GroupState::Blocked))
                return false;
        return true;
    };
    auto result = [set] {
        Json groups = Json::array();
        bool ok = true;
        for (auto* g : set) {
            ok = ok && g->state == GroupState::Running;
            groups.push_back(Json{{"name", g->cfg.name}, {"state", proto::to_string(g->state)}});
        }
        if (!ok) return std::pair<bool, Json>{false, Json("takeover: not every group runs here: " + groups.dump())};
        return std::pair<bool, Json>{true, Json{{"groups", groups}}};
    };
    wait_for(set, done, result, std::move(reply), "timed out waiting for the groups to start here");
}

bool Manager::cleanup_here(const std::string& name) {
    Group* g = nullptr;
    for (auto& x : groups_)
        if (x->cfg.name == name) g = x.get();
    if (!g) return false;
    log::notice("group " + name + ": cleanup: failures cleared" +
                (g->state == GroupState::Blocked ? "; probing its resources again" : ""));
    g->failures = 0;
    g->last_failure.clear();
    g->last_failure_time.clear();
    if (g->state == GroupState::Failed) set_state(*g, GroupState::Stopped, "cleanup");
    if (g->state == GroupState::Blocked) {
        if (g->chain.busy()) {
            g->reprobe = true;
        } else {
            g->op = Op::Probe;
            set_state(*g, GroupState::Probing, "cleanup");
            run_chain(*g, g->chain.probe());
        }
    }
    changed();
    evaluate();
    return true;
}

void Manager::cleanup(const std::string& name, Reply reply) {
    if (!cleanup_here(name)) {
        std::string known;
        for (auto& x : groups_) known += (known.empty() ? "" : ", ") + x->cfg.name;
        return reply(false, "no group '" + name + "' (groups: " + known + ")");
    }
    if (liveness_ == PeerLiveness::Up) {
        request_ = proto::Request{request_.seq + 1, proto::RequestKind::Cleanup, {name}};
        changed();
    }
    for (auto& g : groups_)
        if (g->cfg.name == name) return reply(true, Json{{"group", name}, {"state", proto::to_string(g->state)}});
}

void Manager::maintenance(bool on, Reply reply) {
    if (on == maintenance_)
        return reply(true, Json{{"maintenance", on}, {"message", std::string("maintenance mode is already ") + (on ? "on" : "off")}});
    maintenance_ = on;
    log::notice(on ? "maintenance mode on: resources are left as they are and not monitored"
                   : "maintenance mode off: probing every group, then managing again");
    if (on) {
        for (auto& g : groups_) cancel_monitors(*g);
    } else {
        for (auto& g : groups_) {
            if (g->chain.busy()) continue;
            g->op = Op::Probe;
            set_state(*g, GroupState::Probing, "maintenance off");
            run_chain(*g, g->chain.probe());
        }
    }
    changed();
    evaluate();
    reply(true, Json{{"maintenance", on}, {"message", on ? "maintenance mode on: resources are left as they are"
                                                          : "maintenance mode off: probing and managing again"}});
}

void Manager::shutdown(std::function<void()> done) {
    shutting_down_ = true;
    if (maintenance_ || !started_) {
        asio::post(io_, std::move(done));
        return;
    }
    shutdown_done_ = std::move(done);
    for (auto& g : groups_) cancel_monitors(*g);
    evaluate();
}

Json Manager::groups_json() const {
    Json out = Json::array();
    for (const auto& g : groups_) {
        const bool here = holds(g->state);
        const bool there = g->peer_seen && holds(g->theirs.state);
        Json node = here ? Json(self_) : there ? Json(peer_) : Json(nullptr);
        GroupState shown = here || !there ? g->state : g->theirs.state;
        Json res = Json::array();
        for (size_t i = 0; i < g->cfg.resources.size(); ++i) {
            std::string st = g->res_state[i];
            if (!here && there) st = g->theirs.state == GroupState::Running ? "running" : "unknown";
            else if (!here && st != "failed") st = "stopped";
            res.push_back(Json{{"name", g->cfg.resources[i].str()}, {"state", st}});
        }
        Json j{{"name", g->cfg.name},
               {"home", g->cfg.home_node},
               {"node", node},
               {"state", proto::to_string(shown)},
               {"here", proto::to_string(g->state)},
               {"peer", g->peer_seen ? Json(proto::to_string(g->theirs.state)) : Json(nullptr)},
               {"standby", g->standby},
               {"failures", g->failures},
               {"resources", res}};
        if (!g->last_failure.empty()) j["last_failure"] = Json{{"reason", g->last_failure}, {"time", g->last_failure_time}};
        out.push_back(j);
    }
    return out;
}

}  // namespace duet::cluster
