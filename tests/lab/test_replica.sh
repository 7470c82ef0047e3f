#!/usr/bin/env bash
# The replicated disk in the lab, each node with its own /dev/lab/disk0: create-md (and its
# refusals), the engines connecting, the initial full sync with the device in use during it, ext4
# on the Primary, the seeds' manual switchover both ways with every file byte-identical (several
# rounds), a cut replication link (writes while disconnected, then a resync of about what was
# written, not the disk), hostile and mistaken peers on the replication port (refused, nothing
# written, engine alive), a duetd restart that leaves the engine and its mounted filesystem alone,
# and the replica in a resource chain failing over with its filesystem after a power loss.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id rp)
trap lab_cleanup EXIT

SECRET=lab-replica-secret
conf=$tmp/conf
mkdir -p "$conf"
write_conf() {  # write_conf DIR [haresources line]
  local hr=""
  [ -n "${2:-}" ] && hr="haresources = [\"$2\"]"
  cat > "$1/duet.toml" <<TOML
cluster = "replica-lab"
nodes = ["alpha", "beta"]
$hr
[timings]
keepalive = "200ms"
warntime = "600ms"
deadtime = "1500ms"
initdead = "3s"
[auth]
key = "lab-replica-key"
[[path]]
type = "mcast"
interface = "eth0"
group = "239.0.0.10"
[replica.r0]
device = "/dev/duet/r0"
protocol = "C"
secret = "$SECRET"
[replica.r0.node.alpha]
address = "203.0.113.1:7788"
disk = "/dev/lab/disk0"
[replica.r0.node.beta]
address = "203.0.113.2:7788"
disk = "/dev/lab/disk0"
TOML
}
write_conf "$conf"
lab up "$conf" --disk 256M > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
ok "lab up with a 256M disk per node"

rs() { lab hactl "$1" replica status r0 --json 2> /dev/null; }
# rq NODE EXPR: a Python expression over NODE's replica status `s`.
rq() { rs "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)" 2> /dev/null; }
ris() { [ "$(rq "$1" "$2")" = "$3" ]; }
MNT=/mnt/r0
export LAB
export -f lab rs rq ris   # for the `bash -c` conditions below

# ---- metadata -----------------------------------------------------------------------------------
check "no engine before the metadata exists (duetd tried and logged why)" \
  wait_for 10 bash -c "grep -q 'create the metadata with .hactl replica create-md r0' '$(lab log alpha)'"
lab exec beta mkfs.ext4 -q -F /dev/lab/disk0
out=$(lab hactl beta replica create-md r0 2>&1)
check "create-md refuses a disk whose ext4 the metadata would truncate" \
  bash -c "[[ \"\$1\" == *ext4* && \"\$1\" == *resize2fs* ]]" _ "$out"
check "create-md --force overwrites it" lab hactl beta replica create-md r0 --force
check "create-md on alpha" lab hactl alpha replica create-md r0
out=$(lab hactl alpha replica create-md r0 2>&1)
check "create-md refuses to overwrite existing metadata without --force" \
  bash -c "[[ \"\$1\" == *'already holds Duet metadata'* ]]" _ "$out"

# ---- engines and the initial sync ------------------------------------------------------------------
check "engine starts on alpha" lab hactl alpha replica up r0
check "engine starts on beta" lab hactl beta replica up r0
check "the engines connect" wait_for 20 ris alpha 's["connection"]' Connected
out=$(lab hactl alpha replica create-md r0 --force 2>&1)
check "create-md refused, even forced, while the engine runs" bash -c "[[ \"\$1\" == *'is running'* ]]" _ "$out"
check "the engine claims its backing disk: mkfs on it is refused" bash -c "! lab exec beta mkfs.ext4 -q -F /dev/lab/disk0 2> /dev/null"
check "both Inconsistent after create-md" bash -c "[ \"\$(rq alpha 's[\"disk\"]')/\$(rq beta 's[\"disk\"]')\" = Inconsistent/Inconsistent ]"
out=$(lab hactl alpha replica primary r0 2>&1)
check "primary refused on Inconsistent data, naming --overwrite-data-of-peer" \
  bash -c "[[ \"\$1\" == *overwrite-data-of-peer* ]]" _ "$out"
check "primary --overwrite-data-of-peer" lab hactl alpha replica primary r0 --overwrite-data-of-peer
check "the device appears on alpha only" bash -c "lab exec alpha test -b /dev/duet/r0 && ! lab exec beta test -e /dev/duet/r0"
# The device is usable during the full sync: mkfs (whose discard goes over as a trim) and mount.
check "mkfs.ext4 on the device during the initial sync" lab exec alpha mkfs.ext4 -q /dev/duet/r0
check "mount on alpha" lab exec alpha bash -c "mkdir -p $MNT && mount /dev/duet/r0 $MNT"
check "the initial sync finishes: beta UpToDate" wait_for 120 ris beta 's["disk"]' UpToDate
size=$(rq alpha 's["size"]')
sent=$(rq alpha 's["counters"]["sent"]')
check "full sync sent at least the device size ($size bytes; sent $sent)" [ "${sent:-0}" -ge "${size:-1}" ]

