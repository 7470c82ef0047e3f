#!/bin/bash
# Helpers that scripts/lab runs inside the lab's namespaces. Not meant to be run by hand.
#
#   lab-init.sh keeper LABDIR
#       PID 1 of the lab's PID namespace (every node's PID namespace is nested in it). Records its
#       host PID in LABDIR/keeper.pid, then reaps every orphan. It exits only when killed, or when
#       LABDIR/lab.conf disappears (the lab was removed behind its back): its death takes every
#       process of the lab with it.
#   lab-init.sh node NODEDIR NAME KIND
#       PID 1 of one node (started by scripts/lab inside the node's network namespace, in fresh
#       PID, mount and UTS namespaces). Records its host PID in NODEDIR/init.pid, sets the hostname,
#       mounts the node's own /proc and its private directories (KIND: toml -> NODEDIR/etc on
#       /etc/duet, hacf -> on /etc/ha.d, none -> no configuration), and when NODEDIR/disks lists
#       disks, a private /dev holding /dev/lab/<disk>; touches NODEDIR/init.ready, then reaps
#       every orphan of the node forever: it never exits on its own.
#   lab-init.sh run PIDFILE INITPID CMD...
#       Runs inside a node's PID namespace but still in the host's mount namespace: records its own
#       host PID in PIDFILE, then enters the node's mount, UTS and network namespaces and execs CMD,
#       so the recorded PID is CMD's.
set -euo pipefail

