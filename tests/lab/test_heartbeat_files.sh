#!/usr/bin/env bash
# The seeds' Heartbeat files (ha.cf, authkeys, haresources from the Samba tutorial, addresses
# changed to RFC 5737 ones) run unchanged in the lab: duetd reads them from /etc/ha.d on both
# nodes, the nodes see each other over `mcast eth0 239.0.0.10 694 1 0`, and hactl shows it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id h)
trap lab_cleanup EXIT

lab up "$ROOT/tests/fixtures/seeds/samba" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up with the seeds' files"; finish; exit 1; }
ok "lab up with the seeds' ha.cf, authkeys and haresources"
check "the nodes are the tutorial's" [ "$(lab nodes | tr '\n' ' ')" = "serv1 serv2 " ]
check "serv1 sees serv2" wait_for 15 is serv1 'peer["state"]' up
check "serv2 sees serv1" wait_for 15 is serv2 'peer["state"]' up
check "over the tutorial's multicast path" is serv1 'path("mcast")["name"]' "mcast eth0 239.0.0.10:694"
check "with the tutorial's timings" is serv1 '[s["timings"]["keepalive_ms"], s["timings"]["deadtime_ms"], s["timings"]["warntime_ms"], s["timings"]["initdead_ms"]]' "[2000, 10000, 6000, 60000]"

lab hactl serv1 status > "$tmp/status.txt"
check "hactl status (human) lists both nodes up" bash -c "grep -Eq '^serv1 +up' '$tmp/status.txt' && grep -Eq '^serv2 +up' '$tmp/status.txt'"
check "hactl status (human) lists the path" grep -q "mcast eth0 239.0.0.10:694" "$tmp/status.txt"
check "the log warns about the unsupported logfacility directive, naming file and line" \
  grep -q "/etc/ha.d/ha.cf:5: warning: logfacility" "$(lab log serv1)"

lab exec serv1 "$DUET_BUILD/daemon/duetd" --check-config --ha-dir /etc/ha.d > "$tmp/check.txt" 2>&1
check "duetd --check-config reads the node's /etc/ha.d" [ $? -eq 0 ]
check "and prints the haresources group" grep -q 'Filesystem::/dev/drbd0::/data::ext3' "$tmp/check.txt"
check "and the secret stays hidden" bash -c "! grep -q \"\$(awk '\$1==1 {print \$3}' '$ROOT/tests/fixtures/seeds/samba/authkeys')\" '$tmp/check.txt'"

finish
