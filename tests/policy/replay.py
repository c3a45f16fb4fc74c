#!/usr/bin/env python3
"""Replays resbusd's log and checks the policy at every step.

The policy scenario tests run resbusd at log level debug; its INFO lines

    ticket N: OPEN, tags A+B, owner O[, sandbox S][, leased]
    ticket N: got resource M POOL_ID_DATETIME
    ticket N: READY -> CLOSED   (or -> FAILED)
    ticket N: OPEN -> CLOSED    (closed while waiting: by its holder,
                                 its deadline or its lease)

are, in order, what happened to every ticket.  This script replays them
and counts, after each line, the resources each class holds in each pool
and the resources each owner (and everyone) holds with each tag, and
fails when one of the configured caps or limits is exceeded.  With
--strict-priority it also fails when a ticket gets a resource of pool P
while a ticket of a higher class waits that P could serve and that no
limit or cap kept back, and that ticket still waits, so kept back, once
the scheduling step is over (the run of assignment lines ends): classes
are served by priority, then FIFO.

The classes of the tickets are not in the log; --classes names a file
of "ID CLASS" lines (what the test asked for).  Pools are named by the
prefix of their resources' names (name_pattern's default).

Prints a summary line; exits 1 after printing each violation (the first
20), 2 on bad input.
"""

import argparse
import re
import sys
from collections import defaultdict

OPEN_RE = re.compile(r"ticket (\d+): OPEN, tags ([^,]+), owner ([^,\s]+)")
GOT_RE = re.compile(r"ticket (\d+): got resource (\d+) (\S+)")
MOVE_RE = re.compile(r"ticket (\d+): (OPEN|READY|FAILED) -> (CLOSED|FAILED)")
READY_RE = re.compile(r"ticket \d+: OPEN -> READY")
EVENT_RE = re.compile(r" (INFO|WARN) ")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", help="resbusd's output")
    ap.add_argument("--classes", help='file of "ID CLASS" lines')
    ap.add_argument("--prio", action="append", default=[],
                    metavar="CLASS=N", help="a class's priority")
    ap.add_argument("--cap", action="append", default=[],
                    metavar="CLASS:POOL=N", help="a class's cap on a pool")
    ap.add_argument("--limit", action="append", default=[],
                    metavar="TAG:per_owner=N|TAG:total=N",
                    help="a limit; TAG '*' counts every resource")
    ap.add_argument("--pool", action="append", default=[],
                    metavar="POOL=TAG,TAG", help="a pool's tags")
    ap.add_argument("--strict-priority", action="store_true")
    return ap.parse_args()


def split_eq(spec, what):
    if "=" not in spec:
        sys.exit(f"replay: bad {what} '{spec}'")
    k, v = spec.rsplit("=", 1)
    return k, v


