#!/usr/bin/env bash
# The Filesystem agent in the lab, on ext4 over a per-run loop device, mounted inside a node (its
# own mount namespace: nothing is mounted on the host): ocf-tester passes; start mounts, monitor
# (also with the read check) says running; stop of a busy mount stops exactly the processes that
# hold it (current directory, open file, executable, mapped library) and none other: not an unrelated
# process, not one using another mount of the same device; a holder that ignores SIGTERM gets
# SIGKILL; force_unmount=false fails naming the holder; mounts below are unmounted first; a
# write-protected device is an error, not a read-only mount; bad parameters get the right codes.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id af)
loopdev=''
cleanup() {
  lab_cleanup  # the nodes' mount namespaces, and so every mount on the loop device, go with the lab
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
}
trap cleanup EXIT

AGENT=$ROOT/agents/Filesystem
lab_up_minimal agents-filesystem

truncate -s 64M "$tmp/disk.img"
loopdev=$(losetup --find --show "$tmp/disk.img") || { no "losetup"; finish; exit 1; }
mkfs.ext4 -q "$loopdev" || { no "mkfs.ext4 on $loopdev"; finish; exit 1; }
ok "ext4 on $loopdev"

MNT=$tmp/data
# agent ACTION [NAME=VALUE...]: runs the agent on alpha for $loopdev on $MNT (ext4) unless
# overridden; stderr to $tmp/last.log (and appended to $tmp/agent.log).
agent() {
  local action=$1 env=(OCF_RESKEY_device="$loopdev" OCF_RESKEY_directory="$MNT" OCF_RESKEY_fstype=ext4) kv
  shift
  for kv in "$@"; do env+=("OCF_RESKEY_$kv"); done
  lab exec alpha env HA_RSCTMP="$tmp/rsc" OCF_RESOURCE_INSTANCE=data "${env[@]}" "$AGENT" "$action" 2> "$tmp/last.log"
  local rc=$?
  cat "$tmp/last.log" >> "$tmp/agent.log"
  return $rc
}
rc_is() { local want=$1; shift; "$@"; [ $? -eq "$want" ]; }
mounted_in_alpha() { lab exec alpha findmnt -n --mountpoint "$1" > /dev/null; }
not_on_host() { ! findmnt -n --mountpoint "$MNT" > /dev/null && ! findmnt -n -S "$loopdev" > /dev/null; }
# spawn SCRIPT: starts `bash -c SCRIPT` detached in alpha and prints its PID there.
spawn() { lab exec alpha bash -c "($1) </dev/null >/dev/null 2>&1 & echo \$!"; }
alive() { lab exec alpha bash -c "s=\$(cat /proc/$1/stat 2>/dev/null) && [[ \${s##*) } != Z* ]]"; }
gone() { ! alive "$1"; }
in_range() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }

# --- ocf-tester and meta-data ------------------------------------------------------------------
lab exec alpha env HA_RSCTMP="$tmp/rsc" /usr/sbin/ocf-tester -n data -o device="$loopdev" \
  -o directory="$tmp/ocft" -o fstype=ext4 "$AGENT" > "$tmp/ocft.log" 2>&1
check "ocf-tester passes on Filesystem" grep -q "passed all tests" "$tmp/ocft.log" || cat "$tmp/ocft.log"
params=$("$AGENT" meta-data | xmllint --xpath '//parameters/parameter/@name' - | grep -o '"[^"]*"' | tr -d '"' | head -n 4 | xargs)
check "meta-data: device, directory, fstype, options come first (positional argument order)" [ "$params" = "device directory fstype options" ]

# --- start, monitor ----------------------------------------------------------------------------
check "monitor before start: 7" rc_is 7 agent monitor
check "start (Filesystem::$loopdev::$MNT::ext4 with options noatime)" agent start options=noatime
check "mounted in alpha, with noatime" eval 'lab exec alpha findmnt -n -o OPTIONS --mountpoint "$MNT" | grep -q noatime'
check "nothing mounted on the host" not_on_host
check "monitor: running" agent monitor
check "monitor with OCF_CHECK_LEVEL=10 (read check)" lab exec alpha env OCF_CHECK_LEVEL=10 \
  OCF_RESKEY_device="$loopdev" OCF_RESKEY_directory="$MNT" "$AGENT" monitor
