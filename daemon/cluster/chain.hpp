// The chain executor of one group: a pure state machine. It says which action to run on which
// resource next; the caller runs it and reports the agent's OCF return code. Start goes left to
// right; a failed start is rolled back right to left (the failed resource included) so no half
// chain is left running; stop goes right to left, retrying a failed stop; probe monitors every
// resource to find out what runs (after a duetd restart).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace duet::cluster {

enum class Act { Start, Stop, Monitor };
const char* to_string(Act a);

struct Step {
    size_t resource = 0;
    Act act = Act::Start;
    bool operator==(const Step&) const = default;
};

enum class Outcome {
    Started,      // every resource started
    StartFailed,  // a start failed; what had started was stopped again
    Stopped,      // every resource stopped
    Blocked,      // a stop failed after its retries: the group's state is unknown
    ProbedRunning,  // probe: every resource runs
    ProbedStopped,  // probe: none runs
    ProbedPartial,  // probe: some run
};
const char* to_string(Outcome o);

class Chain {
public:
    Chain(size_t resources, int stop_retries);

    // Each returns the next step, or nullopt when the operation is over (see outcome()).
    std::optional<Step> start();
    std::optional<Step> stop();
    std::optional<Step> probe();
    std::optional<Step> on_result(int ocf_rc);

    bool busy() const { return op_ != Op::Idle; }
    Outcome outcome() const { return outcome_; }
    // The resource whose action failed (start or stop), and its return code.
    std::optional<size_t> failed_resource() const { return failed_; }
    int failed_rc() const { return failed_rc_; }
    // After a probe: which resources were found running.
    const std::vector<bool>& running() const { return running_; }

private:
    enum class Op { Idle, Start, Rollback, Stop, Probe };
    std::optional<Step> finish(Outcome o);
    std::optional<Step> next_stop();

    size_t n_;
    int stop_retries_;
    Op op_ = Op::Idle;
    size_t i_ = 0;        // current resource
    int tries_ = 0;       // attempts of the current stop
    Outcome outcome_ = Outcome::Stopped;
    std::optional<size_t> failed_;
    int failed_rc_ = 0;
    std::vector<bool> running_;
};

}  // namespace duet::cluster
