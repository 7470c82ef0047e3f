#!/usr/bin/env bash
# The FTP tutorial's test table, automated, on etc/examples/ftp-home (floating address, replica r0
# on each node's /dev/lab/disk0, ext4 on /home, ProFTPD with every user jailed in their home,
# MailTo), with lftp in the client namespace and a real SMTP server (aiosmtpd) on the client.
# First-time setup as the example's README walks through it (create-md on both nodes, initial
# sync, mkfs, users); then: upload through the floating address; standby of the active node; the
# file downloads from the other node byte-identical; a second upload; takeover back; both files
# intact. The same with a power loss (scripts/lab kill) instead of standby, and a restart. A user is
# jailed in their home. One mail per role change with the tutorial's subject. The host's /home is
# neither hidden nor touched by the nodes' /home mounts.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id ft)
user=ftp$(printf '%04x' $((RANDOM)))
PASS=lab-ftp-$RANDOM$RANDOM
cleanup() {
  lab_cleanup
  userdel "$user" 2>/dev/null
}
trap cleanup EXIT

EX=$ROOT/etc/examples/ftp-home
IP=198.51.100.20
RELAY=198.51.100.100
N1=serv1 N2=serv2
box=$tmp/box
export LAB

# The example, with the test's fast timings, the client's SMTP server as relay, and no automatic
# failback (the test moves the group back itself, once the returning node has resynced).
conf=$tmp/conf
mkdir -p "$conf"
cp -RL "$EX/." "$conf/"
sed -i -e 's/^keepalive = .*/keepalive = "200ms"/' -e 's/^warntime = .*/warntime = "600ms"/' \
  -e 's/^deadtime = .*/deadtime = "1500ms"/' -e 's/^initdead = .*/initdead = "3s"/' \
  -e "s/^relay = .*/relay = \"$RELAY:2525\"/" -e 's/^auto_failback = .*/auto_failback = false/' "$conf/duet.toml"
grep -q '^deadtime = "1500ms"' "$conf/duet.toml" && grep -q "^relay = \"$RELAY:2525\"" "$conf/duet.toml" ||
  { no "test configuration from $EX/duet.toml"; finish; exit 1; }
# Setup stage: the same file without the group (the replica must exist before a group uses it).
python3 - "$conf/duet.toml" "$tmp/setup.toml" <<'EOF'
import sys
out, skip = [], False
for line in open(sys.argv[1]):
    if line.startswith("[[group]]"):
        skip = True
    elif skip and line.startswith("[") and not line.startswith("[[group"):
        skip = False
    elif skip and line.startswith("# DRBD"):
        skip = False
    if not skip:
        out.append(line)
open(sys.argv[2], "w").write("".join(out))
EOF
mkdir -p "$tmp/setup"
cp -RL "$conf/." "$tmp/setup/"
mv "$tmp/setup.toml" "$tmp/setup/duet.toml"

host_home_before=$(ls -A /home | sort | tr '\n' ' ')
lab up "$tmp/setup" --disk 256M > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
ok "lab up (serv1, serv2, a 256M disk each), cluster without its group for the first-time setup"

# --- first-time setup, as README.md -----------------------------------------------------------------
rq() { lab hactl "$1" replica status r0 --json 2> /dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)" 2> /dev/null; }
ris() { [ "$(rq "$1" "$2")" = "$3" ]; }
export -f rq ris lab
check "create-md on $N1" lab hactl $N1 replica create-md r0
check "create-md on $N2" lab hactl $N2 replica create-md r0
check "engine up on $N1" lab hactl $N1 replica up r0
check "engine up on $N2" lab hactl $N2 replica up r0
check "the engines connect" wait_for 30 ris $N1 's["connection"]' Connected
check "$N1 primary --overwrite-data-of-peer (initial sync)" lab hactl $N1 replica primary r0 --overwrite-data-of-peer
check "mkfs.ext4 /dev/drbd0 on $N1" lab exec $N1 mkfs.ext4 -q /dev/drbd0
# The user: a Unix account on both servers (the lab's nodes share the host's /etc/passwd, as two
# real servers would have the same users), their home on the replicated /home.
useradd -M -d "/home/$user" -s /bin/bash "$user" && echo "$user:$PASS" | chpasswd
check "user $user (home /home/$user, on the replicated disk)" id "$user"
check "home directory made on /dev/drbd0" lab exec $N1 bash -c \
  "mount /dev/drbd0 /home && mkdir -m 0750 /home/$user && chown $user: /home/$user && umount /home"
