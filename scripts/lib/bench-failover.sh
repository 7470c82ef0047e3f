# scripts/bench failover: sourced by scripts/bench (which sets root, trials, systems, tmp, out_dir
# and sources tests/lab/lib.sh). Client-perceived outage of a TCP service on a floating IP, for Duet
# and for Heartbeat 3.0.6 (haresources mode) in the same lab, with the same timings, paths, key and
# resource line: `alpha IPaddr::198.51.100.20/24/eth0 echosvc` (echosvc: tests/lab/failover's LSB
# script and server).
#
# A poller in the lab's client starts a connection to the service every 20 ms (each one: TCP
# connect + read of one line, 500 ms timeout, several in flight at once) and logs every answer with
# its time and the answering node. Per trial: a random wait of up to one keepalive (the fault's phase
# relative to the heartbeats), the fault on the active node alpha, then the outage = time of the
# first answer from beta - time just before the fault's command ran. Then the cluster is restored
# (restart/heal/thaw, group moved back to alpha) and must be stable before the next trial.

fo_ip=198.51.100.20
fo_port=7000
fo_group="IPaddr::$fo_ip/24/eth0"
fo_key=lab-failover-key
fo_faults="kill cut freeze switchover"

cat > "$tmp/poller.py" <<'PY'
# Runs in the lab's client: a connection to IP:PORT every 20 ms; each answer is logged as
# "<unix ms> <node>" (the service answers "<node> <count>").
import selectors, socket, sys, time
ip, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
INTERVAL, TIMEOUT, MAX_OPEN = 0.020, 0.5, 40
sel = selectors.DefaultSelector()
log = open(out, "a", buffering=1)
next_t = time.monotonic()
def close(s):
    sel.unregister(s)
    s.close()
while True:
    now = time.monotonic()
    if now >= next_t:
        next_t += INTERVAL
        if next_t < now:
            next_t = now + INTERVAL
        if len(sel.get_map()) < MAX_OPEN:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect((ip, port))
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                s = None
            if s is not None:
                sel.register(s, selectors.EVENT_READ, [now + TIMEOUT, b""])
    for key, _ in sel.select(max(0.0, next_t - time.monotonic())):
        s, st = key.fileobj, key.data
        try:
            data = s.recv(256)
        except OSError:  # refused, reset, unreachable
            close(s)
            continue
        st[1] += data
        if b"\n" in st[1]:
            node = st[1].split(b"\n", 1)[0].split(b" ", 1)[0].decode(errors="replace")
            log.write(f"{int(time.time() * 1000)} {node}\n")
            close(s)
        elif not data:
            close(s)
    now = time.monotonic()
    for key in list(sel.get_map().values()):
        if key.data[0] <= now:
            close(key.fileobj)
PY

# ---- configurations ----------------------------------------------------------------------------
# fo_conf_duet DIR KA WT DT INITDEAD (ms): duet.toml with the one group, tests/lab/failover's service.
fo_conf_duet() {
  rm -rf "$1"; mkdir -p "$1/init.d"
  cp "$root/tests/lab/failover/echosvc.py" "$1/"
  cp "$root/tests/lab/failover/init.d/echosvc" "$1/init.d/"
  cat > "$1/duet.toml" <<TOML
cluster = "bench"
nodes = ["alpha", "beta"]
haresources = ["alpha $fo_group echosvc"]
[timings]
keepalive = "$2ms"
warntime = "$3ms"
deadtime = "$4ms"
initdead = "$5ms"
[auth]
key = "$fo_key"
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
}

# fo_conf_hb DIR KA WT DT INITDEAD (ms): tests/lab/failover-heartbeat with the timings set, plus
# what the heartbeat package installs in /etc/ha.d (harc, rc.d, resource.d, shellfuncs): the lab
# mounts the directory at the node's /etc/ha.d, hiding the host's.
fo_conf_heartbeat() {
  rm -rf "$1"; mkdir -p "$1"
  cp -R -L "$root/tests/lab/failover-heartbeat/." "$1/"
  local f
  for f in /etc/ha.d/*; do
    case ${f##*/} in ha.cf | authkeys | haresources) continue ;; esac
    cp -R -L "$f" "$1/"
  done
  sed -i -e "s/^keepalive .*/keepalive $2ms/" -e "s/^warntime .*/warntime $3ms/" \
    -e "s/^deadtime .*/deadtime $4ms/" -e "s/^initdead .*/initdead $5ms/" "$1/ha.cf"
  grep -q "^1 sha1 $fo_key\$" "$1/authkeys" || { echo "bench: $1/authkeys does not hold the key $fo_key" >&2; return 1; }
}

