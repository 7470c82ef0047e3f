#!/usr/bin/env bash
# Plumbing test of scripts/lab: namespaces, addresses, links, hostnames, private directories,
# faults (cut/heal, freeze/thaw, kill/restart, kill duetd/start), two labs side by side, each
# node's own disks (--disk), cleanup (also after a failed `up`, after `up` was killed midway, and
# with a disk still mounted in a node's namespace kept by an outside process). Needs root and a
# built duetd (${DUET_BUILD:-build}).
# Last line: "N passed, N failed"; exit status non-zero when anything failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
LAB=$REPO/scripts/lab
LAB_ROOT=/run/duet-lab
PASS=0 FAIL=0

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }
check() {   # DESCRIPTION CMD... : CMD must succeed
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi
}
check_not() { # DESCRIPTION CMD... : CMD must fail
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then not_ok "$what"; else ok "$what"; fi
}
check_eq() {  # DESCRIPTION EXPECTED ACTUAL
    if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}
# Poll CMD until it succeeds, up to SECONDS (a condition, never a fixed sleep).
eventually() {
    local timeout=$1
    shift
    local end=$((${EPOCHREALTIME/[.,]/} + timeout * 1000000)) d=0.01
    until "$@" >/dev/null 2>&1; do
        ((${EPOCHREALTIME/[.,]/} < end)) || return 1
        sleep "$d"
        [[ $d == 0.01 ]] && d=0.05 || d=0.1
    done
}

finish() {
    echo "$PASS passed, $FAIL failed"
    ((FAIL == 0 && PASS > 0))
}

if ((EUID != 0)); then
    not_ok "the lab needs root"
    finish
    exit 1
fi
BUILD=${DUET_BUILD:-$REPO/build}
if [[ ! -x $BUILD/daemon/duetd ]]; then
    not_ok "duetd is built ($BUILD/daemon/duetd)"
    finish
    exit 1
fi
if ! command -v ping >/dev/null; then
    apt-get install -y -q iputils-ping >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q iputils-ping >/dev/null; }
fi

# Unique lab ids and temp dir for this run; everything is removed in the trap, also on failure.
SUFFIX=$(printf '%04x' $((SRANDOM & 0xffff)))
ID1=tp$SUFFIX ID2=tq$SUFFIX ID3=tr$SUFFIX ID4=ts$SUFFIX ID5=tt$SUFFIX
TMP=$(mktemp -d /tmp/duet-labtest.XXXXXX)
HOLDER=""   # a process this test starts in a node's mount namespace, from outside the lab
cleanup() {
    local id f
    if [[ -n $HOLDER ]]; then kill -KILL "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null; fi
    for id in "$ID1" "$ID2" "$ID3" "$ID4" "$ID5"; do
        DUET_LAB=$id "$LAB" down >/dev/null 2>&1 || true
        # Should `down` have left a loop device of ours (a failure the checks report), detach it.
        for f in /sys/block/loop*/loop/backing_file; do
            if [[ $(cat "$f" 2>/dev/null) == "$LAB_ROOT/$id/disks/$id-"* ]]; then
                f=${f#/sys/block/}
                losetup -d "/dev/${f%%/*}" 2>/dev/null
            fi
        done
    done
    rm -rf --one-file-system -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab1() { DUET_LAB=$ID1 "$LAB" "$@"; }
lab2() { DUET_LAB=$ID2 "$LAB" "$@"; }
ping1() { ping -c 1 -W 1 "$1"; }

# Host pids of every live process in the PID namespace of the recorded init (state file INIT).
ns_pids() {
    local init p st
    read -r init _ < "$1" || return 0
    [[ -e /proc/$init/ns/pid ]] || return 0
    for p in /proc/[0-9]*; do
        [[ $p/ns/pid -ef /proc/$init/ns/pid ]] || continue
        st=$(awk '{sub(/.*\) /, ""); print $1}' "$p/stat" 2>/dev/null) || continue
        [[ $st == Z ]] || echo "${p#/proc/}"
    done
}
alive() {   # PID: exists and is not a zombie
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}
none_alive() { local p; for p in "$@"; do ! alive "$p" || return 1; done; }
all_stopped() { local p st; for p in "$@"; do st=$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f1); [[ $st == T ]] || return 1; done; }
none_stopped() { local p st; for p in "$@"; do st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1); [[ $st != T ]] || return 1; done; }
lab_loops() {   # ID: the `losetup -a` lines of lab ID's disks (their files carry its id)
    losetup -a | grep -F "$LAB_ROOT/$1/disks/$1-" || true
}
host_lab_links() {  # names in the host namespace that the lab would use
    ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' |
        grep -E "^(br0|br1|n[12]e[01]|ce0)\$|^($ID1|$ID2|$ID3)" || true
}