check "the initial sync finishes: $N2 UpToDate" wait_for 120 ris $N2 's["disk"]' UpToDate
check "$N1 secondary again (the group promotes it)" lab hactl $N1 replica secondary r0

# --- the cluster with its group ---------------------------------------------------------------------
check "SMTP server (aiosmtpd) on the client, $RELAY:2525" smtp_server client $RELAY 2525 "$box"
for n in $N1 $N2; do cp "$conf/duet.toml" "/run/duet-lab/$DUET_LAB/nodes/$n/etc/duet.toml"; done
for n in $N1 $N2; do lab kill "$n" duetd; done
for n in $N1 $N2; do lab start "$n" duetd > /dev/null; done
ftpg() { jq_node "$1" "(lambda g: $2)(next(g for g in s['groups'] if g['name'] == 'ftp'))"; }
placed() { [ "$(ftpg "$1" "str(g['node']) + ' ' + g['state']")" = "$2 running" ]; }
other() { if [ "$1" = $N1 ]; then echo $N2; else echo $N1; fi; }
check "group ftp runs on $N1" wait_for 60 placed $N1 $N1

# ftp COMMANDS: lftp as the user from the client, through the floating address, no cache.
ftp() {
  lab exec client lftp -u "$user,$PASS" -e "set cmd:fail-exit yes; set cache:enable no; set net:timeout 5; set net:max-retries 3; set net:reconnect-interval-base 1; set ftp:passive-mode yes; $1; bye" "$IP"
}
mkdir -p "$tmp/files" "$tmp/got"
chmod 755 "$tmp"
upload() {  # NAME SIZE: a random file, uploaded; its checksum kept
  head -c "$2" /dev/urandom > "$tmp/files/$1"
  ftp "put $tmp/files/$1 -o $1" > "$tmp/ftp.log" 2>&1 || { cat "$tmp/ftp.log"; return 1; }
}
download_same() {  # NAME: downloaded through the floating address, byte-identical
  rm -f "$tmp/got/$1"
  ftp "get $1 -o $tmp/got/$1" > "$tmp/ftp.log" 2>&1 || { cat "$tmp/ftp.log"; return 1; }
  [ "$(sha256sum < "$tmp/got/$1")" = "$(sha256sum < "$tmp/files/$1")" ]
}
on_disk() {  # NODE NAME: the file is in the user's home on NODE's /home, byte-identical
  [ "$(lab exec "$1" sha256sum < /dev/null "/home/$user/$2" 2> /dev/null | cut -d' ' -f1)" = "$(sha256sum < "$tmp/files/$2" | cut -d' ' -f1)" ]
}
serves_here() { lab exec "$1" ss -ltnH "src $IP:21" | grep -q LISTEN; }

mail_seen=0
# mails SUBJECT...: exactly these new mails (after a second more for any extra one), in this order.
mails() {
  local want=$# got
  wait_for 20 bash -c "[ \$(ls '$box/new' 2> /dev/null | wc -l) -ge $((mail_seen + want)) ]"
  sleep 1  # not for correctness: a late extra mail must be counted as one
  got=$(maildir_subjects "$box" | tail -n +$((mail_seen + 1)))
  mail_seen=$((mail_seen + $(printf '%s' "$got" | grep -c '')))
  [ "$got" = "$(printf 'Subject: group ftp %s\n' "$@")" ] || { echo "  new mails:"; printf '%s\n' "$got" | sed 's/^/    /'; return 1; }
}
check "one mail: acquired by $N1" mails "acquired by $N1"

check "$N1 has /home mounted from the replica" bash -c "lab exec $N1 findmnt -n -o SOURCE --mountpoint /home | grep -q ."
check "the host's /home is not a mount point" bash -c "! findmnt -n --mountpoint /home > /dev/null"
check "the host's /home still shows its own entries" [ "$(ls -A /home | sort | tr '\n' ' ')" = "$host_home_before" ]
check "ProFTPD listens on $IP:21 on $N1 only" bash -c "serves_here() { lab exec \"\$1\" ss -ltnH \"src $IP:21\" | grep -q LISTEN; }; serves_here $N1 && ! serves_here $N2"

