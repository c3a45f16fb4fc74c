#!/usr/bin/env python3
"""Checks what the cluster tests' brokers and clients did.

    check.py [--clients N] --log FILE... --records FILE...

Each --log is the output of one resbusd (several runs of it, each begun
by a "===== resbusd" line that tests/cluster/lib.sh writes); each
--records file is one client's "OK ticket data" lines (or "FAIL ...").
The resbusd INFO lines read are those of tests/policy/replay.py:

    ticket N: OPEN, tags ..., owner ...
    ticket N: got resource M NAME
    ticket N: READY -> CLOSED   (or OPEN/READY/FAILED -> CLOSED/FAILED)

and "active: this resbusd (pid P on HOST) leads since T (epoch E)".

Fails (exit 1, one line a violation) when

  - a client's ticket ID is in another client's record too, or twice in
    one (a ticket ID issued twice);
  - a resource's data reached two tickets' holders (no resource is reused
    in these tests, so each resource serves one ticket in its life);
  - one broker run gave resource M to a ticket while another open ticket
    of that run held it (the replay of crash.sh, one run at a time: state
    in memory is what counts);
  - two runs both logged ticket ID N as OPEN, unless the earlier one did
    so in its last GRACE seconds (--grace, 3): what a broker logs just
    before it is killed or fenced was never committed, and the ID is
    issued again by the next leader; the records' check above is what
    shows that no client got it twice;
  - a run served tickets (got resource) without having logged "active:"
    first, or went on handling tickets (OPEN, got resource) after a later
    run logged "active:", other than in its own last GRACE seconds.
    (Only with --need-active.)

Prints a summary line on success: runs, leaders in order, tickets.
"""

import argparse
import re
import sys
from datetime import datetime, timezone

TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")
OPEN_RE = re.compile(r"ticket (\d+): OPEN, tags ")
GOT_RE = re.compile(r"ticket (\d+): got resource (\d+) (\S+)")
MOVE_RE = re.compile(r"ticket (\d+): (OPEN|READY|FAILED) -> (CLOSED|FAILED)")
ACTIVE_RE = re.compile(r"active: this resbusd \(pid (\d+) on ([^)]*)\)")


def ts(line):
    m = TS_RE.match(line)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=timezone.utc).timestamp()


class Run:
    def __init__(self, log, n):
        self.name = "%s#%d" % (log, n)
        self.opens = {}      # ticket -> time
        self.active = None   # time of the "active:" line
        self.first_got = None
        self.served = []     # times of OPEN and got-resource lines
        self.last = None     # time of the last line
        self.violations = []
        self.holder = {}     # resource -> ticket
        self.holds = {}      # ticket -> resource
        self.got = 0


def read_runs(path):
    runs = []
    run = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("===== resbusd"):
                run = Run(path, len(runs) + 1)
                runs.append(run)
                continue
            if run is None:
                run = Run(path, 1)
                runs.append(run)
            t = ts(line)
            if t is None:
                continue
            run.last = t
            if run.active is None and ACTIVE_RE.search(line):
                run.active = t
                continue
            m = OPEN_RE.search(line)
            if m:
                run.opens.setdefault(int(m.group(1)), t)
                run.served.append(t)
                continue
            m = GOT_RE.search(line)
            if m:
                tk, r = int(m.group(1)), int(m.group(2))
                run.got += 1
                run.served.append(t)
                if run.first_got is None:
                    run.first_got = t
                if r in run.holder and run.holder[r] != tk:
                    run.violations.append(
                        "%s: resource %d given to ticket %d while ticket %d "
                        "held it" % (run.name, r, tk, run.holder[r]))
                run.holder[r] = tk
                run.holds[tk] = r
                continue
            m = MOVE_RE.search(line)
            if m:
                tk = int(m.group(1))
                if tk in run.holds:
                    del run.holder[run.holds.pop(tk)]
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", nargs="+", required=True)
    ap.add_argument("--records", nargs="+", required=True)
    ap.add_argument("--grace", type=float, default=3.0)
    ap.add_argument("--need-active", action="store_true")
    a = ap.parse_args()

    bad = []
    # The clients' records.
    seen_id = {}
    seen_data = {}
    nrec = 0
    for path in a.records:
        with open(path, errors="replace") as f:
            for line in f:
                w = line.split()
                if not w or w[0] != "OK" or len(w) < 3:
                    continue
                nrec += 1
                tid, data = w[1], w[2]
                if tid in seen_id:
                    bad.append("ticket %s got by two cycles (%s, %s)" %
                               (tid, seen_id[tid], path))
                seen_id[tid] = path
                if data in seen_data:
                    bad.append("resource %s given to tickets %s and %s" %
                               (data, seen_data[data], tid))
                seen_data[data] = tid

    runs = []
    for path in a.log:
        runs.extend(read_runs(path))
    for r in runs:
        bad.extend(r.violations)

    # Ticket IDs logged OPEN by two runs.
    first = {}
    for r in sorted(runs, key=lambda r: r.active or r.last or 0):
        for tk, t in r.opens.items():
            if tk in first:
                r0, t0 = first[tk]
                late = r0.last is not None and t0 >= r0.last - a.grace
                if not late:
                    bad.append("ticket %d logged OPEN by %s and by %s" %
                               (tk, r0.name, r.name))
                continue
            first[tk] = (r, t)

    leaders = [r for r in runs if r.active is not None]
    leaders.sort(key=lambda r: r.active)
    if a.need_active:
        for r in runs:
            if r.got and (r.active is None or r.first_got < r.active):
                bad.append("%s served tickets without being active" %
                           r.name)
        # Two leaders at once: a run that handled tickets after the next
        # leader's "active:" line, other than in its own last GRACE
        # seconds (what a killed or fenced broker did last, never
        # committed: the records' checks cover what reached clients).
        for i in range(len(leaders)):
            p = leaders[i]
            for q in leaders[i + 1:]:
                late = [t for t in p.served
                        if t > q.active and t < p.last - a.grace]
                if late:
                    bad.append("%s handled tickets after %s led (%d "
                               "lines, the first %.3f s after)" %
                               (p.name, q.name, len(late),
                                late[0] - q.active))

    for b in bad[:20]:
        print("check: " + b)
    if bad:
        return 1
    print("check: %d cycles recorded, %d broker runs, leaders in order: %s"
          % (nrec, len(runs), ", ".join("%s at %s" % (r.name,
             datetime.fromtimestamp(r.active, timezone.utc).strftime("%H:%M:%S.%f")[:-3])
                                       for r in leaders)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
