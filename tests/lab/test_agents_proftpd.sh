#!/usr/bin/env bash
# The proftpd agent in the lab, with real ProFTPD and a real FTP client (lftp, in the client
# namespace): ocf-tester passes; start refuses while the floating address is not on the node
# (ProFTPD itself would bind it anyway); start serves FTP on that address only; a user uploads and
# downloads byte-identical files and is jailed in their home; two instances (one per node, each
# with its own address) run at once on this one machine; stop leaves no ProFTPD process; a stale
# PID file is not a running server; bad parameters get the right codes.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id ap)
user=duetftp$(printf '%04x' $((RANDOM)))
cleanup() {
  lab_cleanup  # the nodes' PID namespaces, and so every ProFTPD they ran, go with the lab
  userdel "$user" 2>/dev/null
}
trap cleanup EXIT

AGENT=$ROOT/agents/proftpd
IP_A=198.51.100.20 IP_B=198.51.100.21
PASS=lab-ftp-pass-$RANDOM
lab_up_minimal agents-proftpd

# A Unix account (both nodes see the host's /etc/passwd, as two servers would have the same users),
# its home in the test's directory.
home=$tmp/home/$user
mkdir -p "$home"
useradd -M -d "$home" -s /usr/sbin/nologin "$user" || { no "useradd $user"; finish; exit 1; }
echo "$user:$PASS" | chpasswd
chown "$user:" "$home"
chmod 755 "$tmp" "$tmp/home"  # mktemp made $tmp 0700: the user must reach their home
ok "user $user with home $home"

conf=$tmp/proftpd.conf
cat > "$conf" <<CONF
ServerName "duet lab ftp"
User nobody
Group nogroup
UseIPv6 off
UseReverseDNS off
RequireValidShell off
WtmpLog off
DefaultRoot ~
Umask 022
<Directory ~>
  AllowOverwrite on
</Directory>
CONF