# ---- the client's poller -----------------------------------------------------------------------
fo_poller=""
fo_poller_start() {
  fo_log=$tmp/poll.$DUET_LAB.log
  : > "$fo_log"
  lab exec client /usr/bin/python3 "$tmp/poller.py" "$fo_ip" "$fo_port" "$fo_log" &
  fo_poller=$!
  bg_pids+=("$fo_poller")
}
fo_poller_stop() {
  [ -n "$fo_poller" ] || return 0
  kill "$fo_poller" 2>/dev/null; wait "$fo_poller" 2>/dev/null
  local p keep=()
  for p in "${bg_pids[@]}"; do [ "$p" = "$fo_poller" ] || keep+=("$p"); done
  bg_pids=("${keep[@]}")   # reaped: its PID may be reused, lab_cleanup must not kill it
  fo_poller=""
}
# first_answer NODE SINCE_MS: time of the first answer from NODE at or after SINCE_MS
first_answer() { awk -v n="$1" -v t="$2" '$2 == n && $1 >= t { print $1; exit }' "$fo_log"; }
answered_since() { [ -n "$(first_answer "$1" "$2")" ]; }
last_answer_from() { [ "$(tail -n 1 "$fo_log" | awk '{print $2}')" = "$1" ]; }

has_ip() { lab exec "$1" ip -4 -o addr show dev eth0 | grep -q " $fo_ip/"; }
svc_running() { lab exec "$1" /etc/init.d/echosvc status > /dev/null 2>&1; }
# The service runs on alpha only, alpha answers, and nothing of it is left on beta.
service_on_alpha_only() {
  local since=$(( $(now_ms) - 300 ))
  has_ip alpha && ! has_ip beta && svc_running alpha && ! svc_running beta &&
    wait_for 2 answered_since alpha "$since" && last_answer_from alpha
}

# ---- Duet ---------------------------------------------------------------------------------------
duet_group() { jq_node "$1" "next(g for g in s['groups'] if g['name'] == '$fo_group')$2"; }
duet_stable() {
  is alpha 'peer["state"]' up && is beta 'peer["state"]' up &&
    [ "$(duet_group alpha "['node']")" = alpha ] && [ "$(duet_group beta "['node']")" = alpha ] &&
    [ "$(duet_group alpha "['state']")" = running ] && [ "$(duet_group beta "['state']")" = running ] &&
    service_on_alpha_only
}
duet_up() { lab up "$1" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; return 1; }; }
duet_fault() {
  case $1 in
    kill) lab kill alpha ;;
    cut) lab cut alpha ;;
    freeze) lab freeze alpha ;;
    switchover) lab hactl alpha standby > "$tmp/standby.out" 2>&1 || cat "$tmp/standby.out" >&2 ;;
  esac
}
duet_restore() {
  case $1 in
    kill) lab restart alpha > /dev/null && wait_for 60 is alpha 'peer["state"]' up ;;
    cut) lab heal alpha ;;
    freeze) lab thaw alpha ;;
    switchover) : ;;
  esac
}
duet_move_back() { lab hactl alpha takeover > "$tmp/takeover.out" 2>&1; }
duet_log() { cat "$(lab log "$1")"; }

# ---- Heartbeat ----------------------------------------------------------------------------------
# Inside a node, Heartbeat needs its own /run (heartbeat.pid, /run/heartbeat), /var/lib/heartbeat
# and /var/log: the node's mount namespace shares the rest of the host's file system. Each node
# gets them under its lab directory, mounted in its own mount namespace only; /run/duet and
# /run/resource-agents (already the node's) stay. The echosvc script serves /etc/duet/echosvc.py:
# the node's /etc/ha.d is mounted there too. /run is emptied at every start, as at boot.
hb_node_setup='
set -euo pipefail
D=$1 R=$1/hb/run
rm -rf "$R"
mkdir -p "$R/duet" "$R/resource-agents" "$R/lock" "$R/crm" "$D/hb/log"
mkdir -p "$R/heartbeat/ccm" "$R/heartbeat/crm" "$R/heartbeat/dopd"
chown -R hacluster:haclient "$R/heartbeat" "$R/crm"
chmod 750 "$R/heartbeat" "$R/heartbeat/ccm" "$R/heartbeat/crm" "$R/heartbeat/dopd" "$R/crm"
if [ ! -e "$D/hb/lib.done" ]; then
  rm -rf "$D/hb/lib"; mkdir -p "$D/hb/lib"; cp -a /var/lib/heartbeat/. "$D/hb/lib/"; touch "$D/hb/lib.done"
