# scripts/bench replication: sourced by scripts/bench (which sets root, quick, tmp, out_dir, report
# and sources tests/lab/lib.sh). The replicated disk's speed against the local limit and against a
# stock userspace block server, all in one lab run, on the same node (alpha), each route with ext4
# on top and the same fio jobs:
#   (a) ext4 on /dev/lab/disk2: a loop device with direct I/O over a plain (sparse) file, the lab's
#       disks being exactly that; the local limit, and the baseline of every ratio;
#   (b) Duet's device r2 (disk4) with its replication link dropped (`hactl replica disconnect`);
#   (c) Duet's device r0 (disk0), protocol C, peer beta connected, in sync;
#   (d) Duet's device r1 (disk1), protocol A, peer beta connected, in sync;
#   (e) nbdkit's file plugin serving /dev/lab/disk3 on a unix socket, nbdfuse presenting it as a
#       file, a loop device with direct I/O over that file (no replication). nbdkit opens its disk
#       without O_DIRECT (the plugin's default, kept: it is the stock server), so the page cache
#       serves it; the report says so.
# Duet's backing disks are lab disks too: the same kind of device under every route. All five are
# mounted at once and measured interleaved (each job on the five back to back, in a rotating order,
# for several rounds; the report gives each value's median over the rounds), so that the other work
# on this shared machine weighs on every setup alike.
# Plus resync speed (disconnect, write N MiB, reconnect; the engine's "sync finished" event) against
# the TCP throughput of the replication addresses (iperf3, one stream, as the engine uses one).
# Exit status: 0 once everything was measured, whatever the done-when checks say; 1 when a setup
# step failed (the error says which).

rb_rounds=3 rb_runtime=6 rb_ramp=1 rb_resync_mib=400 rb_iperf_s=10
if [ "$quick" = 1 ]; then rb_rounds=1 rb_runtime=3 rb_resync_mib=100 rb_iperf_s=3; fi
rb_disk=1G          # every backing device
rb_fio_size=512M    # fio's file on each ext4
rb_node=alpha       # where every setup runs
rb_dir=$tmp/rb      # results (fio JSON, engine snapshots), mount points
mkdir -p "$rb_dir"

# What this file started, undone on exit even after a failure (before scripts/bench's lab_cleanup,
# which kills the nodes and removes the lab's disks).
rb_mounts=()        # mount points in alpha's mount namespace
rb_bg=()            # host PIDs of `lab exec` commands running in the background (nbdkit, nbdfuse, ...)
rb_e_loop=""        # the loop device over nbdfuse's file
rb_nbd_mnt=""       # nbdfuse's mount point
rb_primaries=()     # replicas promoted on alpha
rb_cleanup() {
  local m r p
  if [ -n "${DUET_LAB:-}" ]; then
    for m in "${rb_mounts[@]}"; do
      lab exec "$rb_node" umount "$m" 2>/dev/null || lab exec "$rb_node" umount -l "$m" 2>/dev/null
    done
    [ -z "$rb_e_loop" ] || losetup -d "$rb_e_loop" 2>/dev/null
    [ -z "$rb_nbd_mnt" ] || lab exec "$rb_node" fusermount3 -u "$rb_nbd_mnt" 2>/dev/null
    for r in "${rb_primaries[@]}"; do lab hactl "$rb_node" replica secondary "$r" > /dev/null 2>&1; done
  fi
  rb_mounts=() rb_e_loop="" rb_nbd_mnt="" rb_primaries=()
  for p in "${rb_bg[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${rb_bg[@]}"; do wait "$p" 2>/dev/null; done
  rb_bg=()
}
trap 'rb_cleanup; bench_cleanup' EXIT

