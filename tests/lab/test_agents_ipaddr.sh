#!/usr/bin/env bash
# The IPaddr agent in the lab: ocf-tester passes; Heartbeat's ADDRESS/PREFIX/INTERFACE form and
# the routing-table lookup work; gratuitous ARP moves the client's existing neighbour entry
# (REACHABLE or STALE) to the new node at once on a takeover, and a takeover without it leaves the
# entry stale (so the check can fail); arp_refresh re-announces from monitor only when due;
# removing a primary address keeps the secondary addresses of its subnet; bad parameters get the
# right OCF codes. The agent is run directly in the nodes, not through duetd.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id ai)
trap lab_cleanup EXIT

AGENT=$ROOT/agents/IPaddr
VIP=198.51.100.20
lab_up_minimal agents-ipaddr

# agent NODE ACTION [NAME=VALUE...]: runs the agent on NODE with OCF_RESKEY_NAME=VALUE; its
# stderr goes to $tmp/agent.log (appended) and $tmp/last.log; returns its exit status.
agent() {
  local node=$1 action=$2 env=() kv
  shift 2
  for kv in "$@"; do env+=("OCF_RESKEY_$kv"); done
  lab exec "$node" env HA_RSCTMP="$tmp/rsc-$node" OCF_RESOURCE_INSTANCE=vip "${env[@]}" \
    "$AGENT" "$action" 2> "$tmp/last.log"
  local rc=$?
  cat "$tmp/last.log" >> "$tmp/agent.log"
  return $rc
}
rc_is() { local want=$1; shift; "$@"; [ $? -eq "$want" ]; }
mac_of() { lab exec "$1" cat /sys/class/net/eth0/address; }
# client_entry: "MAC STATE" of the client's neighbour entry for the floating address.
client_entry() {
  lab exec client ip neigh show "$VIP" dev eth0 |
    awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") { print $(i + 1), $NF; exit } }'
}
client_mac() { client_entry | cut -d' ' -f1; }
reaches() { lab exec client ping -c 1 -W 2 "$VIP" > /dev/null; }
has_addr() { lab exec "$1" ip -o -4 addr show dev "$2" | grep -q " inet $3 "; }
# lacks NODE REGEX: no address of NODE matches " REGEX/".
lacks() { ! lab exec "$1" ip -o -4 addr | grep -Eq " $2/"; }
labelled() { lab exec alpha ip -o -4 addr show dev eth0 | grep " inet $1 " | grep -q "$2"; }
ALPHA=$(mac_of alpha) BETA=$(mac_of beta)

# --- ocf-tester and meta-data ------------------------------------------------------------------
lab exec alpha env HA_RSCTMP="$tmp/rsc-alpha" /usr/sbin/ocf-tester -n vip -o ip=198.51.100.50/24 "$AGENT" \
  > "$tmp/ocft.log" 2>&1
check "ocf-tester passes on IPaddr" grep -q "passed all tests" "$tmp/ocft.log" || cat "$tmp/ocft.log"
check "ocf-tester left no address behind" lacks alpha '198\.51\.100\.50'
first=$("$AGENT" meta-data | xmllint --xpath 'string(//parameters/parameter[1]/@name)' -)
check "meta-data: the first parameter is ip (positional argument order)" [ "$first" = ip ]

# --- takeover: the client's neighbour entry follows at once ------------------------------------
# Before the first start, the client has an entry for the address that points nowhere useful.
lab exec client ip neigh replace "$VIP" lladdr 02:00:00:00:00:01 dev eth0 nud stale
check "start on alpha (IPaddr::$VIP/24/eth0)" agent alpha start ip=$VIP/24/eth0
check "the address is on alpha's eth0 with prefix 24" has_addr alpha eth0 "$VIP/24"
check "monitor on alpha: running" agent alpha monitor ip=$VIP/24/eth0
check "monitor on beta: not running (7)" rc_is 7 agent beta monitor ip=$VIP/24/eth0
check "gratuitous ARP alone moved the client's entry to alpha ($(client_entry))" [ "$(client_mac)" = "$ALPHA" ]
# The client resolves the address itself: its entry becomes REACHABLE.
lab exec client ip neigh del "$VIP" dev eth0
check "the client reaches the address" reaches
check "the client's entry is alpha's and REACHABLE ($(client_entry))" [ "$(client_entry)" = "$ALPHA REACHABLE" ]

check "stop on alpha" agent alpha stop ip=$VIP/24/eth0
check "the address is gone from alpha" lacks alpha "$VIP"
check "start on beta" agent beta start ip=$VIP/24/eth0
entry=$(client_entry)
check "the client's REACHABLE entry points to beta right away, without traffic ($entry)" [ "${entry%% *}" = "$BETA" ]
check "the client reaches the address on beta" reaches

# Back to alpha with the client's entry STALE.
lab exec client ip neigh change "$VIP" lladdr "$BETA" dev eth0 nud stale
check "stop on beta" agent beta stop ip=$VIP/24/eth0
check "start on alpha again" agent alpha start ip=$VIP/24/eth0
entry=$(client_entry)
check "a STALE entry moves to alpha right away too ($entry)" [ "${entry%% *}" = "$ALPHA" ]