# agent NODE ACTION [NAME=VALUE...]: the agent on NODE for its own address; stderr to $tmp/last.log.
agent() {
  local node=$1 action=$2 ip=$IP_A kv env=()
  shift 2
  [ "$node" = beta ] && ip=$IP_B
  env=(OCF_RESKEY_ip="$ip" OCF_RESKEY_config="$conf" OCF_RESKEY_log="$tmp/log.$node")
  for kv in "$@"; do env+=("OCF_RESKEY_$kv"); done
  lab exec "$node" env HA_RSCTMP="$tmp/rsc" OCF_RESOURCE_INSTANCE=ftp "${env[@]}" "$AGENT" "$action" 2> "$tmp/last.log"
  local rc=$?
  cat "$tmp/last.log" >> "$tmp/agent.log"
  return $rc
}
rc_is() { local want=$1; shift; "$@"; [ $? -eq "$want" ]; }
proftpds() {  # NODE: PIDs of live proftpd processes in NODE
  lab exec "$1" bash -c 'for p in /proc/[0-9]*; do s=$(cat $p/stat 2>/dev/null) || continue
    [[ ${s##*) } == Z* ]] && continue; [[ $s == *"(proftpd)"* ]] && echo ${p#/proc/}; done'
}
no_proftpd() { [ -z "$(proftpds "$1")" ]; }
ftp() {  # IP COMMANDS: lftp as $user from the client, no cache, short timeouts
  lab exec client lftp -u "$user,$PASS" -e "set cmd:fail-exit yes; set cache:enable no; set net:timeout 5; set net:max-retries 2; set ftp:passive-mode yes; $2; bye" "$1"
}

# --- meta-data, validate-all, bad parameters -----------------------------------------------------
params=$("$AGENT" meta-data | xmllint --xpath '//parameters/parameter/@name' - | grep -o '"[^"]*"' | tr -d '"' | head -n 2 | xargs)
check "meta-data: config, ip come first (haresources proftpd::CONFIG::IP)" [ "$params" = "config ip" ]
check "validate-all accepts the configuration" agent alpha validate-all
check "a bad ip: not configured (6)" rc_is 6 agent alpha validate-all ip=198.51.100
check "a config that is not absolute: 6" rc_is 6 agent alpha validate-all config=proftpd.conf
check "a missing binary: not installed (5)" rc_is 5 agent alpha validate-all binary=/nonexistent/proftpd
echo 'NoSuchDirective on' > "$tmp/bad.conf"
rejects_bad() { rc_is 6 agent alpha validate-all config="$tmp/bad.conf" && grep -q NoSuchDirective "$tmp/last.log"; }
check "a configuration ProFTPD rejects: 6, with its reason" rejects_bad
ip_from_group() {
  lab exec alpha env HA_RSCTMP="$tmp/rsc" OCF_RESOURCE_INSTANCE=ftp OCF_RESKEY_config="$conf" \
    DUET_GROUP_RESOURCES=$'IPaddr::'"$IP_A"$'/24/eth0\nproftpd' "$AGENT" validate-all
}
check "ip from the group's IPaddr when not given" ip_from_group

# --- start without the address, then with it ---------------------------------------------------
check "monitor before start: 7" rc_is 7 agent alpha monitor
start_without_ip() { rc_is 1 agent alpha start && grep -q "$IP_A is not on any interface" "$tmp/last.log"; }
check "start without $IP_A on alpha fails (1), naming the address" start_without_ip
check "and leaves no ProFTPD behind" no_proftpd alpha
lab exec alpha ip addr add "$IP_A/24" dev eth0
lab exec beta ip addr add "$IP_B/24" dev eth0
t0=$(now_ms)
check "start on alpha" agent alpha start
echo "  (start took $(( $(now_ms) - t0 )) ms)"
check "monitor on alpha: running" agent alpha monitor
start_again() { agent alpha start && grep -q 'already running' "$tmp/last.log" && [ "$(proftpds alpha | wc -l)" -eq 1 ]; }
check "start again: success, one server" start_again
bound_tight() { local ss; ss=$(lab exec alpha ss -Hltn 'sport = :21'); [[ $ss == *"$IP_A:21"* && $ss != *'0.0.0.0:21'* ]]; }
check "it listens on $IP_A only (SocketBindTight)" bound_tight

# --- a real client: upload, download, jail -------------------------------------------------------
head -c 3000000 /dev/urandom > "$tmp/one.bin"
lab exec client mkdir -p "$tmp/dl"
check "upload through $IP_A" ftp "$IP_A" "put $tmp/one.bin -o one.bin"
check "the file is in $user's home on alpha, byte-identical" cmp -s "$tmp/one.bin" "$home/one.bin"
download() { ftp "$IP_A" "get one.bin -o $tmp/dl/one.bin" && cmp -s "$tmp/one.bin" "$tmp/dl/one.bin"; }
check "download it back, byte-identical" download
listing=$(ftp "$IP_A" "cd /; cls -1" 2>&1)
check "jailed in the home directory: / lists the home's files, not the system's" \
  bash -c "[[ \"\$1\" == *one.bin* && \"\$1\" != *etc* && \"\$1\" != *usr* ]]" _ "$listing"

# --- a second instance on beta, at the same time -------------------------------------------------
check "start on beta (its own address) while alpha's runs" agent beta start
both_answer() { agent alpha monitor && agent beta monitor; }
check "both answer" both_answer
check "upload through $IP_B" ftp "$IP_B" "put $tmp/one.bin -o two.bin"
check "each instance has its own PID file and scoreboard" \
  bash -c "[ \$(ls '$tmp'/rsc/duet-proftpd-*/proftpd.pid 2>/dev/null | wc -l) -eq 2 ] && [ \$(ls '$tmp'/rsc/duet-proftpd-*/proftpd.scoreboard 2>/dev/null | wc -l) -eq 2 ]"

# --- stop --------------------------------------------------------------------------------------
# A session open during the stop ends with the server, so that nothing holds /home.
lab exec client lftp -u "$user,$PASS" -e "set cache:enable no; cd /; sleep 30; bye" "$IP_A" > /dev/null 2>&1 &
bg_pids+=($!)
with_session() { [ "$(proftpds alpha | wc -l)" -ge 2 ]; }
check "a client session is open on alpha" wait_for 10 with_session
t0=$(now_ms)
check "stop on alpha (with a session open)" agent alpha stop
echo "  (stop took $(( $(now_ms) - t0 )) ms)"
check "no ProFTPD left on alpha, sessions included" no_proftpd alpha
check "beta's instance is untouched" agent beta monitor
check "monitor on alpha: 7" rc_is 7 agent alpha monitor
check "stop again: success" agent alpha stop
# ProFTPD leaves its PID file after a stop; one pointing at an unrelated live process is not ours.
rundir=$(ls -d "$tmp"/rsc/duet-proftpd-alpha-* 2>/dev/null | head -n 1)
if [ -n "$rundir" ]; then
  sleeper=$(lab exec alpha bash -c 'sleep 60 </dev/null >/dev/null 2>&1 & echo $!')
  echo "$sleeper" > "$rundir/proftpd.pid"
  echo "$sleeper $(lab exec alpha cut -d' ' -f22 /proc/$sleeper/stat)" > "$rundir/master"
  check "a PID file naming another program: not running (7)" rc_is 7 agent alpha monitor
  spared() { agent alpha stop && lab exec alpha kill -0 "$sleeper"; }
  check "and stop succeeds without killing that program" spared
  lab exec alpha kill "$sleeper" 2>/dev/null
else
  no "alpha's run directory under $tmp/rsc"
fi
check "stop on beta" agent beta stop
check "no ProFTPD left on beta" no_proftpd beta

# --- ocf-tester --------------------------------------------------------------------------------
lab exec alpha env HA_RSCTMP="$tmp/rsc" /usr/sbin/ocf-tester -n ftp -o ip="$IP_A" -o config="$conf" \
  -o log="$tmp/log.ocft" "$AGENT" > "$tmp/ocft.log" 2>&1
check "ocf-tester passes on proftpd" grep -q "passed all tests" "$tmp/ocft.log" || cat "$tmp/ocft.log"
check "no ProFTPD left after ocf-tester" no_proftpd alpha

finish