class Replay:
    def __init__(self, a):
        self.prio = {}
        for s in a.prio:
            k, v = split_eq(s, "--prio")
            self.prio[k] = int(v)
        self.caps = {}
        for s in a.cap:
            k, v = split_eq(s, "--cap")
            cls, pool = k.split(":", 1)
            self.caps[(cls, pool)] = int(v)
        self.limits = []
        for s in a.limit:
            k, v = split_eq(s, "--limit")
            tag, kind = k.split(":", 1)
            if kind not in ("per_owner", "total"):
                sys.exit(f"replay: bad --limit '{s}'")
            self.limits.append((tag, kind, int(v)))
        self.pools = {}
        for s in a.pool:
            k, v = split_eq(s, "--pool")
            self.pools[k] = set(v.split(","))
        self.cls = {}
        if a.classes:
            with open(a.classes, encoding="utf-8") as f:
                for line in f:
                    w = line.split()
                    if len(w) >= 2:
                        self.cls[int(w[0])] = w[1]
        self.strict = a.strict_priority
        self.tickets = {}        # id -> {"tags", "owner", "state", "pool"}
        self.waiting = {}        # id -> order of opening, while OPEN
        self.held_cap = defaultdict(int)    # (class, pool) -> n
        self.held_lim = defaultdict(int)    # (limit index, owner|None) -> n
        self.peak_cap = defaultdict(int)
        self.peak_lim = defaultdict(int)
        self.errors = []
        self.served = 0
        self.closed_waiting = 0
        self.suspects = []       # (lineno, tid, uid, pool) of this step

    def error(self, lineno, msg):
        self.errors.append(f"line {lineno}: {msg}")

    def lim_keys(self, t):
        """The limit counters ticket T counts in: (index, owner or None)."""
        keys = []
        for i, (tag, kind, _) in enumerate(self.limits):
            if tag != "*" and tag not in t["tags"]:
                continue
            keys.append(((i, t["owner"] if kind == "per_owner" else None),
                         i))
        return keys

    def limit_blocks(self, t):
        for key, i in self.lim_keys(t):
            if self.held_lim[key] >= self.limits[i][2]:
                return True
        return False

    def cap_blocks(self, tid, pool):
        cap = self.caps.get((self.cls.get(tid), pool))
        return cap is not None and self.held_cap[(self.cls.get(tid), pool)] >= cap

    def charge(self, tid, pool, delta, lineno):
        t = self.tickets[tid]
        c = self.cls.get(tid)
        self.held_cap[(c, pool)] += delta
        cap = self.caps.get((c, pool))
        n = self.held_cap[(c, pool)]
        self.peak_cap[(c, pool)] = max(self.peak_cap[(c, pool)], n)
        if cap is not None and n > cap:
            self.error(lineno, f"class {c} holds {n} resources of pool "
                       f"{pool}, over its cap {cap} (ticket {tid})")
        for key, i in self.lim_keys(t):
            self.held_lim[key] += delta
            n = self.held_lim[key]
            self.peak_lim[key] = max(self.peak_lim[key], n)
            tag, kind, lim = self.limits[i]
            if n > lim:
                who = f"owner {key[1]}" if key[1] is not None else "everyone"
                self.error(lineno, f"{who} holds {n} resources with tag "
                           f"{tag}, over the {kind} limit {lim} "
                           f"(ticket {tid})")

    def could_have(self, uid, pool):
        """Whether waiting ticket UID could take a resource of POOL now."""
        u = self.tickets[uid]
        return (u["tags"] <= self.pools[pool] and not self.limit_blocks(u)
                and not self.cap_blocks(uid, pool))

    def check_priority(self, tid, pool, lineno):
        """Notes the higher-class tickets that could have had this."""
        if pool not in self.pools:
            return
        mine = self.prio.get(self.cls.get(tid), 0)
        for uid in self.waiting:
            if uid == tid:
                continue
            if self.prio.get(self.cls.get(uid), 0) <= mine:
                continue
            if self.could_have(uid, pool):
                self.suspects.append((lineno, tid, uid, pool))

    def end_step(self):
        """The step is over: those noted and still waiting were passed over."""
        seen = set()
        for lineno, tid, uid, pool in self.suspects:
            if uid in seen or uid not in self.waiting:
                continue
            if not self.could_have(uid, pool):
                continue
            seen.add(uid)
            self.error(lineno, f"ticket {tid} (class {self.cls.get(tid)}) "
                       f"got a resource of pool {pool} while ticket {uid} "
                       f"(class {self.cls.get(uid)}, higher) waited for it, "
                       f"and still waits after that step")
        self.suspects = []

    def line(self, lineno, text):
        if (self.suspects and EVENT_RE.search(text)
                and not GOT_RE.search(text) and not READY_RE.search(text)):
            self.end_step()
        m = OPEN_RE.search(text)
        if m:
            tid = int(m.group(1))
            self.tickets[tid] = {"tags": set(m.group(2).split("+")),
                                 "owner": m.group(3), "state": "OPEN",
                                 "pool": None}
            self.waiting[tid] = lineno
            return
        m = GOT_RE.search(text)
        if m:
            tid = int(m.group(1))
            t = self.tickets.get(tid)
            if t is None:
                self.error(lineno, f"ticket {tid} got a resource unopened")
                return
            pool = m.group(3).split("_", 1)[0]
            if self.strict:
                self.check_priority(tid, pool, lineno)
            self.waiting.pop(tid, None)
            t["state"] = "READY"
            t["pool"] = pool
            self.served += 1
            self.charge(tid, pool, +1, lineno)
            return
        m = MOVE_RE.search(text)
        if m:
            tid = int(m.group(1))
            t = self.tickets.get(tid)
            if t is None:
                return
            if m.group(2) == "OPEN":
                self.waiting.pop(tid, None)
                self.closed_waiting += 1
            elif m.group(2) == "READY" and t["pool"] is not None:
                self.charge(tid, t["pool"], -1, lineno)
                t["pool"] = None
            t["state"] = m.group(3)

    def summary(self):
        caps = " ".join(f"{c}@{p}={n}" for (c, p), n in
                        sorted(self.peak_cap.items(), key=str) if c)
        lims = " ".join(
            f"{self.limits[i][0]}:{o or 'total'}={n}"
            for (i, o), n in sorted(self.peak_lim.items(), key=str))
        return (f"replay: {len(self.tickets)} tickets opened, "
                f"{self.served} served, {self.closed_waiting} closed while "
                f"waiting, {len(self.waiting)} still waiting; peaks: "
                f"{caps or '-'}; {lims or '-'}")


def main():
    a = parse_args()
    r = Replay(a)
    try:
        with open(a.log, encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                r.line(n, text)
    except OSError as e:
        print(f"replay: {e}", file=sys.stderr)
        return 2
    r.end_step()
    print(r.summary())
    for e in r.errors[:20]:
        print(f"replay: VIOLATION {e}")
    if len(r.errors) > 20:
        print(f"replay: ... {len(r.errors) - 20} more")
    return 1 if r.errors else 0


if __name__ == "__main__":
    sys.exit(main())
