#!/usr/bin/env bash
# Membership in the lab: two nodes see each other over mcast (and ucast on the second link); one
# path cut keeps the peer alive and reports the path down; a killed node is declared dead within
# deadtime + one keepalive (asserted with 3x slack; the benchmark measures it precisely); a frozen
# receiver reads its queued heartbeats and blames no one; a restarted node comes back with a new
# generation; 10,000 hostile datagrams from the client are all rejected and counted, with no state
# change and both daemons alive.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id m)
trap lab_cleanup EXIT

KEEPALIVE=100 DEADTIME=500
conf=$tmp/conf
mkdir -p "$conf"
cat > "$conf/duet.toml" <<TOML
cluster = "labtest"
nodes = ["alpha", "beta"]
[timings]
keepalive = "${KEEPALIVE}ms"
warntime = "300ms"
deadtime = "${DEADTIME}ms"
initdead = "5s"
[auth]
key = "lab-membership-key"
[[path]]
type = "mcast"
interface = "eth0"
group = "239.0.0.10"
[[path]]
type = "ucast"
interface = "eth1"
address = "203.0.113.1"
[[path]]
type = "ucast"
interface = "eth1"
address = "203.0.113.2"
TOML

lab up "$conf" >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
ok "lab up with two nodes"

both_up() { is alpha 'peer["state"]' up && is beta 'peer["state"]' up; }
check "both nodes see each other" wait_for 10 both_up
check "alpha hears beta over mcast on eth0" wait_for 5 is alpha 'path("mcast eth0")["state"]' up
check "beta hears alpha over mcast on eth0" wait_for 5 is beta 'path("mcast eth0")["state"]' up
check "alpha hears beta over ucast on eth1" wait_for 5 is alpha 'path("ucast eth1")["state"]' up
check "each node drops the ucast path to its own address" is alpha 'len(peer["paths"])' 2
check "the ucast path kept is the peer's address" is alpha 'path("ucast eth1")["name"]' "ucast eth1 203.0.113.2:694"

# Events from alpha, streamed for the rest of the test.
lab hactl alpha events > "$tmp/events.alpha" 2>&1 &
bg_pids+=($!)

# One path cut: the path goes down, the peer stays up.
lab cut beta eth0
check "cut eth0: alpha reports the mcast path down" wait_for 5 is alpha 'path("mcast eth0")["state"]' down
check "cut eth0: the ucast path on eth1 stays up" is alpha 'path("ucast eth1")["state"]' up
sleep 1  # a whole second (two deadtimes) with one path: the peer must stay up throughout
check "cut eth0: the peer stays up" is alpha 'peer["state"]' up
check "cut eth0: no death was declared" is alpha 'peer["deaths"]' 0
check "cut eth0: beta reports alpha's mcast path down too" wait_for 5 is beta 'path("mcast eth0")["state"]' down
lab heal beta eth0
check "heal: the path comes back" wait_for 5 is alpha 'path("mcast eth0")["state"]' up
check "the event stream reported path_down and path_up" bash -c "grep -q '\"type\":\"path_down\"' '$tmp/events.alpha' && grep -q '\"type\":\"path_up\"' '$tmp/events.alpha'"

# The receiver frozen: on thaw it reads the heartbeats queued meanwhile and declares no death;
# the other side, which saw silence, does.
gen_alpha=$(jq_node beta 'peer["generation"]')
lab freeze alpha
sleep 1
lab thaw alpha
check "frozen alpha: beta declared it dead" wait_for 5 is beta 'peer["deaths"]' 1
check "frozen alpha: beta sees it back, same generation (no restart)" wait_for 5 is beta 'peer["generation"]' "$gen_alpha"
check "thawed alpha declared no death of beta" wait_for 2 is alpha 'peer["deaths"]' 0
check "thawed alpha logged that it was not scheduled" grep -q "duetd was not scheduled" "$(lab log alpha)"

