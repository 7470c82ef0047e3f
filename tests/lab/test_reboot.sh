#!/usr/bin/env bash
# on_stop_failure = reboot (Heartbeat's behaviour): a stop that fails reboots the node, which in a
# lab node ends that node's PID namespace (reboot(2) in a child PID namespace), and the peer takes
# the group over as from a dead node. The group is never reported blocked.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id r)
trap lab_cleanup EXIT
IP1=198.51.100.20 G1="IPaddr::198.51.100.20/24/eth0"
conf=$tmp/conf
cp -rL "$ROOT/tests/lab/failover" "$conf"
sed -i 's/^stop_retries = 1$/stop_retries = 1\non_stop_failure = "reboot"/' "$conf/duet.toml"
grep -q 'on_stop_failure = "reboot"' "$conf/duet.toml" || { no "config edited"; finish; exit 1; }

ask() { lab exec client bash -c "exec 3<>/dev/tcp/$1/7000 && timeout 2 cat <&3" 2>/dev/null; }
answers_from() { [[ "$(ask "$1")" == "$2 "* ]]; }
runs_on() { [ "$(jq_node "$1" "next(g for g in s['groups'] if g['name'] == '$2')['node']")" = "$3" ]; }

lab up "$conf" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
check "group 1 runs on alpha" wait_for 15 runs_on beta "$G1" alpha
lab exec alpha touch /var/lib/duet/echosvc.fail-stop
lab hactl alpha standby local > /dev/null 2>&1 &
bg_pids+=($!)
check "the failed stop reboots alpha (its node is gone)" wait_for 15 is beta 'peer["state"]' dead
check "the log says why" grep -q "on_stop_failure = reboot: rebooting this node now" "$(lab log alpha)"
check "beta takes group 1 over" wait_for 15 runs_on beta "$G1" beta
check "  and serves it" wait_for 10 answers_from $IP1 beta
check "it was never reported blocked" bash -c "! grep -q 'BLOCKED' '$(lab log alpha)'"
lab exec alpha true 2>/dev/null && lab exec alpha rm -f /var/lib/duet/echosvc.fail-stop
rm -f "/run/duet-lab/$DUET_LAB/nodes/alpha/state/echosvc.fail-stop"
lab restart alpha > /dev/null
check "alpha comes back; the group stays on beta" wait_for 15 is beta 'peer["state"]' up
check "  still on beta" runs_on beta "$G1" beta
finish
