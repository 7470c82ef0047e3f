#!/usr/bin/env bash
# Group operations in the lab, beyond tests/lab/test_failover.sh (tests/lab/groups-ops: one group
# "web" = floating IP, the echosvc TCP service, MailTo through a real SMTP server (aiosmtpd) on the
# lab's client). Covers: exactly one mail per role change (start-up, planned switchover both ways,
# takeover after a power loss; a dead node sends nothing); an SMTP relay that refuses connections
# does not hold up a start or a switchover (logged); maintenance mode (no monitoring, no restart,
# standby moves nothing, leaving it re-probes and repairs); SIGTERM releases the group cleanly and
# the daemon exits, a restart moves nothing back; control-socket errors and --no-wait; the types
# of the status JSON's groups (node null when the group runs nowhere); [mail] from as the sender.
# Then cases found while writing it: standby answered before the peer applied it, the alert mail
# of a blocked group, and a relay that accepts connections and never answers.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
DUET_LAB=$(new_lab_id go)
export DUET_LAB
trap lab_cleanup EXIT  # also stops the SMTP servers (bg_pids)
[ -n "${KEEP_LOGS:-}" ] && trap 'cp "$(lab log alpha)" "$KEEP_LOGS.alpha"; cp "$(lab log beta)" "$KEEP_LOGS.beta"; lab_cleanup' EXIT
t_start=$(now_ms)
PY=/usr/bin/python3
IP=198.51.100.20
RELAY=198.51.100.100
RESOURCES=("IPaddr::$IP/24/eth0" "echosvc" "MailTo::ops@example.org::Duet lab")
MAIL_TIMEOUT=10  # MailTo's default SMTP timeout (s): groups-ops/duet.toml sets none
box=$tmp/box

# --- helpers -----------------------------------------------------------------------------------
# ask IP: one connection to the service from the client: "<node> <count>"
ask() { lab exec client bash -c "exec 3<>/dev/tcp/$1/7000 && timeout 2 cat <&3" 2>/dev/null; }
answers_from() { [[ "$(ask $IP)" == "$1 "* ]]; }
answers() { [ -n "$(ask $IP)" ]; }
# web NODE EXPR: a Python expression over group web (g) in NODE's status JSON.
web() { jq_node "$1" "(lambda g: $2)(next(g for g in s['groups'] if g['name'] == 'web'))"; }
runs_on() { [ "$(web "$1" "g['node']")" = "$2" ]; }
placed() { [ "$(web "$1" "str(g['node']) + ' ' + g['state']")" = "${2/#null/None} $3" ]; }  # NODE WHERE|null STATE
here_is() { [ "$(web "$1" "g['here']")" = "$2" ]; }
ip_on() { lab exec "$1" ip -4 -o addr show dev eth0 | grep -q " $IP/"; }
svc_running() { lab exec "$1" /etc/init.d/echosvc status > /dev/null 2>&1; }
other() { if [ "$1" = alpha ]; then echo beta; else echo alpha; fi; }
where() { web alpha "g['node']"; }
log_mark() { wc -l < "$(lab log "$1")"; }
# logged NODE MARK TEXT: NODE's duetd log has TEXT (fixed string) after line MARK.
logged() { tail -n +"$(($2 + 1))" "$(lab log "$1")" | grep -qF -- "$3"; }
rc_is() { local want=$1; shift; "$@"; [ $? -eq "$want" ]; }
# timed OUT CMD...: runs CMD, stdout+stderr to OUT; sets rc and ms.
timed() {
  local out=$1 t0
  shift
  t0=$(now_ms)
  "$@" > "$out" 2>&1
  rc=$?
  ms=$(( $(now_ms) - t0 ))
}

# The SMTP server: aiosmtpd with a Maildir on the client's address (its own host PID in smtp_pid,
# stopped by that PID here or in the trap).
listening() { lab exec client ss -ltnH "sport = :2525" | grep -q LISTEN; }
smtp_pid=""
smtp_start() { smtp_server client "$RELAY" 2525 "$box"; }  # lib.sh
smtp_stop() {
  [ -n "$smtp_pid" ] || return 0
  kill "$smtp_pid" 2>/dev/null
  wait "$smtp_pid" 2>/dev/null
  smtp_pid=""
  wait_for 5 bash -c "! DUET_LAB=$DUET_LAB $LAB exec client ss -ltnH 'sport = :2525' | grep -q LISTEN"
}

