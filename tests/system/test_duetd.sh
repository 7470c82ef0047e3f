#!/usr/bin/env bash
# duetd as a process, without the lab: systemd's notify protocol (READY, STATUS, WATCHDOG,
# RELOADING, STOPPING) through a real notify socket, SIGHUP reload, SIGTERM exit, the control
# socket's life cycle, --check-config, and hactl's exit codes.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DUET_BUILD:-$root/build}
duetd=$build/daemon/duetd
hactl=$build/daemon/hactl
tmp=$(mktemp -d /tmp/duet-systest-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
no() { failed=$((failed + 1)); echo "not ok - $1"; [ $# -gt 1 ] && echo "  $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
# Polls CMD every 20 ms for up to $1 seconds.
wait_for() { local t=$1; shift; local end=$((SECONDS + t)); while ! "$@" 2>/dev/null; do [ $SECONDS -ge $end ] && return 1; sleep 0.02; done; }

port=$((20000 + RANDOM % 20000))
cat > "$tmp/duet.toml" <<TOML
nodes = ["sysalpha", "sysbeta"]
state_dir = "$tmp/state"
[timings]
keepalive = "100ms"
warntime = "300ms"
deadtime = "500ms"
initdead = "1s"
[auth]
key = "system-test-key"
[control]
socket = "$tmp/run/duetd.sock"
group = "root"
[[path]]
type = "ucast"
address = "127.0.0.2"
port = $port
TOML
chmod 600 "$tmp/duet.toml"

# --check-config: valid, then broken.
out=$("$duetd" --check-config -c "$tmp/duet.toml" 2>&1); rc=$?
check "check-config accepts a valid file" [ $rc -eq 0 ]
check "check-config prints the effective configuration" grep -q 'nodes = \[' <<<"$out"
sed 's/deadtime = "500ms"/deadtime = "soon"/' "$tmp/duet.toml" > "$tmp/bad.toml"
out=$("$duetd" --check-config -c "$tmp/bad.toml" 2>&1); rc=$?
check "check-config refuses a bad value with exit 1" [ $rc -eq 1 ]
check "the error names file, line and key" grep -q "bad.toml:6: error: \[timings\] deadtime" <<<"$out" || echo "$out"

# hactl without a daemon.
"$hactl" -s "$tmp/run/duetd.sock" status >/dev/null 2>"$tmp/hactl.err"; rc=$?
check "hactl exits 3 when duetd is not running" [ $rc -eq 3 ]
check "hactl says so" grep -q "is duetd running" "$tmp/hactl.err"

# The notify socket: a datagram socket systemd would own; here a Debian python3 reads it.
/usr/bin/python3 - "$tmp/notify" > "$tmp/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        msg = s.recv(4096).decode()
        for line in msg.split("\n"):
            if line:
                print(line, flush=True)
except socket.timeout:
    pass
PY
pids+=($!)
wait_for 5 test -S "$tmp/notify"

NOTIFY_SOCKET=$tmp/notify WATCHDOG_USEC=200000 "$duetd" -c "$tmp/duet.toml" --node sysalpha 2>"$tmp/duetd.log" &
dpid=$!
pids+=($dpid)
check "READY=1 is sent" wait_for 5 grep -qx "READY=1" "$tmp/notify.log"
check "STATUS= tells the peer's state" wait_for 5 grep -q "^STATUS=peer sysbeta" "$tmp/notify.log"
check "the watchdog is fed at half its interval" wait_for 3 bash -c "[ \$(grep -cx WATCHDOG=1 '$tmp/notify.log') -ge 4 ]"
check "the control socket exists" test -S "$tmp/run/duetd.sock"
"$hactl" -s "$tmp/run/duetd.sock" status --json > "$tmp/status.json"; rc=$?
check "hactl status --json works" [ $rc -eq 0 ]
check "status names this node" grep -q '"node": "sysalpha"' "$tmp/status.json"
check "the peer is declared dead after initdead" wait_for 5 bash -c "'$hactl' -s '$tmp/run/duetd.sock' status --json | grep -q '\"state\": \"dead\"'"
check "the log says the peer never appeared" grep -q "did not appear within initdead" "$tmp/duetd.log"
check "its own looped-back datagrams are not counted as hostile" bash -c "'$hactl' -s '$tmp/run/duetd.sock' status --json | grep -q '\"total\": 0'"

# A second daemon on the same socket refuses to start.
"$duetd" -c "$tmp/duet.toml" --node sysalpha --state-dir "$tmp/state2" 2>"$tmp/second.log"; rc=$?
check "a second duetd on the same socket exits 1" [ $rc -eq 1 ]
check "and says another is running" grep -q "another duetd is already running" "$tmp/second.log"

# SIGHUP with a broken file keeps the running configuration.
cp "$tmp/duet.toml" "$tmp/good.toml"
sed -i 's/deadtime = "500ms"/deadtime = "oops"/' "$tmp/duet.toml"
kill -HUP $dpid
check "a broken reload is refused" wait_for 5 grep -q "reload refused" "$tmp/duetd.log"
cp "$tmp/good.toml" "$tmp/duet.toml"
sed -i 's/deadtime = "500ms"/deadtime = "700ms"/' "$tmp/duet.toml"
kill -HUP $dpid
check "SIGHUP sends RELOADING=1" wait_for 5 grep -qx "RELOADING=1" "$tmp/notify.log"
check "SIGHUP applies new timings" wait_for 5 bash -c "'$hactl' -s '$tmp/run/duetd.sock' status --json | grep -q '\"deadtime_ms\": 700'"

kill -TERM $dpid
wait $dpid; rc=$?
check "SIGTERM: clean exit 0" [ $rc -eq 0 ]
check "SIGTERM sends STOPPING=1" grep -qx "STOPPING=1" "$tmp/notify.log"
check "the control socket is removed" bash -c "! test -e '$tmp/run/duetd.sock'"
check "the generation was persisted" test -s "$tmp/state/generation"

# An unknown node name is refused with the fix.
"$duetd" -c "$tmp/duet.toml" --node gamma 2>"$tmp/gamma.log"; rc=$?
check "a node name outside the cluster is refused" bash -c "[ $rc -eq 1 ] && grep -q \"'gamma' (--node) is not one of the configured nodes\" '$tmp/gamma.log'"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