fi
mount --bind "$D/hb/lib" /var/lib/heartbeat
mount --bind "$D/hb/log" /var/log
mount --bind "$D/run" "$R/duet"
mount --bind "$D/run/resource-agents" "$R/resource-agents"
mount --rbind "$R" /run
mount --bind /etc/ha.d /etc/duet
'
hb_start() {   # NODE: a fresh node's private directories, then heartbeat (which daemonises)
  local d=/run/duet-lab/$DUET_LAB/nodes/$1
  [ -d /etc/duet ] || mkdir -p /etc/duet   # mount point (as scripts/lab makes it for duet.toml labs)
  lab exec "$1" bash -c "$hb_node_setup" hb-node-setup "$d" || return 1
  # Its start-up chatter (config warnings) goes to the node's log directory, next to ha-log.
  lab exec "$1" /usr/libexec/heartbeat/heartbeat >> "$d/hb/log/heartbeat.out" 2>&1 ||
    { echo "bench: heartbeat did not start on $1:" >&2; tail -n 20 "$d/hb/log/heartbeat.out" >&2; return 1; }
}
hb_running() { lab exec "$1" cl_status hbstatus > /dev/null 2>&1; }
hb_sees() { [ "$(lab exec "$1" cl_status nodestatus "$2" 2>/dev/null)" = active ]; }
hb_settled() { [ "$(lab exec "$1" cl_status rscstatus 2>/dev/null)" != transition ]; }
heartbeat_stable() {
  hb_running alpha && hb_running beta && hb_sees alpha beta && hb_sees beta alpha &&
    hb_settled alpha && hb_settled beta && service_on_alpha_only
}
heartbeat_up() {
  LAB_DAEMON=none lab up "$1" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; return 1; }
  hb_start alpha && hb_start beta && wait_for 60 hb_running alpha && wait_for 60 hb_running beta
}
heartbeat_fault() {
  case $1 in
    kill) lab kill alpha ;;
    cut) lab cut alpha ;;
    freeze) lab freeze alpha ;;
    switchover) lab exec alpha /usr/share/heartbeat/hb_standby > "$tmp/standby.out" 2>&1 || cat "$tmp/standby.out" >&2 ;;
  esac
}
heartbeat_restore() {
  case $1 in
    kill) lab restart alpha > /dev/null && hb_start alpha && wait_for 60 hb_running alpha && wait_for 60 hb_sees alpha beta ;;
    cut) lab heal alpha ;;
    freeze) lab thaw alpha ;;
    switchover) : ;;
  esac
}
heartbeat_move_back() { lab exec alpha /usr/share/heartbeat/hb_takeover all > "$tmp/takeover.out" 2>&1; }
heartbeat_log() { cat "/run/duet-lab/$DUET_LAB/nodes/$1/hb/log/ha-log"; }

# ---- one system at one timing ---------------------------------------------------------------------
# fo_run SYSTEM KA WT DT INITDEAD: $trials trials of each fault; outages into $tmp/fo.SYSTEM.DT.FAULT
fo_run() {
  local sys=$1 ka=$2 dt=$4 fault i t0 t1 settle
  export DUET_LAB=$(new_lab_id fo)
  "fo_conf_$sys" "$tmp/conf.$sys" "$2" "$3" "$4" "$5" || return 1
  "${sys}_up" "$tmp/conf.$sys" || { echo "bench: $sys: lab up failed" >&2; return 1; }
  fo_poller_start
  settle=$(( ka * 2 > 1000 ? ka * 2 : 1000 ))
  fo_settle "$sys" || { echo "bench: $sys: the group never ran on alpha alone" >&2; fo_down "$sys"; return 1; }
  for fault in $fo_faults; do
    : > "$tmp/fo.$sys.$dt.$fault"
    for ((i = 1; i <= trials; i++)); do
      sleep "$(python3 -c "import random; print(random.uniform(0, $ka / 1000))")"
      t0=$(now_ms)
      "${sys}_fault" "$fault"
      if wait_for $(( dt * 3 / 1000 + 30 )) answered_since beta "$t0"; then
        t1=$(first_answer beta "$t0")
        echo $(( t1 - t0 )) >> "$tmp/fo.$sys.$dt.$fault"
        echo "bench: $sys ${ka}/${dt} ms $fault #$i: $(( t1 - t0 )) ms" >&2
      else
        echo "bench: $sys ${ka}/${dt} ms $fault #$i: beta never answered" >&2
        echo "- $fault #$i: beta never answered" >> "$tmp/fo.$sys.$dt.failed"
        fo_incomplete+=" $sys@$ka/$dt:$fault#$i"
      fi
      "${sys}_restore" "$fault" || echo "bench: $sys $fault #$i: restore step failed" >&2
      fo_settle "$sys" || { echo "bench: $sys: not stable after $fault #$i; giving up this timing" >&2; fo_down "$sys"; return 1; }
    done
  done
  fo_down "$sys"
}

