#!/usr/bin/env bash
# Heartbeat paths of every IPv4 kind at once, in Heartbeat's own syntax: bcast on eth0, mcast on
# eth1, ucast on eth1 on another port. Each carries heartbeats; losing one link leaves the peer up
# over the others; datagrams are attributed to the path (socket) they arrived on.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id p)
trap lab_cleanup EXIT

conf=$tmp/conf
mkdir -p "$conf"
cat > "$conf/ha.cf" <<'EOF2'
keepalive 100ms
warntime 300ms
deadtime 600ms
initdead 5
udpport 696
bcast eth0
mcast eth1 239.0.0.11 695 1 0
ucast eth1 203.0.113.1
ucast eth1 203.0.113.2
node alpha beta
EOF2
printf 'auth 2\n2 sha1 lab-paths-secret\n' > "$conf/authkeys"

lab up "$conf" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
check "alpha sees beta" wait_for 10 is alpha 'peer["state"]' up
check "bcast eth0 carries heartbeats" wait_for 5 is alpha 'path("bcast eth0")["state"]' up
check "mcast eth1 carries heartbeats" wait_for 5 is alpha 'path("mcast eth1")["state"]' up
check "ucast eth1 carries heartbeats" wait_for 5 is alpha 'path("ucast eth1")["state"]' up
check "three paths on alpha (the ucast to itself dropped)" is alpha 'len(peer["paths"])' 3
check "udpport applies to bcast and ucast, mcast keeps its own port" is alpha '" | ".join(p["name"] for p in peer["paths"])' \
  "bcast eth0:696 | mcast eth1 239.0.0.11:695 | ucast eth1 203.0.113.2:696"
check "no broadcast of its own counted as hostile" is alpha 's["rejected"]["total"]' 0

# Each path counts only its own datagrams: about one per keepalive each.
r=$(jq_node alpha '[p["received"] for p in peer["paths"]]')
check "received counts are per path and alike ($r)" python3 -c "import sys; v=$r; sys.exit(0 if max(v) - min(v) <= 3 else 1)"

lab hactl alpha status --gaps > "$tmp/gaps.txt"
check "hactl status --gaps shows each path's histogram" bash -c "grep -q \"Gaps between beta's heartbeats\" '$tmp/gaps.txt' && grep -Eq '^    .*100ms-200ms: [0-9]+' '$tmp/gaps.txt'"

lab cut beta eth1
check "cut eth1: mcast eth1 down" wait_for 5 is alpha 'path("mcast eth1")["state"]' down
check "cut eth1: ucast eth1 down" wait_for 5 is alpha 'path("ucast eth1")["state"]' down
check "cut eth1: bcast eth0 still up" is alpha 'path("bcast eth0")["state"]' up
check "cut eth1: the peer stays up" is alpha 'peer["deaths"]' 0
lab heal beta eth1
lab cut beta eth0
check "cut eth0 instead: bcast down" wait_for 5 is alpha 'path("bcast eth0")["state"]' down
check "cut eth0: eth1 paths back up" wait_for 5 is alpha 'path("mcast eth1")["state"]' up
check "cut eth0: the peer still never died" is alpha 'peer["deaths"]' 0
lab cut beta eth1
check "both links cut: the peer is dead" wait_for 5 is alpha 'peer["state"]' dead
lab heal beta
check "healed: the peer is back" wait_for 5 is alpha 'peer["state"]' up

finish