# Power loss of beta: detection time from the fault to alpha's peer_dead event.
check "both up before the kill" wait_for 10 both_up
gen_before=$(jq_node alpha 'peer["generation"]')
t0=$(now_ms)
lab kill beta
dead_event() { grep '"type":"peer_dead"' "$tmp/events.alpha" | tail -n 1; }
dead_events() { grep -q '"type":"peer_dead"' "$tmp/events.alpha"; }
check "kill: alpha declares beta dead" wait_for 10 dead_events
t_dead=$(dead_event | python3 -c 'import json,sys,datetime; e=json.loads(sys.stdin.read()); print(int(datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()*1000))')
detect=$((t_dead - t0))
limit=$(( 3 * (DEADTIME + KEEPALIVE) ))
check "kill: detected in ${detect} ms (deadtime ${DEADTIME} + keepalive ${KEEPALIVE}, 3x slack: ${limit} ms)" [ "$detect" -le "$limit" ]
check "kill: not before deadtime minus one keepalive" [ "$detect" -ge "$((DEADTIME - KEEPALIVE))" ]
check "status says dead" is alpha 'peer["state"]' dead
check "the log says why" grep -q "peer beta is dead: no heartbeat on any path" "$(lab log alpha)"

lab restart beta >/dev/null
check "restart: beta is up again on alpha" wait_for 10 is alpha 'peer["state"]' up
gen_after=$(jq_node alpha 'peer["generation"]')
check "restart: with a newer generation ($gen_before -> $gen_after)" [ "$gen_after" -gt "$gen_before" ]
check "restart: beta sees alpha" wait_for 10 is beta 'peer["state"]' up

# 10,000 hostile datagrams from the client namespace.
check "both up before the flood" wait_for 10 both_up
for n in alpha beta; do
  jq_node $n '[s["rejected"].get("total",0), s["rejected"].get("own",0), peer["deaths"], peer["generation"], s["pid"], s["generation"]]' > "$tmp/before.$n"
done
lab exec client "$DUET_BUILD/tests/tools/hbflood" --iface eth0 --group 239.0.0.10 --port 694 \
  --cluster labtest --key lab-membership-key --capture-node alpha --count 10000 > "$tmp/flood.json" 2>&1
rc=$?
check "hbflood sent 10000 hostile datagrams" [ $rc -eq 0 ] || cat "$tmp/flood.json"
sleep 0.5
read_counts() { jq_node "$1" '[s["rejected"].get("total",0), s["rejected"].get("own",0), peer["deaths"], peer["generation"], s["pid"], s["generation"]]'; }
delta() {  # NODE INDEX: that counter now minus before the flood
  python3 -c 'import json,sys; a=json.loads(open(sys.argv[1]).read()); b=json.loads(sys.argv[2]); print(b[int(sys.argv[3])]-a[int(sys.argv[3])])' "$tmp/before.$1" "$(read_counts "$1")" "$2"
}
delta_is() { [ "$(delta "$1" "$2")" = "$3" ]; }
# beta rejects every one; alpha rejects all but the replays of its own packets, counted as own.
check "beta rejected and counted all 10000" wait_for 5 delta_is beta 0 10000 || echo "  beta now $(read_counts beta), before $(cat "$tmp/before.beta"); sent $(cat "$tmp/flood.json")"
check "alpha rejected the 8000 others" wait_for 5 delta_is alpha 0 8000 || echo "  alpha now $(read_counts alpha), before $(cat "$tmp/before.alpha")"
check "alpha counted the 2000 replays of its own packets as own" delta_is alpha 1 2000
for n in alpha beta; do
  check "$n: no death during the flood" [ "$(delta $n 2)" = 0 ]
  check "$n: peer generation unchanged" [ "$(delta $n 3)" = 0 ]
  check "$n: the same daemon is alive (pid and generation)" [ "$(delta $n 4)" = 0 -a "$(delta $n 5)" = 0 ]
  check "$n: peer still up" is $n 'peer["state"]' up
done
check "beta counted the replays as replays" [ "$(jq_node beta 's["rejected"].get("replay",0)')" -ge 2000 ]
check "beta counted bad MACs" [ "$(jq_node beta 's["rejected"].get("bad_mac",0)')" -ge 2000 ]
check "beta counted oversized" [ "$(jq_node beta 's["rejected"].get("oversized",0)')" -ge 2000 ]
check "the log names the client as the source, rate-limited" bash -c "n=\$(grep -c 'rejected heartbeat from 198.51.100.100' '$(lab log beta)'); [ \$n -ge 1 ] && [ \$n -le 40 ]"

finish
