#!/usr/bin/env bash
# The resource chain and failover, in the lab, with a real TCP service (tests/lab/failover: an LSB
# init script starting a small server on the floating IP) and Duet's IPaddr agent. Two groups,
# active/active: 198.51.100.20 (home alpha) and 198.51.100.21 (home beta). Covers start-up
# placement, planned switchover both ways, kill / cut / freeze of the active node, gratuitous ARP,
# start failure, stop failure (blocked, never started twice), monitor failure (restart, then
# move), and a duetd restart that leaves the service untouched.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id f)
trap lab_cleanup EXIT
[ -n "${KEEP_LOGS:-}" ] && trap 'cp "$(lab log alpha)" "$KEEP_LOGS.alpha"; cp "$(lab log beta)" "$KEEP_LOGS.beta"; lab_cleanup' EXIT
IP1=198.51.100.20 IP2=198.51.100.21
G1="IPaddr::$IP1/24/eth0" G2="IPaddr::$IP2/24/eth0"

# ask IP: one connection to the service from the client: "<node> <count>"
ask() { lab exec client bash -c "exec 3<>/dev/tcp/$1/7000 && timeout 2 cat <&3" 2>/dev/null; }
answers_from() { [[ "$(ask "$1")" == "$2 "* ]]; }
group() { jq_node "$1" "next(g for g in s['groups'] if g['name'] == '$2')$3"; }
runs_on() { [ "$(group "$1" "$2" "['node']")" = "$3" ]; }
group_state() { [ "$(group "$1" "$2" "['state']")" = "$3" ]; }
mac_of() { lab exec "$1" cat /sys/class/net/eth0/address; }
client_mac_for() { lab exec client ip neigh show "$1" | awk '{for (i=1;i<=NF;i++) if ($i=="lladdr") print $(i+1)}'; }

lab up "$ROOT/tests/lab/failover" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
ok "lab up: two groups, active/active"
check "start-up: group 1 runs on its home alpha" wait_for 15 runs_on alpha "$G1" alpha
check "start-up: group 2 runs on its home beta" wait_for 15 runs_on alpha "$G2" beta
check "the client reaches group 1 on alpha" wait_for 5 answers_from $IP1 alpha
check "the client reaches group 2 on beta" wait_for 5 answers_from $IP2 beta
check "beta agrees on the placement" runs_on beta "$G1" alpha
check "each resource's state is shown" [ "$(group alpha "$G1" "['resources'][1]")" = '{"name": "echosvc", "state": "running"}' ]

# Planned switchover both ways.
mac_alpha=$(mac_of alpha) mac_beta=$(mac_of beta)
check "the client's neighbour entry points to alpha" [ "$(client_mac_for $IP1)" = "$mac_alpha" ]
t0=$(now_ms)
lab hactl alpha standby local > "$tmp/standby.out" 2>&1
rc=$?
t_switch=$(( $(now_ms) - t0 ))
check "hactl standby local waits and reports success (${t_switch} ms)" [ $rc -eq 0 ] || cat "$tmp/standby.out"
check "standby local: group 1 now on beta" runs_on alpha "$G1" beta
check "standby local: group 2 untouched on beta" runs_on alpha "$G2" beta
check "the client reaches group 1 on beta at once" answers_from $IP1 beta
check "gratuitous ARP: the client's entry for the IP now points to beta, without waiting for expiry" [ "$(client_mac_for $IP1)" = "$mac_beta" ]
lab hactl alpha takeover local > "$tmp/takeover.out" 2>&1
check "hactl takeover local brings group 1 back to alpha" [ $? -eq 0 ] || cat "$tmp/takeover.out"
check "takeover: the client reaches group 1 on alpha" answers_from $IP1 alpha
check "takeover: group 2 stays on beta" runs_on alpha "$G2" beta
lab hactl beta standby --no-wait > /dev/null
check "hactl standby --no-wait returns at once; group 2 then moves to alpha" wait_for 10 runs_on alpha "$G2" alpha
lab hactl beta takeover > "$tmp/takeover2.out" 2>&1
check "takeover all on beta moves both groups to beta" bash -c "[ $? -eq 0 ]" || cat "$tmp/takeover2.out"
check "  group 1 on beta" runs_on beta "$G1" beta
lab hactl alpha takeover local > /dev/null 2>&1
check "and back: group 1 on alpha" wait_for 10 runs_on beta "$G1" alpha
check "group 2 on beta" wait_for 10 runs_on beta "$G2" beta

# Power loss of the active node.
t0=$(now_ms)
lab kill alpha
check "kill alpha: group 1 answers from beta" wait_for 10 answers_from $IP1 beta
echo "  (kill -> first answer from beta: $(( $(now_ms) - t0 )) ms)"
lab restart alpha > /dev/null
check "alpha back: auto_failback off, group 1 stays on beta" wait_for 10 is alpha 'peer["state"]' up
sleep 1
check "  still on beta" runs_on alpha "$G1" beta
lab hactl alpha takeover local > /dev/null 2>&1
check "takeover local after the return: group 1 on alpha" wait_for 10 runs_on beta "$G1" alpha

# Both links of the active node cut: the peer takes over (the cut node keeps it too: a partition,
# Heartbeat's split brain). On heal they see each other again and only the home node keeps it.
lab cut alpha
check "cut alpha: group 1 answers from beta" wait_for 10 answers_from $IP1 beta
lab heal alpha
check "heal: group 1 runs on one node only, its home" wait_for 10 runs_on beta "$G1" alpha
check "  and beta stopped its copy" wait_for 10 bash -c "[ \"\$(DUET_LAB=$DUET_LAB $LAB exec beta ip -4 addr show dev eth0 2>/dev/null | grep -c '$IP1/')\" = 0 ]"
check "  the client reaches it on alpha" wait_for 10 answers_from $IP1 alpha