rb_fail() { echo "bench: replication: $*" >&2; exit 1; }
rb_fail_sync() {  # REPLICA WHAT: both engines' status with the error, to see where it stuck
  echo "bench: replication: $1 on alpha: $(rs alpha "$1")" >&2
  echo "bench: replication: $1 on beta: $(rs beta "$1")" >&2
  rb_fail "$1: $2"
}
rb_log() { echo "bench: replication: $*" >&2; }
on() { lab exec "$rb_node" "$@"; }
# rs NODE REPLICA: the engine's status (JSON); rq NODE REPLICA EXPR: a Python expression over it.
rs() { lab hactl "$1" replica status "$2" --json 2> /dev/null; }
rq() { rs "$1" "$2" | python3 -c "import json,sys; s=json.load(sys.stdin); print($3)" 2> /dev/null; }
ris() { [ "$(rq "$1" "$2" "$3")" = "$4" ]; }
rb_in_sync() {  # REPLICA: connected, nothing out of sync on either side, no resync running
  ris alpha "$1" 's["connection"]+"/"+str(s["counters"]["out_of_sync"])+"/"+str(s["sync"])+"/"+str(s["peer_disk"])' \
    "Connected/0/None/UpToDate" &&
    ris beta "$1" 's["disk"]+"/"+str(s["counters"]["out_of_sync"])' "UpToDate/0"
}

# ---- the lab ------------------------------------------------------------------------------------
rb_conf() {
  mkdir -p "$1"
  cat > "$1/duet.toml" <<TOML
cluster = "bench"
nodes = ["alpha", "beta"]
[auth]
key = "bench-replication-key"
[[path]]
type = "mcast"
interface = "eth0"
group = "239.0.0.10"
[replica.r0]
device = "/dev/duet/r0"
protocol = "C"
secret = "bench-replication-secret"
[replica.r0.node.alpha]
address = "203.0.113.1:7788"
disk = "/dev/lab/disk0"
[replica.r0.node.beta]
address = "203.0.113.2:7788"
disk = "/dev/lab/disk0"
[replica.r1]
device = "/dev/duet/r1"
protocol = "A"
secret = "bench-replication-secret"
[replica.r1.node.alpha]
address = "203.0.113.1:7789"
disk = "/dev/lab/disk1"
[replica.r1.node.beta]
address = "203.0.113.2:7789"
disk = "/dev/lab/disk1"
[replica.r2]
device = "/dev/duet/r2"
protocol = "C"
secret = "bench-replication-secret"
[replica.r2.node.alpha]
address = "203.0.113.1:7790"
disk = "/dev/lab/disk4"
[replica.r2.node.beta]
address = "203.0.113.2:7790"
disk = "/dev/lab/disk4"
TOML
  chmod 600 "$1/duet.toml"
}

# rb_bg_start LOG CMD...: CMD in the background, its PID recorded (so cleanup can stop it).
rb_bg_start() { local log=$1; shift; "$@" > "$log" 2>&1 & rb_bg+=("$!"); }
rb_bg_stop() {  # PID: stop one background command and forget it (its PID may be reused later)
  local p keep=()
  kill "$1" 2>/dev/null; wait "$1" 2>/dev/null
  for p in "${rb_bg[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  rb_bg=("${keep[@]}")
}

rb_mkfs_mount() {  # DEV DIR: a fresh ext4 (inode tables and journal written now, so no lazy
  # initialisation runs in the background during the jobs), mounted in alpha
  mkdir -p "$2"
  on mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$1" > "$rb_dir/mkfs.log" 2>&1 ||
    { cat "$rb_dir/mkfs.log" >&2; rb_fail "mkfs.ext4 on $1 failed"; }
  on mount "$1" "$2" || rb_fail "cannot mount $1 on $2 in $rb_node"
  rb_mounts+=("$2")
}
rb_umount() {
  local m keep=()
  on umount "$1" || rb_fail "cannot unmount $1 in $rb_node"
  for m in "${rb_mounts[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
  rb_mounts=("${keep[@]}")
}

# ---- engine snapshots: status plus CPU time, before and after each job ---------------------------
rb_snap() {  # NODE REPLICA OUT
  local st pid ticks
  st=$(rs "$1" "$2") || return 1
  pid=$(printf '%s' "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])') || return 1
  # The status gives the PID in the node's PID namespace: read its /proc from inside the node.
  ticks=$(lab exec "$1" awk '{print $14 + $15}' "/proc/$pid/stat") || return 1
  printf '%s' "$st" | python3 -c '
import json, sys
s = json.load(sys.stdin)
s["cpu_ticks"], s["time_ms"] = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps(s))' "$ticks" "$(now_ms)" > "$3"
}