# Mail accounting. mails N: waits up to 15 s for N new mails, then 1 s more for any extra one;
# writes one line per new mail, oldest first, to $tmp/mails: "SUBJECT<TAB>FROM<TAB>resources-ok|-"
# (resources-ok: the body lists the group's resources in start order).
cat > "$tmp/mails.py" <<'PYEOF'
import email, email.policy, os, sys
box, seen_file = sys.argv[1], sys.argv[2]
want = sys.argv[3:]
seen = set(open(seen_file).read().split()) if os.path.exists(seen_file) else set()
d = os.path.join(box, "new")
files = [f for f in (os.listdir(d) if os.path.isdir(d) else []) if f not in seen]
files.sort(key=lambda f: os.stat(os.path.join(d, f)).st_mtime_ns)
with open(seen_file, "a") as s:
    for f in files:
        s.write(f + "\n")
        with open(os.path.join(d, f), "rb") as fh:
            m = email.message_from_binary_file(fh, policy=email.policy.default)
        lines = m.get_content().splitlines()
        res = "-"
        if "Resources, in start order:" in lines:
            i = lines.index("Resources, in start order:")
            if [l.strip() for l in lines[i + 1:i + 1 + len(want)]] == want:
                res = "resources-ok"
        print(f"{m['Subject']}\t{m['From']}\t{res}")