check "start again: success, still one mount" eval 'agent start && [ "$(lab exec alpha findmnt -n --mountpoint "$MNT" | wc -l)" -eq 1 ]'

# --- stop a busy mount: exactly its holders are stopped ----------------------------------------
# A program and a library on the mount: the program's process holds it by its executable, a
# process that preloads the library only by a mapping (the loader closes the file).
libm=$(ldconfig -p | awk '$1 == "libm.so.6" { print $NF; exit }')
lab exec alpha bash -c "mkdir -p '$MNT/sub' '$MNT/bin' '$tmp/elsewhere' '$tmp/second' &&
  cp /bin/sleep '$MNT/bin/sleep' && cp '$libm' '$MNT/bin/libm.so.6'"
# The same device mounted a second time elsewhere in alpha: its users are not holders of $MNT.
lab exec alpha mount -t ext4 "$loopdev" "$tmp/second"
cwd_pid=$(spawn "cd '$MNT/sub' && exec sleep 600")
file_pid=$(spawn "exec 3>>'$MNT/sub/log' && cd / && exec sleep 600")
exe_pid=$(spawn "cd / && exec '$MNT/bin/sleep' 600")
map_pid=$(spawn "cd / && LD_PRELOAD='$MNT/bin/libm.so.6' exec sleep 600")
other_pid=$(spawn "cd '$tmp/elsewhere' && exec sleep 600")
second_pid=$(spawn "cd '$tmp/second/sub' && exec 4<'$tmp/second/bin/sleep' && exec '$tmp/second/bin/sleep' 600")
check "holders run: cwd $cwd_pid, open file $file_pid, executable $exe_pid, mapping $map_pid; others $other_pid, $second_pid" \
  eval 'alive $cwd_pid && alive $file_pid && alive $exe_pid && alive $map_pid && alive $other_pid && alive $second_pid'
check "the library is mapped, not open" wait_for 5 eval \
  'lab exec alpha grep -q "$MNT/bin/libm.so.6" "/proc/$map_pid/maps" && ! lab exec alpha ls -l "/proc/$map_pid/fd" | grep -q "$MNT"'
check "the mount is busy (umount fails)" eval '! lab exec alpha umount "$MNT" 2>/dev/null'

t0=$(now_ms)
check "stop a busy mount" agent stop
took=$(( $(now_ms) - t0 ))
check "unmounted" eval '! mounted_in_alpha "$MNT"'
check "the process with its cwd inside was stopped" gone "$cwd_pid"
check "the process with an open file inside was stopped" gone "$file_pid"
check "the process running a program from inside was stopped" gone "$exe_pid"
check "the process with a library mapped from inside was stopped" gone "$map_pid"
check "the unrelated process still runs" alive "$other_pid"
check "the process on the other mount of the same device still runs" alive "$second_pid"
check "the other mount of the same device is still there" mounted_in_alpha "$tmp/second"
check "the log names each holder stopped, with PID and command" eval \
  'grep -q "SIGTERM to PID $cwd_pid (sleep): current directory $MNT/sub" "$tmp/last.log" &&
   grep -q "SIGTERM to PID $file_pid (sleep): open file $MNT/sub/log" "$tmp/last.log" &&
   grep -q "SIGTERM to PID $exe_pid (sleep): executable $MNT/bin/sleep" "$tmp/last.log" &&
   grep -q "SIGTERM to PID $map_pid (sleep): mapped file $MNT/bin/libm.so.6" "$tmp/last.log"' ||
  sed 's/^/    /' "$tmp/last.log"
check "no other process was signalled" eval '[ "$(grep -c "SIG" "$tmp/last.log")" -eq 4 ]'
check "stop took ${took} ms (well within term_wait: they obey SIGTERM)" [ "$took" -lt 5000 ]
check "stop again: success" agent stop
check "monitor after stop: 7" rc_is 7 agent monitor
lab exec alpha kill "$other_pid" "$second_pid"
lab exec alpha umount "$tmp/second"