# ---- fio ----------------------------------------------------------------------------------------
rb_jobs="seqwrite fsync randread seqread"
rb_job_args() {
  case $1 in
    seqwrite) echo "--rw=write --bs=1M --iodepth=16" ;;
    fsync) echo "--rw=randwrite --bs=4k --iodepth=1 --fsync=1" ;;
    randread) echo "--rw=randread --bs=4k --iodepth=16" ;;
    seqread) echo "--rw=read --bs=1M --iodepth=16" ;;
  esac
}
# Each setup: its mount point and, for Duet's, its replica.
declare -A rb_mnt=([a]=$rb_dir/mnt.a [b]=$rb_dir/mnt.r2 [c]=$rb_dir/mnt.r0 [d]=$rb_dir/mnt.r1 [e]=$rb_dir/mnt.e)
declare -A rb_rep=([a]="" [b]=r2 [c]=r0 [d]=r1 [e]="")
rb_fio_common() { echo "--filename=$1/fio.dat --size=$rb_fio_size --direct=1 --ioengine=libaio"; }
# rb_fio SETUP JOB ROUND: one job on the setup's fio.dat; for Duet's setups, engine snapshots on
# both nodes around it.
rb_fio() {
  local setup=$1 job=$2 round=$3 rep=${rb_rep[$1]} n out=$rb_dir/$1.$2.$3
  rb_log "round $round: ($setup) fio $job, ${rb_runtime} s"
  if [ -n "$rep" ]; then for n in alpha beta; do rb_snap "$n" "$rep" "$out.$n.0.json"; done; fi
  # shellcheck disable=SC2046
  on fio --output-format=json --output="$out.json" --name="$job" $(rb_fio_common "${rb_mnt[$setup]}") \
    --time_based --runtime="$rb_runtime" --ramp_time="$rb_ramp" --lat_percentiles=1 \
    $(rb_job_args "$job") > "$out.err" 2>&1 ||
    { cat "$out.err" >&2; rb_fail "($setup) fio $job failed"; }
  if [ -n "$rep" ]; then for n in alpha beta; do rb_snap "$n" "$rep" "$out.$n.1.json"; done; fi
}

# ---- the lab and the five routes -------------------------------------------------------------------
rb_load0=$(cut -d' ' -f1-3 /proc/loadavg)
export DUET_LAB=$(new_lab_id rb)
rb_conf "$rb_dir/conf"
rb_log "lab $DUET_LAB: two nodes with 5 disks of $rb_disk each"
lab up "$rb_dir/conf" --disk "$rb_disk" --disks 5 > "$rb_dir/up.log" 2>&1 || { cat "$rb_dir/up.log" >&2; rb_fail "lab up failed"; }
for n in alpha beta; do
  for r in r0 r1 r2; do
    { lab hactl "$n" replica create-md "$r" && lab hactl "$n" replica up "$r"; } >> "$rb_dir/md.log" 2>&1 ||
      { cat "$rb_dir/md.log" >&2; rb_fail "create-md/up of $r on $n failed"; }
  done
done
for r in r0 r1 r2; do
  wait_for 30 ris alpha "$r" 's["connection"]' Connected || rb_fail "$r: the engines did not connect"
done
# r0's events (its "sync finished" events give the engine's own resync time and bytes).
rb_bg_start "$rb_dir/r0.events" lab hactl alpha replica events r0
rb_events=${rb_bg[-1]}
# The initial full syncs, one after the other, before anything is measured.
for r in r0 r1 r2; do
  rb_log "$r: initial full sync"
  lab hactl alpha replica primary "$r" --overwrite-data-of-peer > /dev/null || rb_fail "primary --overwrite-data-of-peer $r failed"
  rb_primaries+=("$r")
  wait_for 300 rb_in_sync "$r" || rb_fail_sync "$r" "the initial sync did not finish within 300 s"
done

rb_log "(a) ext4 on a loop device over a plain file (/dev/lab/disk2)"
rb_mkfs_mount /dev/lab/disk2 "${rb_mnt[a]}"

