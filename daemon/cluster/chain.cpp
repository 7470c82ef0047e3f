#include "daemon/cluster/chain.hpp"

#include <stdexcept>

namespace duet::cluster {

namespace {
constexpr int kOcfSuccess = 0;
constexpr int kOcfErrGeneric = 1;
}  // namespace

const char* to_string(Act a) {
    switch (a) {
        case Act::Start: return "start";
        case Act::Stop: return "stop";
        case Act::Monitor: return "monitor";
    }
    return "?";
}

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::Started: return "started";
        case Outcome::StartFailed: return "start failed";
        case Outcome::Stopped: return "stopped";
        case Outcome::Blocked: return "blocked";
        case Outcome::ProbedRunning: return "running";
        case Outcome::ProbedStopped: return "stopped";
        case Outcome::ProbedPartial: return "partially running";
    }
    return "?";
}

Chain::Chain(size_t resources, int stop_retries) : n_(resources), stop_retries_(stop_retries) {
    if (n_ == 0) throw std::invalid_argument("a group needs at least one resource");
    if (stop_retries_ < 0) throw std::invalid_argument("stop_retries must be >= 0");
}

std::optional<Step> Chain::finish(Outcome o) {
    op_ = Op::Idle;
    outcome_ = o;
    return std::nullopt;
}

std::optional<Step> Chain::start() {
    if (busy()) throw std::logic_error("chain: start while busy");
    op_ = Op::Start;
    failed_.reset();
    failed_rc_ = 0;
    i_ = 0;
    return Step{0, Act::Start};
}

std::optional<Step> Chain::stop() {
    if (busy()) throw std::logic_error("chain: stop while busy");
    op_ = Op::Stop;
    failed_.reset();
    failed_rc_ = 0;
    i_ = n_ - 1;
    tries_ = 0;
    return Step{i_, Act::Stop};
}

std::optional<Step> Chain::probe() {
    if (busy()) throw std::logic_error("chain: probe while busy");
    op_ = Op::Probe;
    running_.assign(n_, false);
    i_ = 0;
    return Step{0, Act::Monitor};
}

// After a successful stop of i_: the next one to the left, or the end.
std::optional<Step> Chain::next_stop() {
    if (i_ == 0) {
        if (op_ == Op::Rollback) return finish(Outcome::StartFailed);
        return finish(Outcome::Stopped);
    }
    --i_;
    tries_ = 0;
    return Step{i_, Act::Stop};
}

std::optional<Step> Chain::on_result(int rc) {
    switch (op_) {
        case Op::Idle:
            throw std::logic_error("chain: result with no operation running");
        case Op::Start:
            if (rc == kOcfSuccess) {
                if (++i_ == n_) return finish(Outcome::Started);
                return Step{i_, Act::Start};
            }
            failed_ = i_;
            failed_rc_ = rc;
            op_ = Op::Rollback;  // stop the failed one too: it may have half started
            tries_ = 0;
            return Step{i_, Act::Stop};
        case Op::Rollback:
        case Op::Stop:
            if (rc == kOcfSuccess) return next_stop();
            if (tries_ < stop_retries_) {
                ++tries_;
                return Step{i_, Act::Stop};
            }
            if (!failed_ || op_ == Op::Stop) {
                failed_ = i_;
                failed_rc_ = rc;
            }
            return finish(Outcome::Blocked);
        case Op::Probe:
            // A generic error means "failed, state unknown": count it as possibly running, so that
            // it gets stopped rather than forgotten. Not installed/configured cannot be running.
            running_[i_] = rc == kOcfSuccess || rc == kOcfErrGeneric;
            if (++i_ < n_) return Step{i_, Act::Monitor};
            {
                size_t up = 0;
                for (bool r : running_) up += r;
                return finish(up == n_ ? Outcome::ProbedRunning : up == 0 ? Outcome::ProbedStopped : Outcome::ProbedPartial);
            }
    }
    return std::nullopt;
}

}  // namespace duet::cluster