# ---- configurations: duet.toml, and Heartbeat's files -----------------------------------------
mkdir -p "$TMP/toml" "$TMP/hacf"
cat > "$TMP/toml/duet.toml" <<'EOF'
# minimal two-node cluster for the lab plumbing test
nodes = ["alpha", "bravo"]

[auth]
key = "lab-plumbing-test-secret"

[[path]]
type = "mcast"
interface = "eth0"
group = "239.0.0.10"
EOF
if [[ -f $REPO/tests/fixtures/seeds/samba/ha.cf ]]; then
    cp -R "$REPO/tests/fixtures/seeds/samba/." "$TMP/hacf/"
else
    cat > "$TMP/hacf/ha.cf" <<'EOF'
keepalive 2
warntime 10
deadtime 30
initdead 60
udpport 694
mcast eth0 239.0.0.10 694 1 0
auto_failback on
node serv1 serv2
EOF
    printf 'auth 1\n1 sha1 lab-plumbing-test-secret\n' > "$TMP/hacf/authkeys"
    printf 'serv1 IPaddr::198.51.100.20/24/eth0\n' > "$TMP/hacf/haresources"
fi
chmod 644 "$TMP/hacf/authkeys"   # as git leaves it: the lab must fix the copy's mode

echo "# lab $ID1 (duet.toml) up"
links_before=$(host_lab_links)
host_name=$(uname -n)
if out=$(lab1 up "$TMP/toml" 2>"$TMP/up1.err"); then ok "up (duet.toml)"; else
    not_ok "up (duet.toml): $(cat "$TMP/up1.err")"
    finish
    exit 1
fi
check_eq "up prints DUET_LAB=<id> last" "DUET_LAB=$ID1" "$(tail -n 1 <<<"$out")"
check_eq "nodes in configuration order" "alpha bravo" "$(lab1 nodes | paste -sd' ')"
for ns in sw alpha bravo client; do
    check "namespace $ID1-$ns exists" test -e "/run/netns/$ID1-$ns"
done
check_eq "no lab interface or bridge in the host namespace" "$links_before" "$(host_lab_links)"
check_eq "switch holds br0, br1 and the five ports" "br0 br1 ce0 n1e0 n1e1 n2e0 n2e1" \
    "$(ip -n "$ID1-sw" -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -v '^lo$' | sort | paste -sd' ')"
for br in br0 br1; do
    check "$br: multicast snooping off" sh -c "ip -n $ID1-sw -d link show $br | grep -q 'mcast_snooping 0'"
done
check_eq "ip alpha" 198.51.100.1 "$(lab1 ip alpha)"
check_eq "ip bravo" 198.51.100.2 "$(lab1 ip bravo)"
check_eq "ip client" 198.51.100.100 "$(lab1 ip client)"
check_eq "alpha addresses" "eth0 198.51.100.1/24 eth1 203.0.113.1/24" \
    "$(ip -n "$ID1-alpha" -4 -o addr show | awk '$2 != "lo" {printf "%s%s %s", sep, $2, $4; sep=" "}')"
check_eq "bravo addresses" "eth0 198.51.100.2/24 eth1 203.0.113.2/24" \
    "$(ip -n "$ID1-bravo" -4 -o addr show | awk '$2 != "lo" {printf "%s%s %s", sep, $2, $4; sep=" "}')"