# The same takeover without gratuitous ARP: the client's entry stays on the old node.
reaches
check "stop on alpha" agent alpha stop ip=$VIP/24/eth0
check "start on beta with arp_count=0" agent beta start ip=$VIP/24/eth0 arp_count=0
entry=$(client_entry)
check "without gratuitous ARP the client's entry still names alpha ($entry)" [ "${entry%% *}" = "$ALPHA" ]
check "stop on beta" agent beta stop ip=$VIP/24/eth0

# --- arp_refresh: monitor re-announces when due, not before ------------------------------------
# The refresh is due arp_refresh seconds after the last announcement, whatever the parameter was at
# start: a long one first (never due during the test, however loaded the machine), then a short one.
check "start on alpha with arp_refresh=30" agent alpha start ip=$VIP/24/eth0 arp_refresh=30
# start returns after the first announcement; the later rounds run detached: let them finish.
announcing() { compgen -G "$tmp/rsc-alpha/*.announcer" > /dev/null; }
done_announcing() { ! announcing; }
check "the start's announcements run in the background" announcing
check "and finish" wait_for 10 done_announcing
lab exec client ip neigh replace "$VIP" lladdr 02:00:00:00:00:01 dev eth0 nud stale
check "monitor right after start" agent alpha monitor ip=$VIP/24/eth0 arp_refresh=30
check "no re-announcement before arp_refresh seconds ($(client_entry))" [ "$(client_mac)" = 02:00:00:00:00:01 ]
sleep 1.2
check "monitor after arp_refresh seconds" agent alpha monitor ip=$VIP/24/eth0 arp_refresh=1
check "monitor re-announced: the client's entry is alpha's ($(client_entry))" [ "$(client_mac)" = "$ALPHA" ]
check "the re-announcement is logged" grep -q "re-announced $VIP on eth0" "$tmp/last.log"
check "stop" agent alpha stop ip=$VIP/24/eth0
check "stop on a stopped address succeeds" agent alpha stop ip=$VIP/24/eth0
check "monitor after stop: 7" rc_is 7 agent alpha monitor ip=$VIP/24/eth0

# --- interface and prefix from the routing table; labels ---------------------------------------
check "start 198.51.100.21 (no prefix, no interface)" agent alpha start ip=198.51.100.21
check "it went to eth0 as /24 (the connected route)" has_addr alpha eth0 198.51.100.21/24
check "the log says where they came from" grep -q "interface eth0 from the routing table" "$tmp/last.log"
check "monitor without interface" agent alpha monitor ip=198.51.100.21
check "stop without interface" agent alpha stop ip=198.51.100.21
check "start 203.0.113.21 (no prefix, no interface)" agent alpha start ip=203.0.113.21 arp_count=1
check "it went to eth1 as /24" has_addr alpha eth1 203.0.113.21/24
check "stop" agent alpha stop ip=203.0.113.21
check "start with an alias label (198.51.100.23/24/eth0:fl)" agent alpha start ip=198.51.100.23/24/eth0:fl arp_count=1
check "the address carries the label eth0:fl" labelled 198.51.100.23/24 eth0:fl
check "stop removes the labelled address" agent alpha stop ip=198.51.100.23/24/eth0:fl
check "cidr_netmask (a netmask) and nic override the ip form" agent alpha start ip=198.51.100.24/24/eth0 cidr_netmask=255.255.255.128 nic=eth0 arp_count=1
check "the address is 198.51.100.24/25" has_addr alpha eth0 198.51.100.24/25
check "stop" agent alpha stop ip=198.51.100.24

# --- removing a primary address keeps the secondaries of its subnet ----------------------------
# 203.0.113.64/26 is a subnet of its own on eth1: its first address is primary, the next secondary.
check "start 203.0.113.65/26/eth1 (primary in its subnet)" agent alpha start ip=203.0.113.65/26/eth1 arp_count=1
check "start 203.0.113.66/26/eth1 (secondary)" agent alpha start ip=203.0.113.66/26/eth1 arp_count=1
check "stop the primary one" agent alpha stop ip=203.0.113.65/26/eth1
check "the secondary one is still there" has_addr alpha eth1 203.0.113.66/26
check "stop the other" agent alpha stop ip=203.0.113.66/26/eth1

# --- errors ------------------------------------------------------------------------------------
check "no ip: not configured (6)" rc_is 6 agent alpha validate-all
check "ip 198.51.100.256: not configured (6)" rc_is 6 agent alpha validate-all ip=198.51.100.256
check "prefix /33: not configured (6)" rc_is 6 agent alpha validate-all ip=198.51.100.20/33/eth0
check "missing interface eth7: not installed (5)" rc_is 5 agent alpha start ip=198.51.100.20/24/eth7
check "the error names the interface" grep -q "interface eth7 does not exist on alpha" "$tmp/last.log"
# The client has no route to 203.0.113.0/24.
check "no interface given and no route: not configured (6)" rc_is 6 agent client start ip=203.0.113.40
check "the error says how to write it" grep -q "write it as 203.0.113.40/PREFIX/INTERFACE" "$tmp/last.log"
check "arp_count=x: not configured (6)" rc_is 6 agent alpha validate-all ip=$VIP arp_count=x
check "unknown action: unimplemented (3)" rc_is 3 agent alpha reload ip=$VIP
check "no action: bad arguments (2)" rc_is 2 lab exec alpha "$AGENT" 2>/dev/null
nothing_left() {
  local used='(198\.51\.100\.(2[0-9]|50)|203\.0\.113\.(21|6[56]))'
  lacks alpha "$used" && lacks beta "$used"
}
check "nothing left on either node" nothing_left

finish