# --- a holder that ignores SIGTERM gets SIGKILL after term_wait ---------------------------------
check "start" agent start
stubborn=$(spawn "cd '$MNT' && trap '' TERM && while :; do sleep 0.2; done")
check "a holder ignoring SIGTERM runs (PID $stubborn)" alive "$stubborn"
t0=$(now_ms)
check "stop with term_wait=1" agent stop term_wait=1
took=$(( $(now_ms) - t0 ))
check "unmounted" eval '! mounted_in_alpha "$MNT"'
check "the stubborn holder is gone" gone "$stubborn"
check "it got SIGKILL after term_wait (logged)" grep -q "PID $stubborn (bash) still holds $MNT after SIGTERM and 1s: sending SIGKILL" "$tmp/last.log"
check "stop took ${took} ms (about term_wait, under 3x)" in_range "$took" 1000 3000

# --- force_unmount=false: fail naming the holder; nothing killed -------------------------------
check "start" agent start
holder=$(spawn "cd '$MNT' && exec sleep 600")
check "stop with force_unmount=false fails (1)" rc_is 1 agent stop force_unmount=false
check "the error names the holder" grep -q "cannot unmount $MNT: .*PID $holder (sleep): current directory $MNT" "$tmp/last.log"
check "the holder still runs" alive "$holder"
check "still mounted" mounted_in_alpha "$MNT"
check "monitor: still running" agent monitor
check "stop (forced by default)" agent stop
check "then the holder is gone" gone "$holder"

# --- mounts below the directory are unmounted first --------------------------------------------
check "start" agent start
lab exec alpha bash -c "mkdir -p '$MNT/sub/tmp' && mount -t tmpfs duet-lab-tmpfs '$MNT/sub/tmp'"
below=$(spawn "cd '$MNT/sub/tmp' && exec sleep 600")
check "stop with a tmpfs mounted below (and busy)" agent stop
check "both unmounted" eval '! mounted_in_alpha "$MNT/sub/tmp" && ! mounted_in_alpha "$MNT"'
check "the submount's holder was stopped" gone "$below"
check "the log says the submount went first" grep -q "unmounting $MNT/sub/tmp (mounted below $MNT) first" "$tmp/last.log"

# --- errors ------------------------------------------------------------------------------------
blockdev --setro "$loopdev"
check "write-protected device: start fails (1), no read-only mount" rc_is 1 agent start
check "the error says write-protected" grep -q "write-protected" "$tmp/last.log"
check "not mounted" eval '! mounted_in_alpha "$MNT"'
blockdev --setrw "$loopdev"
lab exec alpha mount -t tmpfs duet-lab-other "$MNT"
check "directory already a mount point of something else: start fails (1)" rc_is 1 agent start
check "the error names what is mounted there" grep -q "already a mount point of duet-lab-other" "$tmp/last.log"
check "monitor: not running (7), since it is not our device" rc_is 7 agent monitor
check "stop leaves the other mount alone: success" agent stop
check "the other mount is still there" mounted_in_alpha "$MNT"
lab exec alpha umount "$MNT"
check "missing device: not installed (5)" rc_is 5 agent start device=/dev/duet-lab-missing
check "the error names the device" grep -q "device /dev/duet-lab-missing does not exist on alpha" "$tmp/last.log"
check "monitor with a missing device: 7" rc_is 7 agent monitor device=/dev/duet-lab-missing
check "unsupported fstype: not installed (5)" rc_is 5 agent start fstype=duetnofs
check "relative directory: not configured (6)" rc_is 6 agent validate-all directory=data
check "directory /: not configured (6)" rc_is 6 agent validate-all directory=/
check "no device: not configured (6)" rc_is 6 agent validate-all device=
check "term_wait=-1: not configured (6)" rc_is 6 agent validate-all term_wait=-1
check "nothing mounted on the host at any point" not_on_host

finish
