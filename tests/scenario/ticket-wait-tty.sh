#!/bin/bash
# `resbus ticket-wait` on a terminal: stderr keeps one line saying why the
# ticket waits (resbusd's waiting reason) and for how long, drawn again as
# the reason changes, gone once the resource comes; kept above the error
# when the wait times out.  The terminal is a real pseudo-terminal, made
# by script(1).  Piped, ticket-wait says nothing on stderr, as resalloc's.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup ticket-wait-tty
command -v script >/dev/null ||
    rb_fail "script is missing (bsdutils; scripts/deps.sh installs it)"
rb_server_yaml
# One resource at most, started on demand in 3 s, and no reuse between
# tickets without a sandbox: every ticket waits for a start of its own.
rb_pools <<EOF
one:
  max: 1
  cmd_new: "RESBUS_LOCAL_DELAY=3 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [one]
EOF
rb_start_worker
rb_start_broker

# ---- piped: silent ---------------------------------------------------------
a=$(rb_resbus ticket --tag one) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$a" --timeout 60 >"$RB_TMP/a.out" 2>"$RB_TMP/a.err" ||
    rb_fail "resbus ticket-wait $a failed ($?): $(cat "$RB_TMP/a.err")"
rb_assert_match '^local:' "$(cat "$RB_TMP/a.out")" "ticket $a's data"
rb_assert_eq "" "$(cat "$RB_TMP/a.err")" "stderr of a piped ticket-wait"
rb_log "piped: ticket $a waited for its start in silence"

# ---- on a terminal: the reason, as it changes --------------------------------
b=$(rb_resbus ticket --tag one) || rb_fail "resbus ticket failed ($?)"
# ontty FILE CMD...: CMD on a pseudo-terminal 200 columns wide, all it
# writes (stdout and stderr) in FILE; script's exit status is CMD's.
ontty() {
	local file=$1 cmd
	shift
	printf -v cmd '%q ' "$@"
	timeout -k 5 120 script -qefc "stty cols 200 rows 50; exec $cmd" \
	    "$file" </dev/null >/dev/null
}
ontty "$RB_TMP/b.tty" "$RB_RESBUS" ticket-wait "$b" --timeout 60 &
tty_pid=$!
rb_track "$tty_pid"
shows() {
	tr '\r' '\n' <"$RB_TMP/b.tty" | grep -q -- "$1"
}
rb_wait_for "ticket $b's line with the pool at its max" 30 \
    shows "ticket $b waiting for [0-9]*s: no free resource with tags one; pool one at max 1"
rb_resbus ticket-close "$a" || rb_fail "resbus ticket-close $a failed ($?)"
rb_wait_for "ticket $b's line with a start for it" 30 \
    shows "ticket $b waiting for [0-9]*s: resource [0-9]* [^ ]* is starting for it in pool one"
wait "$tty_pid" || rb_fail "resbus ticket-wait $b on a terminal failed ($?): $(cat "$RB_TMP/b.tty")"
python3 - "$RB_TMP/b.tty" "$b" <<'EOF' || rb_fail "ticket-wait's terminal: $(cat -A "$RB_TMP/b.tty")"
import re, sys
# The terminal turns each newline into CR LF; the line's own CRs remain.
# script(1) adds a first and a last line of its own.
raw = open(sys.argv[1], "rb").read().decode().replace("\r\n", "\n")
raw = re.sub(r"(?m)^Script (started|done) on .*\n?", "", raw)
b = sys.argv[2]
# Every state of the line is drawn from its start, over the last one.
states = [s for s in raw.split("\r") if s.strip()]
lines = [s for s in states if s.startswith("ticket %s waiting for " % b)]
assert lines, states
reasons = []
for s in lines:
    m = re.match(r"ticket %s waiting for (\d+)s: (.*?) *$" % b, s)
    assert m, s
    assert len(s) <= 199, s  # never wider than the terminal
    why = re.sub(r"\d+", "N", m.group(2))
    if not reasons or reasons[-1] != why:
        reasons.append(why)
# The pool at its max first, then the start for this ticket.
assert reasons[0] == "no free resource with tags one; pool one at max N", reasons
assert reasons[-1].startswith("resource N "), reasons
assert reasons[-1].endswith(" is starting for it in pool one"), reasons
# The time waited goes up (the start alone takes 3 s).
secs = [int(re.match(r"ticket \S+ waiting for (\d+)s", s).group(1)) for s in lines]
assert secs == sorted(secs) and secs[-1] >= 3, secs
# Then the line is blanked out and the resource's data follows.
tail = raw.rsplit("\r", 2)
assert tail[-2].strip() == "", tail
assert re.fullmatch(r"local:\S+\n*", tail[-1]), tail
print(" -> ".join(reasons))
EOF
rb_log "on a terminal: $(tr '\r' '\n' <"$RB_TMP/b.tty" | grep -c "waiting for") states of ticket $b's line"

# ---- on a terminal, timed out: the last line stays above the error -----------
c=$(rb_resbus ticket --tag one) || rb_fail "resbus ticket failed ($?)"
if ontty "$RB_TMP/c.tty" "$RB_RESBUS" ticket-wait "$c" --timeout 3; then
	rb_fail "ticket-wait $c did not time out: $(cat "$RB_TMP/c.tty")"
fi
python3 - "$RB_TMP/c.tty" "$c" <<'EOF' || rb_fail "a timed-out wait on a terminal: $(cat -A "$RB_TMP/c.tty")"
import re, sys
raw = open(sys.argv[1], "rb").read().decode().replace("\r\n", "\n")
raw = re.sub(r"(?m)^Script (started|done) on .*\n?", "", raw)
c = sys.argv[2]
# After the last redraw: the line, ended, and the error below it.
last = raw.split("\r")[-1]
assert re.fullmatch(r"ticket %s waiting for [0-9]+s: no free resource with "
                    r"tags one; pool one at max 1 *\n"
                    r"resbus: ticket %s got no resource within 3 s\n+"
                    % (c, c), last), repr(last)
EOF

# ---- piped again, a ticket that waits and times out: only the error --------
if rb_resbus ticket-wait "$c" --timeout 3 >"$RB_TMP/c.out" 2>"$RB_TMP/c.err"; then
	rb_fail "ticket-wait $c did not time out"
fi
rb_assert_eq "resbus: ticket $c got no resource within 3 s" "$(cat "$RB_TMP/c.err")" \
    "stderr of a piped ticket-wait that timed out"
rb_resbus ticket-close "$c" || rb_fail "resbus ticket-close $c failed ($?)"
rb_resbus ticket-close "$b" || rb_fail "resbus ticket-close $b failed ($?)"
rb_done