rb_log "(e) nbdkit file plugin -> nbdfuse -> loop device (/dev/lab/disk3)"
rb_sock=$rb_dir/nbdkit.sock rb_nbd=$rb_dir/nbd
mkdir -p "$rb_nbd"
rb_bg_start "$rb_dir/nbdkit.log" on nbdkit -f -U "$rb_sock" file /dev/lab/disk3
rb_nbdkit=${rb_bg[-1]}
wait_for 10 test -S "$rb_sock" || { cat "$rb_dir/nbdkit.log" >&2; rb_fail "nbdkit did not create its socket $rb_sock"; }
rb_nbd_mnt=$rb_nbd
rb_bg_start "$rb_dir/nbdfuse.log" on nbdfuse -P "$rb_dir/nbdfuse.pid" "$rb_nbd" --unix "$rb_sock"
rb_nbdfuse=${rb_bg[-1]}
wait_for 10 test -s "$rb_dir/nbdfuse.pid" || { cat "$rb_dir/nbdfuse.log" >&2; rb_fail "nbdfuse did not come up"; }
rb_e_loop=$(on losetup --direct-io=on --find --show "$rb_nbd/nbd") || rb_fail "losetup --direct-io=on over $rb_nbd/nbd failed"
rb_mkfs_mount "$rb_e_loop" "${rb_mnt[e]}"

rb_log "(b), (c), (d): Duet's r2 (its link dropped below), r0 (protocol C), r1 (protocol A)"
for s in b c d; do
  rb_mkfs_mount "/dev/duet/${rb_rep[$s]}" "${rb_mnt[$s]}"
  wait_for 120 rb_in_sync "${rb_rep[$s]}" || rb_fail_sync "${rb_rep[$s]}" "not in sync after mkfs"
done
# (b): r2 without its peer; every write marks its bitmap.
lab hactl alpha replica disconnect r2 > /dev/null || rb_fail "hactl replica disconnect r2 failed"
wait_for 20 ris alpha r2 's["connection"]' StandAlone || rb_fail "r2 did not drop its link"

# fio's files, laid out before any clock starts.
for s in a b c d e; do
  # shellcheck disable=SC2046
  on fio --name=layout $(rb_fio_common "${rb_mnt[$s]}") --create_only=1 > "$rb_dir/layout.$s.log" 2>&1 ||
    { cat "$rb_dir/layout.$s.log" >&2; rb_fail "($s) fio could not lay out its file"; }
done
for r in r0 r1; do wait_for 120 rb_in_sync "$r" || rb_fail_sync "$r" "not in sync after fio's layout"; done

# The measurements, interleaved: each job on the five setups back to back, in an order that
# rotates every round, so that a burst of other work on this shared machine (or the page-cache
# writeback nbdkit leaves behind) hits every setup alike instead of one whole setup.
rb_setups=(a b c d e)
for ((round = 1; round <= rb_rounds; round++)); do
  for job in $rb_jobs; do
    for ((k = 0; k < 5; k++)); do
      rb_fio "${rb_setups[(k + round - 1) % 5]}" "$job" "$round"
    done
  done
done
for r in r0 r1; do
  ris alpha "$r" 's["connection"]' Connected || rb_log "$r lost its link during the measurements (see the report)"
done

# The link's TCP throughput: iperf3, one stream (as the engine's link), between the two nodes'
# replication addresses, a few seconds before the resync is measured.
rb_log "TCP throughput 203.0.113.1 -> 203.0.113.2, ${rb_iperf_s} s"
rb_bg_start "$rb_dir/iperf3-server.log" lab exec beta iperf3 -s -1 -B 203.0.113.2 -p 5201
rb_iperf=${rb_bg[-1]}
rb_listening() { lab exec beta ss -Htln 'sport = :5201' | grep -q LISTEN; }
wait_for 10 rb_listening || { cat "$rb_dir/iperf3-server.log" >&2; rb_fail "iperf3 server did not listen on beta"; }
lab exec alpha iperf3 -c 203.0.113.2 -B 203.0.113.1 -p 5201 -t "$rb_iperf_s" -J > "$rb_dir/iperf3.json" 2> "$rb_dir/iperf3.err" ||
  { cat "$rb_dir/iperf3.err" "$rb_dir/iperf3.json" >&2; rb_fail "iperf3 client failed"; }
rb_bg_stop "$rb_iperf"