check_eq "client address" "eth0 198.51.100.100/24" \
    "$(ip -n "$ID1-client" -4 -o addr show | awk '$2 != "lo" {printf "%s%s %s", sep, $2, $4; sep=" "}')"
for ns in sw alpha bravo client; do
    check_eq "no IPv6 address in $ns" "" "$(ip -n "$ID1-$ns" -6 -o addr show)"
done
check "alpha -> bravo over eth0" lab1 exec alpha ping -c 1 -W 2 198.51.100.2
check "bravo -> alpha over eth0" lab1 exec bravo ping -c 1 -W 2 198.51.100.1
check "alpha -> bravo over eth1" lab1 exec alpha ping -c 1 -W 2 203.0.113.2
check "client -> alpha" lab1 exec client ping -c 1 -W 2 198.51.100.1
check "client -> bravo" lab1 exec client ping -c 1 -W 2 198.51.100.2
check_not "the host cannot reach the lab" ping1 198.51.100.1
check_eq "hostname of alpha" alpha "$(lab1 exec alpha uname -n)"
check_eq "hostname of bravo" bravo "$(lab1 exec bravo hostname)"
check_eq "hostname of the host unchanged" "$host_name" "$(uname -n)"
check "alpha sees the configuration at /etc/duet" cmp "$TMP/toml/duet.toml" <(lab1 exec alpha cat /etc/duet/duet.toml)
check "bravo sees the configuration at /etc/duet" cmp "$TMP/toml/duet.toml" <(lab1 exec bravo cat /etc/duet/duet.toml)
check "alpha's /run/duet holds duetd's socket" lab1 exec alpha test -S /run/duet/duetd.sock
check_not "nothing of a node is mounted in the host" sh -c "findmnt -rn -o TARGET | grep -qE '^(/etc/duet|/etc/ha.d|/run/duet|/var/lib/duet)\$'"
check "a node has its own /proc, where its init is PID 1" sh -c "DUET_LAB=$ID1 '$LAB' exec alpha cat /proc/1/cmdline | tr '\\0' ' ' | grep -q 'lab-init.sh node'"
check "each node has its own PID namespace" test "$(lab1 exec alpha readlink /proc/self/ns/pid)" != "$(lab1 exec bravo readlink /proc/self/ns/pid)"
check_eq "exec passes stdin and stdout" "hello" "$(echo hello | lab1 exec alpha cat)"
set +e; lab1 exec bravo sh -c 'exit 7'; rc=$?; set -e
check_eq "exec passes the exit code" 7 "$rc"
client_sleeps() {  # is "sleep 4321" running in the client?
    # shellcheck disable=SC2016
    lab1 exec client sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " < "$f"; echo; done 2>/dev/null | grep -q "^sleep 4321 $"'
}
client_sleeps_not() { ! client_sleeps; }
DUET_LAB=$ID1 "$LAB" exec client sleep 4321 &   # not through lab1: $! must be the lab process
exec_pid=$!
check "a command runs in the client" eventually 10 client_sleeps
kill -TERM "$exec_pid"
wait "$exec_pid" 2>/dev/null || true
check "killing 'lab exec' stops its command" eventually 10 client_sleeps_not
D1=$LAB_ROOT/$ID1/nodes
check "duetd runs on alpha" alive "$(cut -d' ' -f1 "$D1/alpha/duetd.pid")"
check "duetd runs on bravo" alive "$(cut -d' ' -f1 "$D1/bravo/duetd.pid")"
check_eq "log alpha" "$D1/alpha/log/duetd.log" "$(lab1 log alpha)"
check_not "a lab without --disk: no /dev/lab on alpha" lab1 exec alpha test -e /dev/lab
check_eq "a lab without --disk: alpha's /dev is the host's devtmpfs" devtmpfs "$(lab1 exec alpha findmnt -n -o FSTYPE /dev)"
check_eq "a lab without --disk: no loop device" "" "$(lab_loops "$ID1")"