PYEOF
touch "$tmp/seen"
mail_count_ge() { [ "$(ls "$box/new" 2>/dev/null | wc -l)" -ge "$1" ]; }
mails() {
  wait_for 15 mail_count_ge $(( $(wc -l < "$tmp/seen") + $1 ))
  sleep 1
  "$PY" "$tmp/mails.py" "$box" "$tmp/seen" "${RESOURCES[@]}" > "$tmp/mails"
}
subjects() { cut -f1 "$tmp/mails"; }
# got SUBJECT...: the new mails are exactly these, in this order ("Duet lab: group web " prefixed).
got() {
  local want=""
  [ $# -gt 0 ] && want=$(printf 'Duet lab: group web %s\n' "$@")
  [ "$(subjects)" = "$want" ] || { echo "  new mails:"; sed 's/^/    /' "$tmp/mails"; return 1; }
}
all_list_resources() { [ -s "$tmp/mails" ] && ! cut -f3 "$tmp/mails" | grep -qv '^resources-ok$'; }

# --- start-up with the relay down --------------------------------------------------------------
lab up "$ROOT/tests/lab/groups-ops" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
ok "lab up: one group web (IP, echosvc, MailTo) with home alpha"
check "start-up with the SMTP relay not listening yet: web runs on alpha" wait_for 15 placed alpha alpha running
check "  the client reaches the service on alpha" wait_for 5 answers_from alpha
check "  alpha's log says the mail was not sent, and why" \
  logged alpha 0 'mail "Duet lab: group web acquired by alpha" not sent (198.51.100.100:2525: Connection refused)'

# --- 1. a mail on every role change --------------------------------------------------------------
check "SMTP server (aiosmtpd, Maildir) listens on $RELAY:2525 in the client namespace" smtp_start
# A cold start of the whole cluster: both nodes lose power (beta first, so that nobody takes
# over), then boot again.
lab kill beta && lab kill alpha
lab restart alpha > /dev/null && lab restart beta > /dev/null
check "cold start: web runs on alpha again" wait_for 15 placed alpha alpha running
mails 1
check "start-up: exactly one mail, 'acquired by alpha'" got "acquired by alpha"
check "  the body lists the group's resources in start order" all_list_resources
check "  the subject starts with the configured subject 'Duet lab'" [ "$(subjects | cut -c1-10)" = "Duet lab: " ]
check "  the sender is [mail] from = duet-lab@example.org (From: $(cut -f2 "$tmp/mails"))" [ "$(cut -f2 "$tmp/mails")" = "duet-lab@example.org" ]

timed "$tmp/standby.out" lab hactl alpha standby
check "planned switchover (hactl standby on alpha) succeeds (${ms} ms)" [ $rc -eq 0 ] || cat "$tmp/standby.out"
check "  web runs on beta" placed alpha beta running
check "  the client reaches it on beta" wait_for 5 answers_from beta
mails 2
check "  exactly two mails: 'released by alpha', then 'acquired by beta'" got "released by alpha" "acquired by beta"
check "  both list the group's resources" all_list_resources

timed "$tmp/takeover.out" lab hactl alpha takeover
check "switchover back (hactl takeover on alpha) succeeds" [ $rc -eq 0 ] || cat "$tmp/takeover.out"
check "  web runs on alpha" placed beta alpha running
mails 2
check "  exactly two mails: 'released by beta', then 'acquired by alpha'" got "released by beta" "acquired by alpha"
check "  both list the group's resources" all_list_resources

lab kill alpha
check "power loss of alpha: beta takes web over" wait_for 10 placed beta beta running
check "  the client reaches it on beta" wait_for 5 answers_from beta
mails 1
check "  exactly one mail, 'acquired by beta' (the dead node sends nothing)" got "acquired by beta"
check "  it lists the group's resources" all_list_resources
lab restart alpha > /dev/null
check "alpha back: it sees beta" wait_for 10 is alpha 'peer["state"]' up
check "  and probed web: stopped here" wait_for 10 here_is alpha stopped
mails 0
check "  no mail: nothing moved (auto_failback off)" got
check "  web still runs on beta" placed alpha beta running

# --- 2. a relay that is down does not block failover ---------------------------------------------
check "SMTP server stopped (by its PID)" smtp_stop
ma=$(log_mark alpha) mb=$(log_mark beta)
timed "$tmp/standby2.out" lab hactl beta standby
check "relay down: hactl standby on beta succeeds (${ms} ms, bound 3x the MailTo timeout: $((3 * MAIL_TIMEOUT)) s)" \
  eval '[ $rc -eq 0 ] && [ $ms -lt $((3 * MAIL_TIMEOUT * 1000)) ]' || cat "$tmp/standby2.out"
check "  the service answers on alpha" wait_for 5 answers_from alpha
check "  beta's log: the release mail was not sent, and why" \
  logged beta "$mb" 'mail "Duet lab: group web released by beta" not sent (198.51.100.100:2525: Connection refused)'
check "  alpha's log: the takeover mail was not sent, and why" \
  logged alpha "$ma" 'mail "Duet lab: group web acquired by alpha" not sent (198.51.100.100:2525: Connection refused)'
check "SMTP server started again" smtp_start

# --- 3. maintenance mode -----------------------------------------------------------------------
lab hactl alpha maintenance on > "$tmp/maint.out" 2>&1
check "hactl maintenance on (alpha, the active node)" [ $? -eq 0 ] || cat "$tmp/maint.out"
check "  hactl status shows it" bash -c "DUET_LAB=$DUET_LAB $LAB hactl alpha status | grep -q 'Maintenance mode'"
check "  and the status JSON" is alpha 's["maintenance"]' true
ma=$(log_mark alpha)
svc_pid=$(lab exec alpha cat /run/duet/echosvc.pid)
lab exec alpha kill "$svc_pid"
check "service process killed (pid $svc_pid in alpha)" wait_for 5 bash -c "! DUET_LAB=$DUET_LAB $LAB exec alpha /etc/init.d/echosvc status > /dev/null"
sleep 3.5  # monitor_interval is 1 s: 3 intervals and a half
check "  no restart for 3.5 monitor intervals: the service is still down" bash -c "! DUET_LAB=$DUET_LAB $LAB exec alpha /etc/init.d/echosvc status > /dev/null"
check "  nothing answers on the IP" bash -c "! DUET_LAB=$DUET_LAB $LAB exec client bash -c 'exec 3<>/dev/tcp/$IP/7000' 2>/dev/null"
check "  no monitor ran, no failure counted" bash -c "[ \"\$(DUET_LAB=$DUET_LAB $LAB hactl alpha status --json | python3 -c 'import json,sys; g=json.load(sys.stdin)[\"groups\"][0]; print(g[\"failures\"], g[\"state\"])')\" = '0 running' ]"
check "  nothing about it in the log" bash -c "! tail -n +$((ma + 1)) '$(lab log alpha)' | grep -E 'monitor of|restarting|stop echosvc|start echosvc'"
timed "$tmp/maint-standby.out" timeout 60 "$LAB" hactl alpha standby
echo "  (hactl standby in maintenance: exit $rc after ${ms} ms: $(tr '\n' ' ' < "$tmp/maint-standby.out"))"
check "hactl standby in maintenance answers at once (${ms} ms) with a failure" eval '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $ms -lt 5000 ]'
sleep 1
check "  nothing moved: the IP is still on alpha" ip_on alpha
check "  beta started nothing" bash -c "! DUET_LAB=$DUET_LAB $LAB exec beta ip -4 -o addr show dev eth0 | grep -q ' $IP/'"
check "  beta shows it stopped there" here_is beta stopped
mails 0
check "  no mail" got
lab hactl alpha maintenance off > "$tmp/maint.out" 2>&1
check "hactl maintenance off" [ $? -eq 0 ] || cat "$tmp/maint.out"
check "  the group is probed: found partly running" wait_for 5 logged alpha "$ma" "group web: found partly running here; stopping what runs"
check "  handled: the service answers again" wait_for 15 answers
now_on=$(where)
echo "  (after maintenance: web runs on $now_on)"
check "  web runs on one node, in state running" wait_for 10 placed beta "$now_on" running
mails 2
check "  two mails: 'released by alpha', then 'acquired by $now_on'" got "released by alpha" "acquired by $now_on"

# --- 4. SIGTERM releases the group -------------------------------------------------------------
if [ "$(where)" != alpha ]; then
  lab hactl alpha takeover > "$tmp/takeover.out" 2>&1
  check "takeover back to alpha" [ $? -eq 0 ] || cat "$tmp/takeover.out"
  mails 2
  check "  two mails" got "released by beta" "acquired by alpha"
fi
read -r dpid dstart < "/run/duet-lab/$DUET_LAB/nodes/alpha/duetd.pid"
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
proc_gone() { [ ! -r "/proc/$1/stat" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ] || [ "$(proc_start "$1")" != "$2" ]; }
check "alpha's duetd (host pid $dpid) is the recorded one" [ "$(proc_start "$dpid")" = "$dstart" ]
ma=$(log_mark alpha)
t0=$(now_ms)
kill -TERM "$dpid"
check "SIGTERM: duetd on alpha exits" wait_for 30 proc_gone "$dpid" "$dstart"
echo "  (SIGTERM -> exit: $(( $(now_ms) - t0 )) ms)"
check "  its log says it releases the groups" logged alpha "$ma" "received SIGTERM: releasing this node's groups"
check "  it stopped the group here" logged alpha "$ma" "group web: stopping here (duetd is stopping)"
check "  and exited normally: the log ends with 'duetd stopped'" bash -c "tail -n 1 '$(lab log alpha)' | grep -q 'duetd stopped\$'"
check "  the IP is removed on alpha" bash -c "! DUET_LAB=$DUET_LAB $LAB exec alpha ip -4 -o addr show dev eth0 | grep -q ' $IP/'"
check "  the service is stopped on alpha" bash -c "! DUET_LAB=$DUET_LAB $LAB exec alpha /etc/init.d/echosvc status > /dev/null"
check "  beta took web over" wait_for 10 placed beta beta running
check "  the client reaches it on beta" wait_for 5 answers_from beta
mails 2
check "  two mails: 'released by alpha', then 'acquired by beta'" got "released by alpha" "acquired by beta"
lab start alpha duetd > "$tmp/start.out" 2>&1
check "scripts/lab start alpha duetd" [ $? -eq 0 ] || cat "$tmp/start.out"
check "  alpha sees beta" wait_for 10 is alpha 'peer["state"]' up
check "  alpha probed web: stopped here" wait_for 10 here_is alpha stopped
mails 0
check "  nothing moves back (auto_failback off), no mail" got
check "  web still runs on beta" placed alpha beta running

# --- 5. the control socket ---------------------------------------------------------------------
lab hactl alpha cleanup NOSUCH > "$tmp/cleanup.out" 2>&1
rc=$?
check "hactl cleanup NOSUCH fails (exit $rc)" [ $rc -eq 1 ]
check "  with a message listing the groups" grep -qF "no group 'NOSUCH' (groups: web)" "$tmp/cleanup.out" || cat "$tmp/cleanup.out"
lab hactl alpha standby sideways > "$tmp/sideways.out" 2>&1
rc=$?
check "hactl standby sideways is a usage error (exit $rc)" [ $rc -eq 2 ]
check "  that names the bad argument" grep -q "sideways" "$tmp/sideways.out" || cat "$tmp/sideways.out"
check "  and changed nothing" placed alpha beta running
timed "$tmp/nowait.out" lab hactl alpha takeover --no-wait
early=$(web alpha "str(g['node']) + ' ' + g['here']" 2>/dev/null)
check "hactl takeover --no-wait returns at once (${ms} ms; when it returned alpha showed: $early)" \
  eval '[ $rc -eq 0 ] && [ $ms -lt 1000 ] && [ "$early" != "alpha running" ]' || cat "$tmp/nowait.out"
check "  says the takeover was requested" grep -q "takeover requested" "$tmp/nowait.out"
check "  web then runs on alpha" wait_for 10 placed beta alpha running
mails 2
check "  two mails: 'released by beta', then 'acquired by alpha'" got "released by beta" "acquired by alpha"

# --- 6. the status JSON's groups ---------------------------------------------------------------
cat > "$tmp/schema.py" <<'PYEOF'
import json, sys
s = json.load(sys.stdin)
want_null = sys.argv[1] == "null"
errors = []
gs = s.get("groups")
if type(gs) is not list or not gs:
    errors.append("groups is not a non-empty list")
    gs = []
for g in gs:
    if type(g) is not dict:
        errors.append(f"group {g!r} is not an object"); continue
    for k in ("name", "home", "state"):
        if type(g.get(k)) is not str:
            errors.append(f"{k} is {g.get(k)!r}, not a string")
    if "node" not in g or not (g["node"] is None or type(g["node"]) is str):
        errors.append(f"node is {g.get('node', '<missing>')!r}: not a string or null")
    if want_null and g.get("node") is not None:
        errors.append(f"node is {g.get('node')!r}, expected null")
    if not want_null and g.get("node") not in ("alpha", "beta"):
        errors.append(f"node is {g.get('node')!r}, expected a node's name")
    rs = g.get("resources")
    if type(rs) is not list or not rs:
        errors.append("resources is not a non-empty list"); continue
    for r in rs:
        if type(r) is not dict or type(r.get("name")) is not str or type(r.get("state")) is not str:
            errors.append(f"resource {r!r} is not {{name: string, state: string}}")
if not any(type(g) is dict and g.get("name") == "web" and g.get("home") == "alpha" for g in gs):
    errors.append("no group web with home alpha")
print("; ".join(errors))
sys.exit(1 if errors else 0)
PYEOF
schema_ok() {  # NODE null|string
  lab hactl "$1" status --json > "$tmp/schema.$1.json" 2>&1 && "$PY" "$tmp/schema.py" "$2" < "$tmp/schema.$1.json" > "$tmp/schema.err"
  local rc=$?
  [ $rc -eq 0 ] || echo "  $(cat "$tmp/schema.err")"
  return $rc
}
check "status JSON on alpha: groups, each {name: str, home: str, node: str, state: str, resources: [{name, state}]}" schema_ok alpha string
check "  the same on beta" schema_ok beta string
# Run nowhere: its start fails on both nodes (test markers), then the service dies on alpha.
lab exec alpha touch /var/lib/duet/echosvc.fail-start
lab exec beta touch /var/lib/duet/echosvc.fail-start
lab exec alpha kill "$(lab exec alpha cat /run/duet/echosvc.pid)"
check "with its start failing on both nodes, web runs nowhere" wait_for 20 placed alpha null failed
check "  status JSON on alpha: node is null, the types as above" schema_ok alpha null
check "  the same on beta" schema_ok beta null
lab exec alpha rm -f /var/lib/duet/echosvc.fail-start
lab exec beta rm -f /var/lib/duet/echosvc.fail-start
lab hactl alpha cleanup web > /dev/null 2>&1
check "hactl cleanup web: it starts on its home again" wait_for 15 placed beta alpha running
mails 2
check "  two mails: 'released by alpha' (the restart in place), 'acquired by alpha' (none for failed starts)" \
  got "released by alpha" "acquired by alpha"

# --- cases found while writing this test ------------------------------------------------------
# hactl standby on the node that runs the group, while the peer is in standby too (an earlier
# `hactl standby` there, when it held nothing): the command clears the peer's standby (the newest
# command wins) and the group moves; the answer must say so, not report a failure from before the
# peer applied the request.
lab hactl beta standby > "$tmp/sb-beta.out" 2>&1
rc=$?
check "hactl standby on beta, which holds nothing: succeeds, web stays on alpha" eval '[ $rc -eq 0 ] && placed beta alpha running' || cat "$tmp/sb-beta.out"
sleep 0.5
timed "$tmp/sb-alpha.out" lab hactl alpha standby
check "then hactl standby on alpha reports success (exit $rc after ${ms} ms: $(tr '\n' ' ' < "$tmp/sb-alpha.out"))" [ $rc -eq 0 ]
check "  web runs on beta" wait_for 10 placed alpha beta running
mails 2
check "  two mails: 'released by alpha', then 'acquired by beta'" got "released by alpha" "acquired by beta"
# A stop failure blocks the group: the alert mail says so (not "acquired").
lab exec beta touch /var/lib/duet/echosvc.fail-stop
lab hactl alpha takeover > /dev/null 2>&1
check "stop failure on beta: web blocked" wait_for 15 bash -c "[ \"\$(DUET_LAB=$DUET_LAB $LAB hactl beta status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"groups\"][0][\"state\"])')\" = blocked ]"
mails 2
check "  two mails: 'released by beta', then an alert that web is blocked ($(subjects | tail -n 1))" \
  eval '[ "$(subjects | head -n 1)" = "Duet lab: group web released by beta" ] && subjects | tail -n 1 | grep -qi "blocked" && ! subjects | tail -n 1 | grep -q acquired'
lab exec beta rm -f /var/lib/duet/echosvc.fail-stop
lab hactl beta cleanup web > /dev/null 2>&1
check "cleanup: web runs on alpha" wait_for 15 placed beta alpha running
check "  the client reaches it on alpha" wait_for 5 answers_from alpha
mails 0  # whatever the cleanup sent: not counted

# A relay that accepts connections and never answers: MailTo gives up after its timeout and the
# switchover completes (a mail never blocks a failover). A takeover on the node that does not run
# the group (not a standby where it runs: see the standby check above).
check "SMTP server stopped" smtp_stop
"$LAB" exec client "$PY" -c "
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$RELAY', 2525))
s.listen(16)
time.sleep(3600)" > "$tmp/silent.log" 2>&1 &
bg_pids+=($!)
check "a silent listener on $RELAY:2525 (accepts, never answers)" wait_for 15 listening
from=$(where) to=$(other "$(where)")
mf=$(log_mark "$from")
timed "$tmp/takeover3.out" lab hactl "$to" takeover
check "silent relay: hactl takeover on $to succeeds within 3x the MailTo timeout (exit $rc after ${ms} ms: $(tr '\n' ' ' < "$tmp/takeover3.out"))" \
  eval '[ $rc -eq 0 ] && [ $ms -lt $((3 * MAIL_TIMEOUT * 1000)) ]'
check "  the service answers on $to" wait_for 5 answers_from "$to"
check "  $from's log says the release mail was not sent" logged "$from" "$mf" "released by $from\" not sent"

echo "  (test took $(( ($(now_ms) - t_start) / 1000 )) s)"
finish