# files with checksums, on whichever node is Primary
write_files() {  # NODE PREFIX COUNT
  lab exec "$1" bash -c "for i in \$(seq 1 $3); do head -c \$((RANDOM * 32 + 4096)) /dev/urandom > $MNT/$2-\$i; done; sync -f $MNT" &&
    lab exec "$1" bash -c "cd $MNT && sha256sum $2-*" >> "$tmp/sums"
}
verify_files() { lab exec "$1" bash -c "cd $MNT && sha256sum --quiet -c" < "$tmp/sums"; }
switch_to() {  # FROM TO: the seeds' manual switchover
  lab exec "$1" umount "$MNT" && lab hactl "$1" replica secondary r0 > /dev/null &&
    lab hactl "$2" replica primary r0 > /dev/null && lab exec "$2" bash -c "mkdir -p $MNT && mount /dev/duet/r0 $MNT"
}
: > "$tmp/sums"
check "write files on alpha" write_files alpha a 20

# ---- manual switchover ---------------------------------------------------------------------------
out=$(lab hactl alpha replica secondary r0 2>&1)
check "secondary refused while mounted" bash -c "[[ \"\$1\" == *'in use'* ]]" _ "$out"
out=$(lab hactl beta replica primary r0 2>&1)
check "primary on beta refused while alpha is Primary" bash -c "[[ \"\$1\" == *'is Primary'* ]]" _ "$out"
lab hactl alpha events > "$tmp/events.alpha" 2>&1 &
bg_pids+=($!)
sleep 0.5
for round in 1 2 3; do
  check "round $round: switch to beta" switch_to alpha beta
  check "round $round: every file intact on beta" verify_files beta
  check "round $round: write more on beta" write_files beta "b$round" 5
  check "round $round: switch back to alpha" switch_to beta alpha
  check "round $round: every file intact on alpha" verify_files alpha
done
check "hactl events shows the engine's role changes" bash -c \
  "grep -c '\"type\":\"replica_role\"' '$tmp/events.alpha' | grep -qx 6"
check "hactl status ends with the replica summary" bash -c "lab hactl alpha status | grep -Eq '^r0 +Primary/Secondary +UpToDate/UpToDate +Connected'"
check "hactl status --json lists the replica" is alpha 's["replicas"][0]["replica"]' r0
check "alpha Primary, beta Secondary, both UpToDate" bash -c \
  "[ \"\$(rq alpha 's[\"role\"]+s[\"disk\"]+s[\"peer_disk\"]')\" = PrimaryUpToDateUpToDate ]"

# ---- a cut replication link -------------------------------------------------------------------------
sent0=$(rq alpha 's["counters"]["sent"]')
lab cut alpha eth1
check "alpha notices the cut link" wait_for 20 ris alpha 's["connection"]' Connecting
check "write 50 MiB while disconnected" lab exec alpha bash -c "head -c 52428800 /dev/urandom > $MNT/big && sync -f $MNT"
lab exec alpha bash -c "cd $MNT && sha256sum big" >> "$tmp/sums"
oos=$(rq alpha 's["counters"]["out_of_sync"]')
check "about 50 MiB out of sync ($oos bytes)" [ "${oos:-0}" -ge 52428800 -a "${oos:-0}" -lt 83886080 ]
lab heal alpha eth1
check "reconnected after heal" wait_for 30 ris alpha 's["connection"]' Connected
check "resync finishes: nothing out of sync, beta UpToDate" \
  wait_for 60 bash -c "[ \"\$(rq alpha 's[\"counters\"][\"out_of_sync\"]')\" = 0 ] && [ \"\$(rq beta 's[\"disk\"]')\" = UpToDate ]"
sent1=$(rq alpha 's["counters"]["sent"]')
moved=$(( ${sent1:-0} - ${sent0:-0} ))
check "the resync moved about what was written ($moved bytes), not the disk" [ "$moved" -ge 52428800 -a "$moved" -lt 100663296 ]

