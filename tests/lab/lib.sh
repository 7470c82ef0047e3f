# Helpers for lab tests and benchmarks: sourced, not run.
# Provides: lab, jq_node (read hactl status --json with a Python expression), wait_for, check,
# now_ms, and a TAP-like pass/fail count with a trap that removes the lab.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export DUET_BUILD=${DUET_BUILD:-$ROOT/build}
LAB="$ROOT/scripts/lab"
passed=0
failed=0
bg_pids=()
tmp=$(mktemp -d /tmp/duet-labtest-XXXXXX)

lab() { "$LAB" "$@"; }

# A unique lab id: prefix + 4 random hex digits (6 characters at most).
new_lab_id() { printf '%s%04x' "$1" $((RANDOM * 2 + RANDOM % 2)); }

lab_cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "${DUET_LAB:-}" ] && "$LAB" down >/dev/null 2>&1
  rm -rf "$tmp"
}

ok() { passed=$((passed + 1)); echo "ok - $1"; }
no() { failed=$((failed + 1)); echo "not ok - $1"; [ $# -gt 1 ] && printf '  %s\n' "$2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; }

now_ms() { date +%s%3N; }

# wait_for SECONDS CMD...: polls CMD every 20 ms.
wait_for() {
  local t=$1; shift
  local end=$(( $(now_ms) + t * 1000 ))
  until "$@" 2>/dev/null; do
    [ "$(now_ms)" -ge $end ] && return 1
    sleep 0.02
  done
}

# status NODE: hactl status --json of NODE, cached in $tmp/status.NODE.json.
status() { lab hactl "$1" status --json > "$tmp/status.$1.json" 2>/dev/null && cat "$tmp/status.$1.json"; }

# jq_node NODE EXPR: evaluates a Python expression over the status JSON `s`, with helpers
# peer (the other node's entry), me (this node's), path(name_prefix) (peer's path entry).
jq_node() {
  status "$1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
me = next(n for n in s["nodes"] if n["self"])
peer = next(n for n in s["nodes"] if not n["self"])
def path(prefix, who=None):
    who = who or peer
    return next(p for p in who["paths"] if p["name"].startswith(prefix))
v = eval(sys.argv[1])
print(json.dumps(v) if not isinstance(v, str) else v)
' "$2"
}

# is NODE EXPR VALUE: true when jq_node prints VALUE.
is() { [ "$(jq_node "$1" "$2" 2>/dev/null)" = "$3" ]; }

# lab_up_minimal NAME: brings up a lab whose cluster runs only membership (one mcast path on
# eth0, no resources): for tests of agents and tools that need two nodes and a client.
lab_up_minimal() {
  local conf=$tmp/conf
  mkdir -p "$conf"
  cat > "$conf/duet.toml" <<TOML
cluster = "$1"
nodes = ["alpha", "beta"]
[auth]
key = "lab-$1-key"
[[path]]
type = "mcast"
interface = "eth0"
group = "239.0.0.10"
TOML
  lab up "$conf" > "$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; no "lab up"; finish; exit 1; }
  ok "lab up"
}

# A real SMTP server for the alert mails: Debian's aiosmtpd (/usr/bin/python3) delivering to a
# Maildir. smtp_server NODE ADDRESS PORT MAILDIR runs it in NODE (the client, or a cluster node for
# its localhost relay) in the background and returns once it listens; smtp_pid is the process to
# kill to stop it (scripts/lab exec passes the SIGTERM on), and lab_cleanup stops it too. Several
# servers may deliver to one Maildir.
smtp_listening() { "$LAB" exec "$1" ss -ltnH "sport = :$2" | grep -q LISTEN; }
smtp_server() {
  # "$LAB" itself, not the lab function: $! must be the process that execs nsenter, whose death
  # sends SIGTERM to the server (not a subshell that would leave it running).
  "$LAB" exec "$1" /usr/bin/python3 -m aiosmtpd -n -l "$2:$3" -c aiosmtpd.handlers.Mailbox "$4" >> "$tmp/smtp.log" 2>&1 &
  smtp_pid=$!
  bg_pids+=("$smtp_pid")
  wait_for 15 smtp_listening "$1" "$3"
}
# maildir_subjects MAILDIR: the Subject of every mail delivered there, oldest first.
maildir_subjects() {
  /usr/bin/python3 -c 'import email, email.policy, os, sys
d = os.path.join(sys.argv[1], "new")
fs = sorted((os.path.join(d, f) for f in (os.listdir(d) if os.path.isdir(d) else [])), key=lambda f: os.stat(f).st_mtime_ns)
for f in fs:
    with open(f, "rb") as fh:
        print(email.message_from_binary_file(fh, policy=email.policy.default)["Subject"])' "$1"
}