# "PID STARTTIME" of this very bash process, as the host sees it. /proc must still be the host's
# procfs here, and `read < /proc/self/stat` is done by this process itself (no fork).
record_self() {
    local stat pid rest
    IFS= read -r stat < /proc/self/stat
    pid=${stat%% *}
    rest=${stat##*) }
    local -a f
    read -r -a f <<<"$rest"
    printf '%s %s\n' "$pid" "${f[19]}" > "$1.tmp"
    mv -f "$1.tmp" "$1"
}

# Reap children (and every orphan the kernel hands to us as PID 1) forever. Bash's SIGCHLD
# handling waits for any child, including adopted ones, while `wait` blocks on the sleeper.
reap_forever() {
    local guard=${1:-}
    set +e
    trap '' HUP INT QUIT TERM USR1 USR2 PIPE
    exec </dev/null
    if [[ -n $guard ]]; then
        while [[ -e $guard ]]; do
            sleep 5 &
            wait "$!"
        done
        echo "lab-init: $guard is gone: the lab was removed, exiting (this kills the lab's processes)" >&2
        exit 0
    fi
    while :; do
        sleep infinity &
        wait
    done
}

die() { echo "lab-init: $*" >&2; exit 1; }

# private_dev NODEDIR: the node's disks at /dev/lab/<name>, in this node only.
#
# /dev is the host's devtmpfs, one file system shared by every mount namespace: a directory made
# there, even only as a mount point, would show on the host and on the other node. So the node's
# /dev becomes an overlay: the host's devtmpfs as its lower layer, so every device stays there and
# new ones appear (a loop device the node sets up later), and a tmpfs of the node's own as its
# upper layer, holding /dev/lab and anything the node itself creates in /dev (a replicated
# device's link such as /dev/drbd0), as on a server of its own. NODEDIR/disks has one line per
# disk: "NAME MAJOR MINOR LOOP".
# Known limit (overlayfs caches a failed lookup): a name looked up in the node's /dev before the
# device existed stays missing in that node. Create devices before looking for them, as
# `losetup --find` does (the kernel creates /dev/loopN before the ioctl returns).
private_dev() {
    local dir=$1 layer=$1/dev-layer name major minor loop m
    local -a subs
    mkdir -p "$layer"
    # Mounted in this node's (private) mount namespace only; on the host it stays an empty directory.
    mount -t tmpfs -o mode=0755,size=1m,nosuid lab-dev "$layer"
    mkdir -m 0755 "$layer/upper" "$layer/work" "$layer/root"
    mkdir -m 0755 "$layer/upper/lab"
    while read -r name major minor loop; do
        [[ $name =~ ^disk[0-9]+$ && $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] ||
            die "$dir/disks: cannot read '$name $major $minor $loop' (expected: diskN MAJOR MINOR loopN)"
        # root:disk 0660, as udev makes a disk's node.
        mknod -m 0660 "$layer/upper/lab/$name" b "$major" "$minor"
        chgrp disk "$layer/upper/lab/$name" 2>/dev/null || true
    done < "$dir/disks"
    mount -t overlay lab-dev -o "lowerdir=/dev,upperdir=$layer/upper,workdir=$layer/work" "$layer/root" ||
        die "cannot mount an overlay over /dev (lower /dev, upper $layer/upper): the node's disks need overlayfs"
    # The overlay shows the devtmpfs alone: the file systems mounted on /dev/pts, /dev/shm, ... are
    # bound again on top of it (each with what is mounted under it).
    mapfile -t subs < <(findmnt -rn -o TARGET -R /dev | grep -E '^/dev/[^/]+$' | sort -u)
    for m in "${subs[@]}"; do
        mount --rbind "$m" "$layer/root/${m#/dev/}"
    done
    mount --move "$layer/root" /dev
    # The overlay holds its layers by itself: the staging mount is not needed any more.
    umount "$layer" 2>/dev/null || umount -l "$layer"
}

mode=${1:-}
case $mode in
keeper)
    labdir=$2
    record_self "$labdir/keeper.pid"
    reap_forever "$labdir/lab.conf"
    ;;
node)
    dir=$2 name=$3 kind=$4
    exec </dev/null
    record_self "$dir/init.pid"
    mount --make-rprivate /
    printf '%s' "$name" > /proc/sys/kernel/hostname
    mount -t proc -o nosuid,nodev,noexec proc /proc
    binds=()
    case $kind in
        toml) binds+=("$dir/etc" /etc/duet) ;;
        hacf) binds+=("$dir/etc" /etc/ha.d) ;;
        none) ;;
        *) die "unknown configuration kind '$kind'" ;;
    esac
    if [[ $kind != none ]]; then
        binds+=("$dir/run" /run/duet "$dir/state" /var/lib/duet)
        # Resource agents keep state in /run/resource-agents (HA_RSCTMP): the host's /run is
        # shared by every node, so each node gets its own, emptied with run/ at a restart.
        mkdir -p "$dir/run/resource-agents"
        binds+=("$dir/run/resource-agents" /run/resource-agents)
        # The configuration's own init scripts, if it ships any, are this node's /etc/init.d (a
        # node is a server of its own: the host's init scripts are not its).
        [[ -d $dir/etc/init.d ]] && binds+=("$dir/etc/init.d" /etc/init.d)
    fi
    for ((i = 0; i < ${#binds[@]}; i += 2)); do
        src=${binds[i]} dst=${binds[i + 1]}
        # A missing mount point is created as an empty directory (on the host's file system: the
        # mount namespace is private, the file system is not). Nothing is ever mounted on it there.
        [[ -d $dst ]] || mkdir -p "$dst"
        mount --bind "$src" "$dst"
    done
    mounts=""
    for ((i = 0; i < ${#binds[@]}; i += 2)); do mounts+=" ${binds[i + 1]}"; done
    if [[ -s $dir/disks ]]; then
        private_dev "$dir"
        mounts+=" /dev (private, with /dev/lab:$(cut -d' ' -f1 "$dir/disks" | sed 's/^/ /' | tr -d '\n'))"
    fi
    : > "$dir/init.ready"
    echo "lab-init: node $name ready: hostname, /proc$mounts"
    reap_forever
    ;;
run)
    pidfile=$2 init=$3
    shift 3
    [[ $# -gt 0 ]] || die "run: no command"
    cd /
    record_self "$pidfile"
    exec nsenter --target "$init" --mount --uts --net --wdns=/ -- "$@"
    ;;
*)
    die "usage: lab-init.sh keeper|node|run ... (internal helper of scripts/lab)"
    ;;
esac