# Resync: drop r0's link, overwrite N MiB of fio's file in place (no allocation: the dirty set is
# those blocks), reconnect, and time the resync: the engine's own "sync finished" event (bytes,
# seconds) and, from outside, the time from `connect` until the status says in sync.
rb_log "resync: ${rb_resync_mib} MiB written on r0 while disconnected"
wait_for 120 rb_in_sync r0 || rb_fail_sync r0 "not in sync before the resync measurement"
lab hactl alpha replica disconnect r0 > /dev/null || rb_fail "hactl replica disconnect r0 failed"
wait_for 20 ris alpha r0 's["connection"]' StandAlone || rb_fail "r0 did not drop its link"
on dd if=/dev/urandom of="${rb_mnt[c]}/fio.dat" bs=1M count="$rb_resync_mib" conv=notrunc,fsync oflag=direct status=none ||
  rb_fail "writing ${rb_resync_mib} MiB on r0 failed"
rb_oos=$(rq alpha r0 's["counters"]["out_of_sync"]')
rb_finished0=$(grep -c '"finished"' "$rb_dir/r0.events")
rb_t0=$(now_ms)
lab hactl alpha replica connect r0 > /dev/null || rb_fail "hactl replica connect r0 failed"
wait_for 600 rb_in_sync r0 || rb_fail_sync r0 "did not resync within 600 s"
rb_t1=$(now_ms)
wait_for 10 bash -c "[ \$(grep -c '\"finished\"' '$rb_dir/r0.events') -gt $rb_finished0 ]" ||
  rb_log "no 'sync finished' event seen in r0's event stream"
rb_bg_stop "$rb_events"
printf '{"written_mib": %s, "out_of_sync": %s, "wall_ms": %s}\n' "$rb_resync_mib" "${rb_oos:-null}" "$((rb_t1 - rb_t0))" > "$rb_dir/resync.json"

# Teardown in order (ext4, the loop device, nbdfuse, nbdkit, demotions), then the lab.
rb_load1=$(cut -d' ' -f1-3 /proc/loadavg)
for s in a b c d e; do rb_umount "${rb_mnt[$s]}"; done
losetup -d "$rb_e_loop" || rb_fail "cannot detach $rb_e_loop"
rb_e_loop=""
on fusermount3 -u "$rb_nbd" || rb_fail "cannot unmount nbdfuse's $rb_nbd"
rb_nbd_mnt=""
wait_for 10 bash -c "! kill -0 $rb_nbdfuse 2>/dev/null" || rb_log "(e) nbdfuse still running after its unmount"
rb_cleanup
lab down > /dev/null 2>&1
unset DUET_LAB

# ---- the report -----------------------------------------------------------------------------------
cat > "$rb_dir/report.py" <<'PY'
import json, os, statistics, sys
d, rounds, runtime, ramp, fio_size, disk, load0, load1, quick, ncpu = sys.argv[1:11]
rounds = int(rounds)
hz = os.sysconf("SC_CLK_TCK")
def load(name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)
def pct(lat, p):
    v = lat.get("percentile", {}).get(p)
    return v / 1000 if v is not None else None
# (label, fio job, value from fio's job JSON, higher is better)
metrics = [
    ("Sequential write, 1 MiB QD16 (MB/s)", "seqwrite", lambda j: j["write"]["bw_bytes"] / 1e6, True),
    ("4 KiB random write + fsync, QD1 (IOPS)", "fsync", lambda j: j["write"]["iops"], True),
    ("  write latency p50 (µs)", "fsync", lambda j: pct(j["write"]["lat_ns"], "50.000000"), False),
    ("  write latency p99 (µs)", "fsync", lambda j: pct(j["write"]["lat_ns"], "99.000000"), False),
    ("  fsync latency p50 (µs)", "fsync", lambda j: pct(j["sync"]["lat_ns"], "50.000000"), False),
    ("  fsync latency p99 (µs)", "fsync", lambda j: pct(j["sync"]["lat_ns"], "99.000000"), False),
    ("4 KiB random read, QD16 (IOPS)", "randread", lambda j: j["read"]["iops"], True),
    ("Sequential read, 1 MiB QD16 (MB/s)", "seqread", lambda j: j["read"]["bw_bytes"] / 1e6, True),
]
setups = [("a", "(a) local: loop over a file"), ("b", "(b) Duet, no peer"), ("c", "(c) Duet, protocol C"),
          ("d", "(d) Duet, protocol A"), ("e", "(e) nbdkit + nbdfuse")]