echo "# cut / heal"
# Reachability after heal/restart is polled: an ARP resolution that was in flight during the cut
# runs out its probes first (Destination Host Unreachable for up to ~3 s), as on a real LAN.
lab1 cut alpha eth0
check_not "cut alpha eth0: client no longer reaches alpha" lab1 exec client ping -c 1 -W 1 198.51.100.1
check "cut alpha eth0: eth1 still works" lab1 exec bravo ping -c 1 -W 2 203.0.113.1
lab1 heal alpha eth0
check "heal alpha eth0: client reaches alpha" eventually 10 lab1 exec client ping -c 1 -W 2 198.51.100.1
lab1 cut bravo
check_not "cut bravo: eth0 silent" lab1 exec alpha ping -c 1 -W 1 198.51.100.2
check_not "cut bravo: eth1 silent" lab1 exec alpha ping -c 1 -W 1 203.0.113.2
lab1 heal bravo
check "heal bravo: eth0 back" eventually 10 lab1 exec alpha ping -c 1 -W 2 198.51.100.2
check "heal bravo: eth1 back" eventually 10 lab1 exec alpha ping -c 1 -W 2 203.0.113.2

echo "# freeze / thaw"
# A detached process on alpha besides duetd (it must be frozen, survive `kill alpha duetd`, and die with alpha).
sleeper=$(lab1 exec alpha sh -c 'sleep 10000 </dev/null >/dev/null 2>&1 & echo $!')
mapfile -t before < <(ns_pids "$D1/alpha/init.pid")
check "alpha runs at least init, duetd and the sleeper" test "${#before[@]}" -ge 3
lab1 freeze alpha
mapfile -t pids < <(ns_pids "$D1/alpha/init.pid")
check "freeze alpha: every process of alpha stopped (state T)" all_stopped "${pids[@]}"
mapfile -t bravo_pids < <(ns_pids "$D1/bravo/init.pid")
check "freeze alpha: bravo's processes run" none_stopped "${bravo_pids[@]}"
lab1 thaw alpha
check "thaw alpha: no process of alpha stopped" none_stopped "${pids[@]}"

echo "# kill duetd / start duetd"
duetd_pid=$(cut -d' ' -f1 "$D1/alpha/duetd.pid")
lab1 kill alpha duetd
check "kill alpha duetd: duetd gone" none_alive "$duetd_pid"
check "kill alpha duetd: the rest of alpha still runs" sh -c "DUET_LAB=$ID1 '$LAB' exec alpha cat /proc/$sleeper/stat | grep -q '(sleep) S'"
check_not "start on a node whose duetd runs is refused" lab1 start bravo duetd
lab1 start alpha duetd
check "start alpha duetd: duetd runs again" alive "$(cut -d' ' -f1 "$D1/alpha/duetd.pid")"
check_not "restart of a running node is refused" lab1 restart alpha

echo "# kill / restart"
mapfile -t pids < <(ns_pids "$D1/alpha/init.pid")
old_init=$(cat "$D1/alpha/init.pid")
lab1 kill alpha
check "kill alpha: no process of alpha left (zombies count as dead)" none_alive "${pids[@]}"
check_not "kill alpha: its address stops answering" lab1 exec client ping -c 1 -W 1 198.51.100.1
check_not "kill alpha: exec on it is refused" lab1 exec alpha true
check "kill alpha: bravo still runs" lab1 exec bravo true
lab1 restart alpha
check "restart alpha: its address answers" eventually 10 lab1 exec client ping -c 1 -W 2 198.51.100.1
check "restart alpha: eth1 works" eventually 10 lab1 exec bravo ping -c 1 -W 2 203.0.113.1
check "restart alpha: duetd runs" alive "$(cut -d' ' -f1 "$D1/alpha/duetd.pid")"
check_eq "restart alpha: hostname" alpha "$(lab1 exec alpha uname -n)"
check "restart alpha: a fresh init (new PID namespace)" test "$(cat "$D1/alpha/init.pid")" != "$old_init"
check "restart alpha: configuration still there" cmp "$TMP/toml/duet.toml" <(lab1 exec alpha cat /etc/duet/duet.toml)

