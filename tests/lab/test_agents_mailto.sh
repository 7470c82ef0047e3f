#!/usr/bin/env bash
# The MailTo agent in the lab, against real SMTP servers (aiosmtpd) on the client: ocf-tester
# passes; start and stop each send one mail with the right subject and body (node, event, UTC
# time, group and resources), a repeated start or stop sends none; the other node's takeover
# names it; DUET_MAIL_RELAY is the default relay; a relay that refuses, or accepts and never
# answers, costs at most the timeout, is logged, and start/stop still succeed; STARTTLS is used
# when offered (a server that requires it gets the mail), tls_verify checks the certificate
# (refused when self-signed and untrusted, accepted with tls_ca) and refuses a relay without
# STARTTLS; bad parameters get OCF_ERR_CONFIGURED.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export DUET_LAB=$(new_lab_id am)
trap lab_cleanup EXIT  # also stops the SMTP servers (bg_pids)

AGENT=$ROOT/agents/MailTo
PY=/usr/bin/python3
RELAY=198.51.100.100
lab_up_minimal agents-mailto

# SMTP servers on the client: plain on 2525, STARTTLS required on 2526 (self-signed certificate
# for 198.51.100.100), and on 2527 a listener that accepts connections and never says a word.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
  -subj "/CN=$RELAY" -addext "subjectAltName=IP:$RELAY" 2> "$tmp/openssl.log" || { cat "$tmp/openssl.log"; no "openssl"; finish; exit 1; }
lab exec client "$PY" -m aiosmtpd -n -l "$RELAY:2525" -c aiosmtpd.handlers.Mailbox "$tmp/box" > "$tmp/smtp.log" 2>&1 &
bg_pids+=($!)
lab exec client "$PY" -m aiosmtpd -n -l "$RELAY:2526" --tlscert "$tmp/cert.pem" --tlskey "$tmp/key.pem" \
  -c aiosmtpd.handlers.Mailbox "$tmp/tlsbox" > "$tmp/smtps.log" 2>&1 &
bg_pids+=($!)
lab exec client "$PY" -c "
import socket, time
s = socket.socket()
s.bind(('$RELAY', 2527))
s.listen(16)
time.sleep(3600)" > "$tmp/silent.log" 2>&1 &
bg_pids+=($!)
listening() { lab exec client ss -ltnH "sport = :$1" | grep -q LISTEN; }
check "SMTP server listens on $RELAY:2525" wait_for 15 listening 2525
check "STARTTLS SMTP server listens on $RELAY:2526" wait_for 15 listening 2526
check "silent listener on $RELAY:2527" wait_for 15 listening 2527

