# shellcheck shell=bash disable=SC2034
# Duet's OCF helpers for resource agents written in bash: sourced, not run.
#
# An agent sets OCF_AGENT (its name), defines agent_meta_data, agent_usage and one function per
# action it implements (action_start, action_stop, action_monitor, action_validate_all), then
# calls `ocf_main "$@"`. Every message goes to stderr as "AGENT[INSTANCE] LEVEL: text" (duetd
# captures it into its log); stdout carries only meta-data and usage.

# OCF exit codes (Open Cluster Framework Resource Agent API).
OCF_SUCCESS=0
OCF_ERR_GENERIC=1
OCF_ERR_ARGS=2
OCF_ERR_UNIMPLEMENTED=3
OCF_ERR_PERM=4
OCF_ERR_INSTALLED=5
OCF_ERR_CONFIGURED=6
OCF_NOT_RUNNING=7

OCF_AGENT=${OCF_AGENT:-$(basename "$0")}
OCF_ACTION=${OCF_ACTION:-}

# ocf_log LEVEL MESSAGE...: LEVEL is debug, info, warn or error. debug is printed only when
# HA_debug is set to something other than 0 (as ocf-tester -d does).
ocf_log() {
    local level=$1
    shift
    if [[ $level == debug ]] && [[ -z ${HA_debug:-} || ${HA_debug:-} == 0 ]]; then
        return 0
    fi
    local who=$OCF_AGENT msg="$*"
    [[ -n ${OCF_RESOURCE_INSTANCE:-} ]] && who="${who}[$OCF_RESOURCE_INSTANCE]"
    # One line per message, however many lines a quoted command's output had.
    msg=${msg//$'\n'/ }
    while [[ $msg == *'  '* ]]; do msg=${msg//'  '/ }; done
    printf '%s %s: %s\n' "$who" "${level^^}" "$msg" >&2
}

# ocf_fail RC MESSAGE...: logs MESSAGE as an error and exits with RC.
ocf_fail() {
    local rc=$1
    shift
    ocf_log error "$*"
    exit "$rc"
}

# ocf_is_true VALUE: yes/true/on/1 (any case) are true; everything else, empty included, is false.
ocf_is_true() {
    case ${1,,} in
        yes | true | on | 1) return 0 ;;
        *) return 1 ;;
    esac
}

# ocf_check_bool NAME VALUE: fails with OCF_ERR_CONFIGURED unless VALUE is a boolean (or empty).
ocf_check_bool() {
    case ${2,,} in
        '' | yes | true | on | 1 | no | false | off | 0) return 0 ;;
        *) ocf_fail "$OCF_ERR_CONFIGURED" "parameter $1='$2' is not a boolean (expected true or false)" ;;
    esac
}

# ocf_check_int NAME VALUE MIN MAX: fails with OCF_ERR_CONFIGURED unless VALUE is a decimal
# integer within [MIN, MAX].
ocf_check_int() {
    local name=$1 value=$2 min=$3 max=$4
    if ! [[ $value =~ ^[0-9]{1,9}$ ]] || ((10#$value < min || 10#$value > max)); then
        ocf_fail "$OCF_ERR_CONFIGURED" "parameter $name='$value' is not a whole number from $min to $max"
    fi
}

# ocf_need_binary PROGRAM WHY: fails with OCF_ERR_INSTALLED when PROGRAM is not on PATH.
ocf_need_binary() {
    command -v "$1" >/dev/null 2>&1 || ocf_fail "$OCF_ERR_INSTALLED" "$1 not found on PATH ($2)"
}

# ocf_state_dir: prints the directory for this agent's state files, creating it if needed:
# ${HA_RSCTMP:-/run/resource-agents} (the resource-agents convention; emptied at boot).
ocf_state_dir() {
    local dir=${HA_RSCTMP:-/run/resource-agents}
    if [[ ! -d $dir ]]; then
        mkdir -p "$dir" 2>/dev/null || ocf_fail "$OCF_ERR_PERM" "cannot create the state directory $dir (HA_RSCTMP)"
    fi
    printf '%s\n' "$dir"
}

# ocf_state_file KEY: prints the path of this node's state file for KEY. The node name is part
# of it so that two nodes sharing a /run (as the lab's do) never see each other's state.
ocf_state_file() {
    local dir key=${1//\//_}
    dir=$(ocf_state_dir) || exit $?
    printf '%s/duet-%s-%s-%s\n' "$dir" "$OCF_AGENT" "$(uname -n)" "$key"
}

# ocf_main ACTION: runs the action. meta-data, usage and validate-all never need the agent's
# state; an unknown action is OCF_ERR_UNIMPLEMENTED, a missing one OCF_ERR_ARGS.
ocf_main() {
    if (($# != 1)); then
        agent_usage >&2
        exit "$OCF_ERR_ARGS"
    fi
    OCF_ACTION=$1
    case $OCF_ACTION in
        meta-data) agent_meta_data; exit "$OCF_SUCCESS" ;;
        usage | help | --help | -h) agent_usage; exit "$OCF_SUCCESS" ;;
        start | stop | monitor | validate-all)
            local fn=action_${OCF_ACTION//-/_}
            "$fn"
            exit $?
            ;;
        status)  # what Heartbeat 1 called monitor
            action_monitor
            exit $?
            ;;
        *)
            ocf_log debug "action '$OCF_ACTION' is not implemented"
            exit "$OCF_ERR_UNIMPLEMENTED"
            ;;
    esac
}