echo "# a second lab ($ID2, Heartbeat files) beside the first"
if out=$(DUETD_ARGS=-v lab2 up "$TMP/hacf" 2>"$TMP/up2.err"); then ok "up (ha.cf)"; else not_ok "up (ha.cf): $(cat "$TMP/up2.err")"; fi
mapfile -t n2 < <(lab2 nodes)
check_eq "ha.cf lab has two nodes" 2 "${#n2[@]}"
if ((${#n2[@]} == 2)); then
    log2=$(lab2 log "${n2[0]}")
    check "duetd started with --ha-dir and DUETD_ARGS" grep -q -- "--ha-dir /etc/ha.d --state-dir /var/lib/duet --socket /run/duet/duetd.sock --agents-dir [^ ]* -v\$" "$log2"
    lab2 kill "${n2[0]}" duetd
    lab2 start "${n2[0]}" duetd
    check_eq "start keeps the DUETD_ARGS of up" 2 "$(grep -c -- '--agents-dir [^ ]* -v$' "$log2")"
    check "${n2[0]} sees ha.cf at /etc/ha.d" cmp "$TMP/hacf/ha.cf" <(lab2 exec "${n2[0]}" cat /etc/ha.d/ha.cf)
    check_eq "authkeys copy is 0600" 600 "$(lab2 exec "${n2[1]}" stat -c %a /etc/ha.d/authkeys)"
    check_eq "hostname ${n2[1]}" "${n2[1]}" "$(lab2 exec "${n2[1]}" uname -n)"
    lab1 cut bravo
    check "cutting lab 1 leaves lab 2 alone" lab2 exec "${n2[0]}" ping -c 1 -W 2 198.51.100.2
    lab1 heal bravo
    lab2 kill "${n2[1]}"
    check "killing a node of lab 2 leaves lab 1 alone" eventually 10 lab1 exec alpha ping -c 1 -W 2 198.51.100.2
    check_not "lab 2's node is dead" lab2 exec "${n2[0]}" ping -c 1 -W 1 198.51.100.2
fi

echo "# down"
mapfile -t all1 < <(cut -d' ' -f1 "$LAB_ROOT/$ID1/keeper.pid" 2>/dev/null
    for f in "$D1"/*/init.pid; do ns_pids "$f"; done)
mapfile -t all2 < <(cut -d' ' -f1 "$LAB_ROOT/$ID2/keeper.pid" 2>/dev/null
    for f in "$LAB_ROOT/$ID2"/nodes/*/init.pid; do ns_pids "$f"; done)
check "down lab 1" lab1 down
check "down lab 2" lab2 down
check "down: no process of either lab left" none_alive "${all1[@]}" "${all2[@]}"
check_eq "down: no namespace left" "" "$(ip netns list | grep -E "^($ID1|$ID2)-" || true)"
check_eq "down: no lab interface in the host" "$links_before" "$(host_lab_links)"
check_not "down: state directory of lab 1 removed" test -e "$LAB_ROOT/$ID1"
check_not "down: state directory of lab 2 removed" test -e "$LAB_ROOT/$ID2"
check "down again: nothing to do, exit 0" lab1 down
if [[ -z $(ip netns list) ]]; then   # other labs may run beside this test
    check_not "down: no /run/netns bind mount left once no namespace is left" mountpoint -q /run/netns
fi

echo "# disks: a lab ($ID4) with --disk 256M --disks 2"
lab4() { DUET_LAB=$ID4 "$LAB" "$@"; }
DISK_BYTES=$((256 << 20))
check_not "up --disk 12X is refused" env DUET_LAB="$ID4" "$LAB" up "$TMP/toml" --disk 12X
check_not "up --disks without --disk is refused" env DUET_LAB="$ID4" "$LAB" up "$TMP/toml" --disks 2
check_not "a refused up leaves no state directory" test -e "$LAB_ROOT/$ID4"
if lab4 up "$TMP/toml" --disk 256M --disks 2 >"$TMP/up4.out" 2>&1; then ok "up --disk 256M --disks 2"; else not_ok "up --disk 256M --disks 2: $(cat "$TMP/up4.out")"; fi
for node in alpha bravo; do
    for disk in disk0 disk1; do
        check "$node: /dev/lab/$disk is a block device" lab4 exec "$node" test -b "/dev/lab/$disk"
        check_eq "$node: /dev/lab/$disk is 256M" "$DISK_BYTES" "$(lab4 exec "$node" blockdev --getsize64 "/dev/lab/$disk" 2>&1)"
    done
done
check "alpha's and bravo's disk0 are different devices" \
    test "$(lab4 exec alpha stat -c %t:%T /dev/lab/disk0)" != "$(lab4 exec bravo stat -c %t:%T /dev/lab/disk0)"
check_not "the host has no /dev/lab" test -e /dev/lab
check_eq "four loop devices, each over a file named after the lab" 4 "$(lab_loops "$ID4" | grep -c "/$ID4-\(alpha\|bravo\)-disk[01]\.img)")"
check_eq "direct I/O on every loop device of the lab" "1 1 1 1" \
    "$(for f in "$LAB_ROOT/$ID4"/disks/*.img; do losetup -n -O DIO -j "$f" | tr -d ' '; done | paste -sd' ')"
check_eq "the disk files are sparse (nothing allocated yet)" 0 "$(du -c -B1 "$LAB_ROOT/$ID4"/disks/*.img | tail -n 1 | cut -f1)"
# A pattern written on alpha's disk0 is on alpha's disk0 only.
head -c $((1 << 20)) /dev/urandom > "$TMP/pattern"
head -c $((1 << 20)) /dev/zero > "$TMP/zeros"
read_mib4() { lab4 exec "$1" dd if="$2" bs=1M skip=4 count=1 iflag=direct status=none; }  # NODE DEV: MiB 4
check "write a pattern on alpha's disk0 (direct I/O)" lab4 exec alpha dd if="$TMP/pattern" of=/dev/lab/disk0 bs=1M seek=4 oflag=direct status=none
check "alpha reads its pattern back" cmp "$TMP/pattern" <(read_mib4 alpha /dev/lab/disk0)
check "bravo's disk0 does not hold it (zeros)" cmp "$TMP/zeros" <(read_mib4 bravo /dev/lab/disk0)
check "alpha's disk1 does not hold it (zeros)" cmp "$TMP/zeros" <(read_mib4 alpha /dev/lab/disk1)
# ext4 on alpha's disk0, mounted in alpha only (the mount point is a host directory).
MNT=$TMP/mnt
mkdir -p "$MNT"
check "mkfs.ext4 on alpha's disk0" lab4 exec alpha mkfs.ext4 -q -F /dev/lab/disk0
check "mount it in alpha" lab4 exec alpha mount /dev/lab/disk0 "$MNT"
check "write a file on it in alpha" lab4 exec alpha sh -c "cp '$TMP/pattern' '$MNT/file' && sync"
check "alpha reads the file back" cmp "$TMP/pattern" <(lab4 exec alpha cat "$MNT/file")
check_not "the host does not see alpha's mount" mountpoint -q "$MNT"
check_not "the host does not see the file" test -e "$MNT/file"
check_not "bravo does not see the file" lab4 exec bravo test -e "$MNT/file"
check "status: alpha's disk0, its loop device, size and mount point" \
    sh -c "DUET_LAB=$ID4 '$LAB' status | grep -Eq '^alpha +/dev/lab/disk0 +/dev/loop[0-9]+ +256M +[^ ]+ +$MNT\$'"
check "status: bravo's disk1" sh -c "DUET_LAB=$ID4 '$LAB' status | grep -Eq '^bravo +/dev/lab/disk1 +/dev/loop[0-9]+ +256M +[^ ]+ +-\$'"
# Anything a node makes in its /dev stays in that node, as on a server of its own.
check "alpha makes a link in its /dev" lab4 exec alpha ln -s lab/disk0 "/dev/duet-labtest-$ID4"
check_not "the host does not see alpha's /dev link" test -L "/dev/duet-labtest-$ID4"
check_not "bravo does not see alpha's /dev link" lab4 exec bravo test -L "/dev/duet-labtest-$ID4"
# A power loss does not lose the disk.
lab4 kill alpha
check_eq "kill alpha: its loop devices stay" 2 "$(lab_loops "$ID4" | grep -c "/$ID4-alpha-disk")"
if lab4 restart alpha >"$TMP/restart4.out" 2>&1; then ok "restart alpha"; else not_ok "restart alpha: $(cat "$TMP/restart4.out")"; fi
check "restart alpha: /dev/lab/disk0 is back" lab4 exec alpha test -b /dev/lab/disk0
check "restart alpha: mount it again" lab4 exec alpha mount /dev/lab/disk0 "$MNT"
check "restart alpha: the file survived" cmp "$TMP/pattern" <(lab4 exec alpha cat "$MNT/file")
# down while a process outside the lab keeps alpha's mount namespace, so ext4 is still mounted there.
init4=$(cut -d' ' -f1 "$LAB_ROOT/$ID4/nodes/alpha/init.pid")
nsenter --target "$init4" --mount sleep 1000 </dev/null >/dev/null 2>&1 &
HOLDER=$!
holder_in_alpha() { [[ $(readlink "/proc/$HOLDER/ns/mnt") == "$(readlink "/proc/$init4/ns/mnt")" ]]; }
check "a process outside the lab holds alpha's mount namespace" eventually 10 holder_in_alpha
if lab4 down 2>"$TMP/down4.err"; then ok "down with a disk mounted in a namespace kept from outside"; else not_ok "down with a disk mounted in a namespace kept from outside: $(cat "$TMP/down4.err")"; fi
check "down says it unmounted the lingering mount" grep -q "still mounted at $MNT in the mount namespace of PID $HOLDER .*unmounted it" "$TMP/down4.err"
check_eq "down: no loop device of the lab left" "" "$(lab_loops "$ID4")"
check_not "down: the lab's state (and disk files) removed" test -e "$LAB_ROOT/$ID4"
check "the outside process still runs (not ours to kill)" alive "$HOLDER"
kill -KILL "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
HOLDER=""
check_not "the host still has no /dev/lab" test -e /dev/lab

echo "# disks: a failed up ($ID5) removes them"
mkdir -p "$TMP/badbuild/daemon"
printf '#!/bin/sh\necho "test duetd: refusing to start" >&2\nexit 1\n' > "$TMP/badbuild/daemon/duetd"
chmod +x "$TMP/badbuild/daemon/duetd"
check_not "up with a duetd that exits at start fails" env DUET_LAB="$ID5" DUET_BUILD="$TMP/badbuild" "$LAB" up "$TMP/toml" --disk 64M
check_eq "failed up: no loop device of the lab left" "" "$(lab_loops "$ID5")"
check_not "failed up: no state directory left" test -e "$LAB_ROOT/$ID5"

echo "# up killed midway, then down"
DUET_LAB=$ID3 "$LAB" up "$TMP/toml" --disk 64M >/dev/null 2>&1 &
up_pid=$!
eventually 20 test -e "/run/netns/$ID3-bravo" || true
kill -KILL "$up_pid" 2>/dev/null || true
wait "$up_pid" 2>/dev/null || true
check "down after a killed up" env DUET_LAB="$ID3" "$LAB" down
check_eq "killed up: no namespace left" "" "$(ip netns list | grep -E "^$ID3-" || true)"
check_not "killed up: no state directory left" test -e "$LAB_ROOT/$ID3"
check_eq "killed up: no loop device of the lab left" "" "$(lab_loops "$ID3")"
check_eq "killed up: no process of the lab left" "" \
    "$(for p in /proc/[0-9]*; do tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q "$LAB_ROOT/$ID3" && alive "${p#/proc/}" && echo "${p#/proc/}"; done || true)"

finish