per_round, val = {}, {}
for label, jn, f, _ in metrics:
    for s, _ in setups:
        v = [f(load(f"{s}.{jn}.{r}.json")["jobs"][0]) for r in range(1, rounds + 1)]
        per_round[(label, s)] = v
        v = [x for x in v if x is not None]
        val[(label, s)] = statistics.median(v) if v else None
def num(v):
    return "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")
out = []
p = out.append
p(f"Machine: {ncpu} cores, shared with other work during the run (load average {load0} at the start, {load1} at the end).")
p(f"fio {fio_size} file on ext4 (mkfs.ext4 with inode tables and journal initialised up front), direct=1, libaio;")
p(f"every route on node alpha, every backing device a lab disk ({disk}: a loop device with direct I/O over a")
p("sparse file on the host's ext4). The five are mounted at once and measured interleaved: each job runs on")
p(f"the five back to back, in an order that rotates every round; {rounds} round{'s' if rounds > 1 else ''} of {runtime} s per job after {ramp} s")
p("of ramp. Cells: the median over the rounds, and its ratio to (a); for latencies lower is better, so a ratio")
p("above 1 is slower than (a). (e): nbdkit's file plugin opens its disk without O_DIRECT (its default), so its")
p("I/O goes through the node's page cache: reads of data written during the run may come from memory, writes")
p("are buffered until a flush. Duet's engine opens its backing disk with O_DIRECT, as the loop device of (a) does.")
p("")
p("| job | " + " | ".join(n for _, n in setups) + " |")
p("|---|" + "---|" * len(setups))
for label, _, _, _ in metrics:
    a = val[(label, "a")]
    cells = []
    for s, _ in setups:
        v = val[(label, s)]
        cells.append(num(v) if s == "a" or v is None or not a else f"{num(v)} ({v / a:.2f})")
    p(f"| {label} | " + " | ".join(cells) + " |")
if rounds > 1:
    p("")
    p("Each round's value (the spread shows how much the machine's other work moved the numbers):")
    p("")
    p("| job | " + " | ".join(n for _, n in setups) + " |")
    p("|---|" + "---|" * len(setups))
    for label, _, _, better in metrics:
        if better:
            p(f"| {label} | " + " | ".join(" / ".join(num(x) for x in per_round[(label, s)]) for s, _ in setups) + " |")
p("")
# Engine counters per job (alpha is Primary, beta Secondary), summed over the rounds.
p("Engine counters during the jobs, all rounds (deltas of `hactl replica status --json`; CPU: each node's engine")
p("process, % of one core over the jobs' time):")
p("")
p("| setup | job | written (MB) | sent to peer (MB) | activity-log transactions | alpha engine CPU | beta engine CPU |")
p("|---|---|---|---|---|---|---|")
lost = []
for s, name in setups:
    if s not in "bcd":
        continue
    for jn in ["seqwrite", "fsync", "randread", "seqread"]:
        tot = {"written": 0, "sent": 0, "al_transactions": 0}
        ticks = {"alpha": 0, "beta": 0}
        ms = 0
        for r in range(1, rounds + 1):
            sn = {(n, i): load(f"{s}.{jn}.{r}.{n}.{i}.json") for n in ("alpha", "beta") for i in (0, 1)}
            for k in tot:
                tot[k] += sn[("alpha", 1)]["counters"][k] - sn[("alpha", 0)]["counters"][k]
            for n in ticks:
                ticks[n] += sn[(n, 1)]["cpu_ticks"] - sn[(n, 0)]["cpu_ticks"]
            ms += sn[("alpha", 1)]["time_ms"] - sn[("alpha", 0)]["time_ms"]
            if s != "b" and any(sn[("alpha", i)]["connection"] != "Connected" for i in (0, 1)):
                lost.append(f"{name} {jn} round {r}")
        cpu = {n: t / hz / max(0.001, ms / 1000) * 100 for n, t in ticks.items()}
        p(f"| {name} | {jn} | {tot['written'] / 1e6:,.0f} | {tot['sent'] / 1e6:,.0f} | "
          f"{tot['al_transactions']:,} | {cpu['alpha']:.0f} % | {cpu['beta']:.0f} % |")