# agent NODE ACTION [NAME=VALUE...]: runs the agent on NODE (instance "alert", group "share"
# with three resources); stderr to $tmp/last.log (appended to $tmp/agent.log).
RESOURCES=$'IPaddr::198.51.100.20/24/eth0\nFilesystem::/dev/duet/r0::/data::ext4\nMailTo::ops@example.net,root::Duet share'
agent() {
  local node=$1 action=$2 env=() kv
  shift 2
  for kv in "$@"; do env+=("OCF_RESKEY_$kv"); done
  lab exec "$node" env HA_RSCTMP="$tmp/rsc-$node" OCF_RESOURCE_INSTANCE=alert DUET_GROUP=share \
    DUET_GROUP_RESOURCES="$RESOURCES" "${env[@]}" "$AGENT" "$action" 2> "$tmp/last.log"
  local rc=$?
  cat "$tmp/last.log" >> "$tmp/agent.log"
  return $rc
}
rc_is() { local want=$1; shift; "$@"; [ $? -eq "$want" ]; }
in_range() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }
# new_mails BOX: how many mails BOX received since the last call; the last of them in $tmp/mail.
new_mails() {
  local f n=0
  touch "$tmp/seen"
  for f in "$1"/new/*; do
    [ -e "$f" ] || continue
    grep -qxF "$f" "$tmp/seen" && continue
    echo "$f" >> "$tmp/seen"
    cp "$f" "$tmp/mail"
    n=$((n + 1))
  done
  echo "$n"
}
one_mail() { [ "$(new_mails "$1")" -eq 1 ]; }
no_mail() { [ "$(new_mails "$1")" -eq 0 ]; }
# header NAME: the decoded header of $tmp/mail.
header() {
  "$PY" -c 'import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print(m[sys.argv[2]] or "")' "$tmp/mail" "$1"
}
body_has() { grep -qxF -- "$1" "$tmp/mail"; }
# recent_time: the body's Time: line is ISO 8601 UTC and within two minutes of now.
recent_time() {
  local t
  t=$(sed -n 's/^Time:   //p' "$tmp/mail")
  [[ $t =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] &&
    (( $(date +%s) - $(date -d "$t" +%s) < 120 ))
}

PLAIN=(relay=$RELAY:2525 email=ops@example.net,root "subject=Duet share")

# --- ocf-tester and meta-data ------------------------------------------------------------------
lab exec alpha env HA_RSCTMP="$tmp/rsc-ocft" /usr/sbin/ocf-tester -n alert -o email=ops@example.net \
  -o relay=$RELAY:2525 "$AGENT" > "$tmp/ocft.log" 2>&1
check "ocf-tester passes on MailTo" grep -q "passed all tests" "$tmp/ocft.log" || cat "$tmp/ocft.log"
n=$(new_mails "$tmp/box")
check "ocf-tester's starts and stops sent mails ($n)" [ "$n" -gt 0 ]
params=$("$AGENT" meta-data | xmllint --xpath '//parameters/parameter/@name' - | grep -o '"[^"]*"' | tr -d '"' | head -n 2 | xargs)
check "meta-data: email, subject come first (positional argument order)" [ "$params" = "email subject" ]

# --- start and stop mail -----------------------------------------------------------------------
check "monitor before start: 7" rc_is 7 agent alpha monitor "${PLAIN[@]}"
check "start on alpha" agent alpha start "${PLAIN[@]}"
check "one mail received" one_mail "$tmp/box"
check "subject: 'Duet share: group share acquired by alpha'" [ "$(header Subject)" = "Duet share: group share acquired by alpha" ]
check "to both recipients" [ "$(header X-RcptTo)" = "ops@example.net, root" ]
check "from duet@alpha" [ "$(header From)" = "duet@alpha" ]
check "body: node" body_has "Node:   alpha"
check "body: event" body_has "Event:  start (group share acquired)"
check "body: time, UTC ISO 8601, now" recent_time
check "body: group" body_has "Group:  share"
check "body: resources in order" eval 'grep -A3 -xF "Resources, in start order:" "$tmp/mail" | tail -n 3 | diff -q - <(printf "%s\n" "$RESOURCES" | sed "s/^/  /") > /dev/null'
check "the log says the mail went out" grep -q 'mail "Duet share: group share acquired by alpha" sent to ops@example.net, root via 198.51.100.100:2525' "$tmp/last.log"
check "monitor: started" agent alpha monitor "${PLAIN[@]}"
check "start again: success" agent alpha start "${PLAIN[@]}"
check "no second mail for a start on a started resource" no_mail "$tmp/box"
check "stop on alpha" agent alpha stop "${PLAIN[@]}"
check "one mail received" one_mail "$tmp/box"
check "subject: 'Duet share: group share released by alpha'" [ "$(header Subject)" = "Duet share: group share released by alpha" ]
check "body: event" body_has "Event:  stop (group share released)"
check "monitor after stop: 7" rc_is 7 agent alpha monitor "${PLAIN[@]}"
check "stop again: success" agent alpha stop "${PLAIN[@]}"
check "no mail for a stop on a stopped resource" no_mail "$tmp/box"
check "start on beta" agent beta start "${PLAIN[@]}"
check "one mail: 'Duet share: group share acquired by beta'" eval 'one_mail "$tmp/box" && [ "$(header Subject)" = "Duet share: group share acquired by beta" ]'
check "duetd's blocked alert on a started resource: start with DUET_EVENT=blocked" \
  lab exec beta env HA_RSCTMP="$tmp/rsc-beta" OCF_RESOURCE_INSTANCE=alert DUET_GROUP=share DUET_EVENT=blocked \
  DUET_REASON="stop of echosvc: generic error" "${PLAIN[@]/#/OCF_RESKEY_}" "$AGENT" start 2>> "$tmp/agent.log"
check "one mail: 'Duet share: group share BLOCKED on beta'" eval 'one_mail "$tmp/box" && [ "$(header Subject)" = "Duet share: group share BLOCKED on beta" ]'
check "  it gives the reason and the command to run" eval 'body_has "Reason: stop of echosvc: generic error" && body_has "    hactl cleanup share"'
check "  and the resource is still started" agent beta monitor "${PLAIN[@]}"
check "stop on beta" agent beta stop "${PLAIN[@]}"
check "one mail: released by beta" eval 'one_mail "$tmp/box" && [ "$(header Subject)" = "Duet share: group share released by beta" ]'
check "[mail] from and starttls = false from duetd's environment" lab exec alpha env HA_RSCTMP="$tmp/rsc-alpha" \
  OCF_RESOURCE_INSTANCE=alert2 DUET_MAIL_FROM=cluster@example.org DUET_MAIL_STARTTLS=0 "${PLAIN[@]/#/OCF_RESKEY_}" "$AGENT" start 2>> "$tmp/agent.log"
check "one mail from cluster@example.org" eval 'one_mail "$tmp/box" && [ "$(header From)" = "cluster@example.org" ]'
lab exec alpha env HA_RSCTMP="$tmp/rsc-alpha" OCF_RESOURCE_INSTANCE=alert2 "${PLAIN[@]/#/OCF_RESKEY_}" "$AGENT" stop 2> /dev/null
new_mails "$tmp/box" > /dev/null
check "relay from DUET_MAIL_RELAY, non-ASCII subject" lab exec alpha env HA_RSCTMP="$tmp/rsc-alpha" \
  DUET_MAIL_RELAY=$RELAY:2525 OCF_RESKEY_email=root "OCF_RESKEY_subject=Partage été" "$AGENT" start 2>> "$tmp/agent.log"
check "one mail: 'Partage été: resources acquired by alpha'" eval 'one_mail "$tmp/box" && [ "$(header Subject)" = "Partage été: resources acquired by alpha" ]'
lab exec alpha env HA_RSCTMP="$tmp/rsc-alpha" DUET_MAIL_RELAY=$RELAY:2525 OCF_RESKEY_email=root \
  "OCF_RESKEY_subject=Partage été" "$AGENT" stop 2> /dev/null
new_mails "$tmp/box" > /dev/null

# --- a relay that fails: logged, start and stop still succeed within the timeout ----------------
t0=$(now_ms)
check "start with a relay that refuses connections: success" agent alpha start "${PLAIN[@]}" relay=$RELAY:2599 timeout=2
took=$(( $(now_ms) - t0 ))
check "the failure is logged" grep -q "not sent ($RELAY:2599: Connection refused)" "$tmp/last.log"
check "and it took ${took} ms (under the 2 s timeout)" [ "$took" -lt 2000 ]
check "monitor: started all the same" agent alpha monitor "${PLAIN[@]}"
t0=$(now_ms)
check "stop with a relay that never answers: success" agent alpha stop "${PLAIN[@]}" relay=$RELAY:2527 timeout=2
took=$(( $(now_ms) - t0 ))
check "the failure is logged" grep -q "not sent (no complete exchange with $RELAY:2527 within 2s)" "$tmp/last.log"
check "and it took ${took} ms (the 2 s timeout, under 3x)" in_range "$took" 2000 6000
check "monitor: stopped" rc_is 7 agent alpha monitor "${PLAIN[@]}"
check "no mail reached the real server meanwhile" no_mail "$tmp/box"

# --- STARTTLS ----------------------------------------------------------------------------------
TLS=(relay=$RELAY:2526 email=ops@example.net "subject=Duet share")
check "start through a relay that requires STARTTLS" agent alpha start "${TLS[@]}"
check "one mail received over TLS" one_mail "$tmp/tlsbox"
check "the log says STARTTLS, certificate not verified" grep -q "via $RELAY:2526 with STARTTLS (certificate not verified)" "$tmp/last.log"
check "stop with tls_verify=true: success" agent alpha stop "${TLS[@]}" tls_verify=true
check "the self-signed certificate is refused (logged)" grep -q "not sent (TLS with $RELAY:2526 failed: .*CERTIFICATE_VERIFY_FAILED" "$tmp/last.log"
check "and no mail was delivered" no_mail "$tmp/tlsbox"
check "start with tls_verify=true and tls_ca=the certificate" agent alpha start "${TLS[@]}" tls_verify=true tls_ca="$tmp/cert.pem"
check "one mail received" one_mail "$tmp/tlsbox"
check "the log says the certificate was verified" grep -q "with STARTTLS (certificate verified)" "$tmp/last.log"
check "stop with tls_verify=true against a relay without STARTTLS: success" agent alpha stop "${PLAIN[@]}" tls_verify=true
check "it refused to send in clear (logged)" grep -q "offers no STARTTLS and tls_verify is on: not sending in clear" "$tmp/last.log"
check "nothing delivered in clear" no_mail "$tmp/box"

# --- bad parameters ----------------------------------------------------------------------------
check "no email: not configured (6)" rc_is 6 agent alpha validate-all
check "email 'a b@c': not configured (6)" rc_is 6 agent alpha validate-all "email=a b@c"
check "relay port 0: not configured (6)" rc_is 6 agent alpha validate-all email=root relay=$RELAY:0
check "timeout=0: not configured (6)" rc_is 6 agent alpha validate-all email=root timeout=0
check "tls_verify=maybe: not configured (6)" rc_is 6 agent alpha validate-all email=root tls_verify=maybe
check "unreadable tls_ca: not installed (5)" rc_is 5 agent alpha validate-all email=root tls_ca=/nonexistent/ca.pem

finish