# The active node frozen: the peer takes over; on thaw the home node keeps it, beta stops.
lab freeze alpha
check "freeze alpha: group 1 answers from beta" wait_for 10 answers_from $IP1 beta
lab thaw alpha
check "thaw: group 1 back to one node, alpha" wait_for 10 runs_on beta "$G1" alpha
check "  the client reaches it on alpha" wait_for 10 answers_from $IP1 alpha

# A duetd restart (kill -9, start again within deadtime) leaves the service running: the
# service's own connection count shows no restart, and no failover happens.
before=$(ask $IP1)
deaths_before=$(jq_node beta 'peer["deaths"]')
lab kill alpha duetd
lab start alpha duetd > /dev/null
check "duetd restarted: group 1 adopted on alpha" wait_for 10 runs_on alpha "$G1" alpha
after=$(ask $IP1)
check "the same service process answers (count $before -> $after)" [ "${after%% *}" = alpha ] && [ "${after##* }" -gt "${before##* }" ]
check "beta saw a restart, not a death" is beta 'peer["deaths"]' "$deaths_before"
check "the log says it adopted the group" grep -q "found running here; adopted" "$(lab log alpha)"

# Start failure on one node: stopped again there, started on the other.
lab exec alpha touch /var/lib/duet/echosvc.fail-start
lab hactl alpha standby local > /dev/null 2>&1
lab hactl alpha takeover local > "$tmp/tk.out" 2>&1
check "a failing start makes takeover report failure" [ $? -ne 0 ]
check "start failure: group 1 failed on alpha, runs on beta" wait_for 10 runs_on alpha "$G1" beta
check "  the last failure says why" bash -c "DUET_LAB=$DUET_LAB $LAB hactl alpha status --json | grep -q 'refusing to start (test marker)'"
check "  nothing of it left on alpha (the IP was removed again)" bash -c "[ \"\$(DUET_LAB=$DUET_LAB $LAB exec alpha ip -4 addr show dev eth0 2>/dev/null | grep -c '$IP1/')\" = 0 ]"
lab exec alpha rm -f /var/lib/duet/echosvc.fail-start
lab hactl alpha cleanup "$G1" > /dev/null
lab hactl alpha takeover local > /dev/null 2>&1
check "cleanup, then takeover: back on alpha" wait_for 10 runs_on beta "$G1" alpha

# Monitor failure: the service dies; restarted in place; at the threshold (2) it moves.
svc_pid() { lab exec alpha cat /run/duet/echosvc.pid; }
lab exec alpha kill "$(svc_pid)"
check "monitor failure 1: restarted in place on alpha" wait_for 10 bash -c "[ \"\$(DUET_LAB=$DUET_LAB $LAB hactl alpha status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); g=[g for g in s[\"groups\"] if g[\"name\"]==\"$G1\"][0]; print(g[\"failures\"], g[\"node\"], g[\"state\"])')\" = '1 alpha running' ]"
check "  answering again" wait_for 5 answers_from $IP1 alpha
lab exec alpha kill "$(svc_pid)"
check "monitor failure 2 (threshold): moved to beta" wait_for 10 runs_on alpha "$G1" beta
check "  failed on alpha" group_state alpha "$G1" running
check "  alpha shows it failed here" [ "$(group alpha "$G1" "['here']")" = failed ]
lab hactl alpha cleanup "$G1" > /dev/null
lab hactl alpha takeover local > /dev/null 2>&1
check "cleanup + takeover: back on alpha" wait_for 10 runs_on beta "$G1" alpha

# Stop failure: blocked, and never started on the other node.
lab exec alpha touch /var/lib/duet/echosvc.fail-stop
lab hactl alpha standby local > /dev/null 2>&1
check "stop failure: group 1 blocked on alpha" wait_for 15 group_state alpha "$G1" blocked
sleep 1
check "  beta did not start it" [ "$(lab exec beta ip -4 addr show dev eth0 2>/dev/null | grep -c "$IP1/")" = 0 ]
check "  beta reports it blocked too" [ "$(group beta "$G1" "['state']")" = blocked ]
check "  an alert event and log line" grep -q "BLOCKED" "$(lab log alpha)"
lab exec alpha rm -f /var/lib/duet/echosvc.fail-stop
lab hactl alpha cleanup "$G1" > /dev/null
# alpha is still in standby (the switchover that hit the failing stop): after the cleanup re-probe
# finds the group running there, it completes the switchover to beta.
check "cleanup re-probes; alpha, in standby, completes the switchover to beta" wait_for 10 runs_on alpha "$G1" beta
check "  nothing of it left on alpha" wait_for 10 bash -c "[ \"\$(DUET_LAB=$DUET_LAB $LAB exec alpha ip -4 addr show dev eth0 2>/dev/null | grep -c '$IP1/')\" = 0 ]"
lab hactl alpha takeover local > /dev/null 2>&1
check "takeover: back on alpha" wait_for 10 runs_on beta "$G1" alpha

# failure_timeout (8 s in this config): a failure is forgotten after that long without another.
lab exec alpha kill "$(svc_pid)"
failures_are() { [ "$(group alpha "$G1" "['failures']")" = "$1" ]; }
check "one monitor failure counted" wait_for 10 failures_are 1
check "  and restarted in place" wait_for 10 answers_from $IP1 alpha
check "failure_timeout: forgotten after 8 s" wait_for 15 failures_are 0
check "  the log says so" grep -q "failures forgotten" "$(lab log alpha)"

finish