export -f ftp
export user PASS IP tmp

# --- the jail ---------------------------------------------------------------------------------------
check "upload jail-probe" upload jail-probe 1000
ftp "cls -1 /" > "$tmp/root.ls" 2>&1
check "the user's / is their home: it lists their file" grep -qxE '/?jail-probe' "$tmp/root.ls" || sed 's/^/  ls: /' "$tmp/root.ls"
check "  and nothing of the system's /" bash -c "! grep -qE '^/?(etc|usr|home|bin)/?$' '$tmp/root.ls'"
check "cd /etc is refused" bash -c "! ftp 'cd /etc' > /dev/null 2>&1" 
check "cd .. out of the home stays in it" bash -c "ftp 'cd ..; cd ..; cls -1' 2>&1 | grep -qxE '/?jail-probe'"
check "get /etc/passwd fails" bash -c "! ftp 'get /etc/passwd -o $tmp/got/passwd' > /dev/null 2>&1 && [ ! -s '$tmp/got/passwd' ]"
# --- switchover: standby and takeover ---------------------------------------------------------------
check "upload a1 through $IP (on $N1)" upload a1 3000000
check "  a1 on $N1's /home, byte-identical" on_disk $N1 a1
t0=$(now_ms)
check "hactl $N1 standby" lab hactl $N1 standby
check "group ftp runs on $N2" wait_for 60 placed $N2 $N2
echo "  (standby to running on $N2: $(( $(now_ms) - t0 )) ms)"
check "a1 downloads from $N2, byte-identical" download_same a1
check "  and is on $N2's /home" on_disk $N2 a1
check "upload a2 (on $N2)" upload a2 2000000
check "mails: released by $N1, acquired by $N2" mails "released by $N1" "acquired by $N2"
check "hactl $N1 takeover" lab hactl $N1 takeover
check "group ftp runs on $N1 again" wait_for 60 placed $N1 $N1
check "a1 intact on $N1" download_same a1
check "a2 intact on $N1" download_same a2
check "  both on $N1's /home" bash -c "$(declare -f on_disk); on_disk $N1 a1 && on_disk $N1 a2"
check "mails: released by $N2, acquired by $N1" mails "released by $N2" "acquired by $N1"

# --- failover: power loss of the active node --------------------------------------------------------
check "upload b1 (on $N1)" upload b1 3000000
# ProFTPD answers 226 without fsync: an upload still in $N1's page cache when it loses power is
# lost, as it was with Heartbeat + DRBD (found by this test). Flushed first, so that this part
# tests the failover of written data; see etc/examples/ftp-home/README.md.
check "  flushed to the replicated disk on $N1 (sync -f /home)" lab exec $N1 sync -f /home
t0=$(now_ms)
lab kill $N1
check "after $N1's power loss, group ftp runs on $N2" wait_for 60 placed $N2 $N2
echo "  (power loss to running on $N2: $(( $(now_ms) - t0 )) ms)"
check "b1 downloads from $N2, byte-identical" download_same b1
check "a1, a2 still intact" bash -c "$(declare -f download_same); download_same a1 && download_same a2"
check "upload b2 (on $N2)" upload b2 2000000
check "one mail: acquired by $N2 (a dead node sends nothing)" mails "acquired by $N2"
lab restart $N1 > "$tmp/restart.log" 2>&1
check "$N1 restarted" [ $? -eq 0 ]
check "$N1 comes back Secondary, resyncs, UpToDate" \
  wait_for 90 bash -c "[ \"\$(rq $N1 's[\"role\"]+s[\"disk\"]+s[\"connection\"]')\" = SecondaryUpToDateConnected ]"
check "the group stayed on $N2 (auto_failback off in the test)" placed $N2 $N2
check "hactl $N1 takeover" lab hactl $N1 takeover
check "group ftp runs on $N1" wait_for 60 placed $N1 $N1
for f in a1 a2 b1 b2; do check "$f intact on $N1" download_same $f; done
check "mails: released by $N2, acquired by $N1" mails "released by $N2" "acquired by $N1"
check "no ProFTPD left on $N2" bash -c "! lab exec $N2 ss -ltnH 'sport = :21' | grep -q LISTEN"

finish