# fo_settle SYSTEM: stable (group on alpha only, both nodes see each other, alpha answers), moving
# the group back to alpha if needed; then stable still after the settle time.
fo_settle() {
  local sys=$1 try
  for try in 1 2 3; do
    if wait_for 20 "${sys}_stable"; then
      sleep "$(( settle / 1000 )).$(printf %03d $(( settle % 1000 )))"
      "${sys}_stable" && return 0
    fi
    "${sys}_move_back"
  done
  wait_for 30 "${sys}_stable"
}

fo_down() {
  fo_poller_stop
  if [ -n "${KEEP_LOGS:-}" ]; then
    "${1}_log" alpha > "$KEEP_LOGS.$1.$DUET_LAB.alpha" 2>&1
    "${1}_log" beta > "$KEEP_LOGS.$1.$DUET_LAB.beta" 2>&1
    cp "$fo_log" "$KEEP_LOGS.$1.$DUET_LAB.poll"
  fi
  lab down > /dev/null 2>&1
  unset DUET_LAB
}

# fo_stats FILE: "median (min–max)" and the median alone, space-free first field for the ratio
fo_stats() {
  python3 - "$1" <<'PY'
import sys, statistics
try:
    v = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
except FileNotFoundError:
    v = []
if not v:
    print("- | -"); sys.exit()
print(f"{int(statistics.median(v))} | {len(v)}: {int(statistics.median(v))} ({min(v)}–{max(v)})")
PY
}

# ---- the run --------------------------------------------------------------------------------------
fo_timings=("2000 3000 5000 10000" "100 300 500 3000")
fo_incomplete=""
for timing in "${fo_timings[@]}"; do
  for sys in $systems; do
    set -- $timing
    echo "bench: failover, $sys, keepalive $1 ms, warntime $2 ms, deadtime $3 ms, initdead $4 ms, $trials trials per fault" >&2
    fo_run "$sys" "$1" "$2" "$3" "$4" || { echo "bench: $sys at $1/$3 ms: incomplete" >&2; fo_incomplete+=" $sys@$1/$3"; }
  done
done

hb_version=$(dpkg-query -W -f='${Version}' heartbeat 2>/dev/null)
{
echo "## Failover ($(date -u +%Y-%m-%d), $(nproc) cores, $trials trials per fault)"
echo
echo "Client-perceived outage, in ms: from just before the fault's command runs on the active node"
echo "alpha to the first answer from beta, seen by a client that connects to the service on the"
echo "floating IP every 20 ms. Heartbeat $hb_version (haresources, \`crm no\`) runs in the same lab with the same"
echo "timings, paths, key and resource line. Ratio: Duet's median / Heartbeat's."
echo
echo "| timings | fault | Duet: n: median (min–max) | Heartbeat: n: median (min–max) | Duet / Heartbeat |"
echo "|---|---|---|---|---|"
for timing in "${fo_timings[@]}"; do
  set -- $timing
  for fault in $fo_faults; do
    d=$(fo_stats "$tmp/fo.duet.$3.$fault") h=$(fo_stats "$tmp/fo.heartbeat.$3.$fault")
    dm=${d%% | *} hm=${h%% | *}
    ratio=-
    [ "$dm" != - ] && [ "$hm" != - ] && ratio=$(python3 -c "print(f'{$dm / $hm:.2f}')")
    label=$fault
    [ "$fault" = switchover ] && label="switchover (hactl standby / hb_standby)"
    echo "| keepalive $1 ms / deadtime $3 ms | $label | ${d#* | } | ${h#* | } | $ratio |"
  done
done
echo
echo "Raw outages (ms), per system, timing and fault:"
echo
echo '```'
for timing in "${fo_timings[@]}"; do
  set -- $timing
  for sys in $systems; do
    for fault in $fo_faults; do
      [ -f "$tmp/fo.$sys.$3.$fault" ] && echo "$sys $1/$3 $fault: $(tr '\n' ' ' < "$tmp/fo.$sys.$3.$fault")"
    done
    [ -f "$tmp/fo.$sys.$3.failed" ] && sed "s/^/$sys $1\/$3 /" "$tmp/fo.$sys.$3.failed"
  done
done
echo '```'
} > "$report"
[ -z "$fo_incomplete" ] || echo "Incomplete:$fo_incomplete (see the raw outages)" >> "$report"
cat "$report"
echo "bench: saved $report" >&2
[ -z "$fo_incomplete" ]