# ---- hostile and mistaken peers (beta listens; alpha dials) -----------------------------------------
PROBE=$DUET_BUILD/tests/tools/replprobe
# No filesystem on the device meanwhile: whatever beta writes now would come from the probes.
lab exec alpha umount "$MNT"
written0=$(rq beta 's["counters"]["written"]')
out=$(lab exec alpha "$PROBE" 203.0.113.2 7788 garbage 8192)
check "garbage on the replication port: connection closed ($out)" bash -c "[[ \"\$1\" == closed* ]]" _ "$out"
out=$(lab exec alpha "$PROBE" 203.0.113.2 7788 half-hello)
check "half a Hello then silence: closed within the handshake timeout ($out)" bash -c "[[ \"\$1\" == closed* ]]" _ "$out"
out=$(lab exec alpha "$PROBE" 203.0.113.2 7788 handshake --cluster replica-lab --size "$size" --secret wrong-secret)
check "a wrong secret is refused ($out)" bash -c "[[ \"\$1\" == refused*auth* ]]" _ "$out"
out=$(lab exec alpha "$PROBE" 203.0.113.2 7788 handshake --cluster replica-lab --size 1048576 --secret "$SECRET")
check "a peer of another size is refused ($out)" bash -c "[[ \"\$1\" == refused*size* || \"\$1\" == refused*bytes* ]]" _ "$out"
out=$(lab exec alpha "$PROBE" 203.0.113.2 7788 handshake --cluster replica-lab --replica r9 --size "$size" --secret "$SECRET")
check "a peer of another replica is refused ($out)" bash -c "[[ \"\$1\" == refused*r9* ]]" _ "$out"
check "beta's engine is alive, still connected to alpha, wrote nothing for them" bash -c \
  "[ \"\$(rq beta 's[\"connection\"]')\" = Connected ] && [ \"\$(rq beta 's[\"counters\"][\"written\"]')\" = '$written0' ]"
check "beta logged the refusals with their reasons" bash -c \
  "lab exec beta cat /run/duet/replica/r0.log | grep -i 'refused' | grep -qi 'auth'"

lab exec alpha mount /dev/duet/r0 "$MNT"

# ---- duetd restart leaves the engine and the mounted filesystem alone --------------------------------
pid0=$(rq alpha 's["pid"]')
lab kill alpha duetd
lab exec alpha bash -c "echo during-restart > $MNT/restart && sync -f $MNT"
lab start alpha duetd > /dev/null
check "after a duetd restart, the same engine (pid $pid0) still serves the device" bash -c \
  "[ \"\$(rq alpha 's[\"pid\"]')\" = '$pid0' ] && lab exec alpha cat $MNT/restart | grep -q during-restart"

# ---- the agent: ocf-tester, under both names -------------------------------------------------------
lab exec alpha umount "$MNT"
lab hactl alpha replica secondary r0 > /dev/null
for name in replica drbddisk; do
  param=replica; [ $name = drbddisk ] && param=resource
  lab exec beta env HA_RSCTMP="$tmp/rsc" DUET_HACTL="$DUET_BUILD/daemon/hactl" /usr/sbin/ocf-tester -n r0 -o $param=r0 \
    "$ROOT/agents/$name" > "$tmp/ocft.$name.log" 2>&1
  check "ocf-tester passes on $name (a real promote and demote on beta)" grep -q "passed all tests" "$tmp/ocft.$name.log" ||
    cat "$tmp/ocft.$name.log"
done
check "after ocf-tester, beta is Secondary again" ris beta 's["role"]' Secondary

# ---- in a resource chain: failover with the filesystem on it ----------------------------------------
for n in alpha beta; do write_conf "/run/duet-lab/$DUET_LAB/nodes/$n/etc" "alpha 198.51.100.20/24/eth0 replica::r0 Filesystem::/dev/duet/r0::$MNT::ext4"; done
for n in alpha beta; do lab kill "$n" duetd; done
for n in alpha beta; do lab start "$n" duetd > /dev/null; done
check "the group starts on alpha: replica Primary, filesystem mounted" \
  wait_for 60 bash -c "lab exec alpha findmnt -n $MNT > /dev/null && [ \"\$(rq alpha 's[\"role\"]')\" = Primary ]"
check "every file intact in the group's filesystem" verify_files alpha
check "write a last file on alpha (fsynced)" write_files alpha last 3
lab kill alpha
check "after alpha's power loss, beta runs the group with the filesystem" \
  wait_for 60 bash -c "lab exec beta findmnt -n $MNT > /dev/null && [ \"\$(rq beta 's[\"role\"]')\" = Primary ]"
check "every file written and fsynced before the power loss is intact on beta" verify_files beta
lab restart alpha > /dev/null
check "alpha comes back as Secondary and resyncs from beta" \
  wait_for 60 bash -c "[ \"\$(rq alpha 's[\"role\"]+s[\"disk\"]+s[\"connection\"]')\" = SecondaryUpToDateConnected ]"

finish