if lost:
    p("")
    p("**The replication link was down around: " + "; ".join(lost) + ". Those numbers are not protocol C/A.**")
p("")
# Resync against TCP.
r = load("resync.json")
ip = load("iperf3.json")
tcp = ip["end"]["sum_received"]["bytes"] / ip["end"]["sum_received"]["seconds"] / 1e6
finished = []
with open(os.path.join(d, "r0.events")) as f:
    for line in f:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("type") in ("sync", "replica_sync") and e.get("state") == "finished" and e.get("role") == "source":
            finished.append(e)
full = finished[0] if finished else None
last = finished[-1] if len(finished) >= 2 else None   # the initial full sync, then the measured one
oos = r["out_of_sync"] or 0
wall_rate = oos / (r["wall_ms"] / 1000) / 1e6 if r["wall_ms"] else 0
if last and last.get("seconds"):
    rate = last["bytes"] / last["seconds"] / 1e6
    how = f"{last['bytes'] / 2**20:.0f} MiB in {last['seconds']:.2f} s (engine's sync-finished event)"
else:
    rate = wall_rate
    how = "no sync-finished event: out-of-sync bytes / time from `connect` to in sync"
p("Resync (protocol C replica r0, unthrottled): the link dropped, "
  f"{r['written_mib']} MiB of fio's file overwritten with direct I/O on the Primary, link restored:")
p("")
p("| | value | ratio to the link's TCP throughput |")
p("|---|---|---|")
p(f"| TCP throughput between the replication addresses (iperf3, 1 stream) | {tcp:,.0f} MB/s | 1.00 |")
p(f"| out of sync after the writes | {oos / 2**20:.1f} MiB | |")
p(f"| resync rate: {how} | {rate:,.0f} MB/s | {rate / tcp:.2f} |")
p(f"| resync, from `hactl replica connect` to in sync on both nodes ({r['wall_ms']} ms, handshake and status polling included) | {wall_rate:,.0f} MB/s | {wall_rate / tcp:.2f} |")
if full and full.get("seconds"):
    fr = full["bytes"] / full["seconds"] / 1e6
    p(f"| initial full sync of the device ({full['bytes'] / 2**20:.0f} MiB in {full['seconds']:.2f} s) | {fr:,.0f} MB/s | {fr / tcp:.2f} |")
seqw_a = val[(metrics[0][0], "a")]
p("")
p(f"For scale: (a)'s sequential write, the local disk's limit, was {seqw_a:,.0f} MB/s; the resync writes to beta's disk of the same kind.")
p("")
# Done-when checks of issue 4.
main = [m for m in metrics if m[3]]
worse = [m[0].strip() for m in main if val[(m[0], "c")] < val[(m[0], "e")]]
p("Done-when checks (issue 4):")
p("")
p("```")
p(("PASS" if not worse else "FAIL") + " (c) >= (e) on every job" + ("" if not worse else ": not on " + "; ".join(worse)))
sw, io = metrics[0][0], metrics[1][0]
ok = val[(sw, "c")] >= 0.5 * val[(sw, "a")] and val[(io, "c")] >= 0.5 * val[(io, "a")]
p(("PASS" if ok else "FAIL") + f" (c) >= 0.5 x (a) in sequential write ({val[(sw, 'c')] / val[(sw, 'a')]:.2f}) "
  f"and in 4K write+fsync IOPS ({val[(io, 'c')] / val[(io, 'a')]:.2f})")
p(("PASS" if rate >= 0.5 * tcp else "FAIL") + f" resync >= 0.5 x TCP throughput ({rate / tcp:.2f})")
p("```")
if quick == "1":
    p("")
    p("(--quick: a smoke run with short jobs; not for comparison.)")
print("\n".join(out))
PY
{
echo "## Replication ($(date -u +%Y-%m-%d), \`scripts/bench replication$([ "$quick" = 1 ] && echo ' --quick')\`)"
echo
python3 "$rb_dir/report.py" "$rb_dir" "$rb_rounds" "$rb_runtime" "$rb_ramp" "$rb_fio_size" "$rb_disk" "$rb_load0" "$rb_load1" "$quick" "$(nproc)"
} > "$report" || rb_fail "the report could not be made from $rb_dir"
cat "$report"
echo "bench: saved $report" >&2
true
