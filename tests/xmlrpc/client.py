#!/usr/bin/python3
"""Drives resbus-xmlrpc the way resalloc's clients do.

    client.py URL TAG STEP

URL is the gateway (http://host:port/), TAG an on-demand tag of a pool
with max 1 whose cmd_new takes a few seconds, so that a fresh ticket is
not ready at once.  STEP is one of:

  basic    take, collect (not ready, then ready), wait, close a ticket
           with resalloc's own call shapes; unknown ids, faults, the
           HTTP edges, /RPC2
  block    a waitTicket blocked on one connection while calls on others
           go on, and is woken when its ticket gets the resource
  abandon  takes a ticket that cannot be served (TAG's pool is full:
           the ticket from `hold` holds it), and gives up waiting for it
           after 2 s, dropping the connection; prints the ticket id
  hold     takes a ticket, waits for it, prints its id
  linger   takes a ticket, waits for it and prints its id, then keeps
           its connection (and so its gateway session) open until
           standard input ends, and closes the ticket through it
  close ID closes ticket ID

Only the standard library is used: xmlrpc.client is what resalloc's
client library is built on.  Any failed check raises, so the exit status
is non-zero and the traceback says what was expected.
"""

import http.client
import socket
import sys
import threading
import time
import urllib.parse
import xmlrpc.client


def proxy(url, timeout=None):
    """A ServerProxy as resalloc's Connection makes it (allow_none)."""
    transport = None
    if timeout is not None:
        transport = TimeoutTransport(timeout)
    return xmlrpc.client.ServerProxy(url, allow_none=True,
                                     transport=transport)


class TimeoutTransport(xmlrpc.client.Transport):
    """A transport whose socket gives up after TIMEOUT seconds."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_fault(call, text, *args):
    try:
        result = call(*args)
    except xmlrpc.client.Fault as f:
        expect(text in f.faultString,
               "fault %r does not mention %r" % (f.faultString, text))
        return f
    raise AssertionError("%r%r answered %r, expected a fault with %r"
                         % (call, args, result, text))


def http_raw(url, method, path, body=None, headers=None):
    """One raw HTTP request; (status, body)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def http_declared_length(url, length):
    """The status answered to a POST that announces LENGTH bytes of body
    but sends none."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml"
                  b"\r\nContent-Length: %d\r\n\r\n"
                  % (u.hostname.encode(), length))
        line = s.makefile("rb").readline()
    return int(line.split()[1])


def step_basic(url, tag):
    p = proxy(url)

    methods = p.system.listMethods()
    for m in ("takeTicket", "collectTicket", "waitTicket", "closeTicket"):
        expect(m in methods, "%s missing from listMethods %r" % (m, methods))

    # resalloc's Connection.newTicket(tags) with allow_none: the sandbox
    # goes as nil here, as other resalloc-era clients send it.
    tid = p.takeTicket([tag], None)
    expect(isinstance(tid, int) and tid > 0, "ticket id %r" % (tid,))
    print("ticket", tid, flush=True)

    # Just taken: cmd_new is still booting, so not ready.
    c = p.collectTicket(tid)
    expect(c == {"ready": False, "output": None, "closed": False,
                 "failed": False}, "fresh ticket collected as %r" % (c,))
    # resalloc's CLI sends the id as the string from its command line.
    c = p.collectTicket(str(tid))
    expect(c["ready"] is False, "collect by string id: %r" % (c,))

    # waitTicket blocks until the resource is there.
    t0 = time.monotonic()
    data = p.waitTicket(str(tid))
    expect(isinstance(data, xmlrpc.client.Binary),
           "waitTicket answered %r, not base64" % (data,))
    expect(data.data.startswith(b"local:"), "resource data %r" % (data.data,))
    print("waited %.1f s for %r" % (time.monotonic() - t0, data.data),
          flush=True)

    c = p.collectTicket(tid)
    expect(c["ready"] is True and c["closed"] is False
           and c["failed"] is False, "ready ticket collected as %r" % (c,))
    expect(isinstance(c["output"], xmlrpc.client.Binary)
           and c["output"].data == data.data,
           "output %r differs from waitTicket's %r" % (c["output"], data))
    # resalloc's Ticket.wait(): str() of the Binary is the data.
    expect(str(p.waitTicket(tid)) == data.data.decode("latin-1"),
           "second waitTicket of a ready ticket")

    expect(p.closeTicket(str(tid)) is None, "closeTicket answers nil")
    c = p.collectTicket(tid)
    expect(c["ready"] is True and c["closed"] is True,
           "closed ticket collected as %r" % (c,))
    # Closing twice is fine, as in resalloc.
    expect(p.closeTicket(tid) is None, "second closeTicket")

    # Unknown ids: collect answers nils, close and wait fault.
    unknown = 999999
    c = p.collectTicket(unknown)
    expect(c == {"ready": None, "output": None, "closed": None,
                 "failed": None}, "unknown ticket collected as %r" % (c,))
    c = p.collectTicket("not-a-number")
    expect(c["ready"] is None, "non-numeric id collected as %r" % (c,))
    expect_fault(p.closeTicket, "no such ticket %d" % unknown, unknown)
    expect_fault(p.closeTicket, "no such ticket %d" % unknown, str(unknown))
    expect_fault(p.waitTicket, "non-existing ticket", unknown)

    # Bad arguments are faults, not crashes.
    expect_fault(p.takeTicket, "invalid tag", ["a b"])
    expect_fault(p.takeTicket, "at least one tag", [])
    expect_fault(p.takeTicket, "tags must be", "notalist")
    expect_fault(p.collectTicket, "ticket_id must be", 1.5)
    expect_fault(p.closeTicket, "takes 1 to 1 arguments")
    f = expect_fault(p.noSuchMethod, "is not supported")
    expect(f.faultCode == -32601, "fault code %r" % (f.faultCode,))

    # /RPC2 serves the same methods.
    p2 = proxy(url.rstrip("/") + "/RPC2")
    expect("takeTicket" in p2.system.listMethods(), "/RPC2 listMethods")
    expect(p2.collectTicket(unknown)["ready"] is None, "/RPC2 collect")

    # HTTP edges.
    status, _ = http_raw(url, "GET", "/")
    expect(status == 405, "GET / answered %d" % status)
    status, _ = http_raw(url, "POST", "/elsewhere", b"<x/>")
    expect(status == 404, "POST /elsewhere answered %d" % status)
    # Too large a body is refused from its Content-Length alone, before
    # it is sent; one sent in chunks, once it has come past 1 MiB.
    status = http_declared_length(url, 1024 * 1024 + 1)
    expect(status == 413, "Content-Length 1 MiB + 1 answered %d" % status)
    chunks = (b" " * 65536 for _ in range(17))
    # (An iterable body without a length goes chunked.)
    status, _ = http_raw(url, "POST", "/", chunks,
                         {"Content-Type": "text/xml"})
    expect(status == 413, "a chunked 1 MiB + 64 KiB body answered %d"
           % status)
    status, body = http_raw(url, "POST", "/", b"<methodCall><oops",
                            {"Content-Type": "text/xml"})
    expect(status == 200 and b"<fault>" in body and b"-32700" in body,
           "malformed XML answered %d %r" % (status, body))
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<methodCall><methodName>collectTicket</methodName><params>'
            b'<param><value><string>&b;</string></value></param></params>'
            b'</methodCall>')
    status, body = http_raw(url, "POST", "/RPC2", bomb)
    expect(status == 200 and b"document type declaration" in body,
           "a document with entities answered %d %r" % (status, body))

    # A sandboxed ticket, the way resalloc's newTicket(tags, sandbox)
    # passes it, is served and closed like any other.
    tid = p.takeTicket([tag], "sandbox-1")
    data = p.waitTicket(tid)
    expect(data.data.startswith(b"local:"), "sandboxed ticket's data")
    p.closeTicket(tid)
    print("basic: OK", flush=True)


def step_block(url, tag):
    holder = proxy(url)
    t1 = holder.takeTicket([tag])
    holder.waitTicket(t1)
    # TAG's pool is full now: t2 waits until t1 is closed.
    t2 = holder.takeTicket([tag])
    result = {}

    def waiter():
        try:
            result["data"] = proxy(url).waitTicket(t2)
        except Exception as e:  # reported below
            result["error"] = e

    th = threading.Thread(target=waiter, daemon=True)
    th.start()
    time.sleep(1.5)
    expect(th.is_alive(), "waitTicket %d returned early: %r" % (t2, result))
    # Other connections are served while that one blocks.
    t0 = time.monotonic()
    for _ in range(5):
        c = proxy(url).collectTicket(t2)
        expect(c["ready"] is False, "t2 collected as %r" % (c,))
    expect(time.monotonic() - t0 < 5, "calls slowed by a blocked wait")
    holder.closeTicket(t1)
    th.join(90)
    expect(not th.is_alive(), "waitTicket %d not woken within 90 s" % t2)
    expect("data" in result, "waitTicket %d failed: %r" % (t2, result))
    expect(result["data"].data.startswith(b"local:"), "t2's data")
    holder.closeTicket(t2)
    print("block: OK", flush=True)


def step_hold(url, tag):
    p = proxy(url)
    tid = p.takeTicket([tag])
    p.waitTicket(tid)
    print(tid, flush=True)


def step_linger(url, tag):
    p = proxy(url)
    tid = p.takeTicket([tag])
    p.waitTicket(tid)
    print(tid, flush=True)
    sys.stdin.read()
    p.closeTicket(tid)
    print("linger: OK", flush=True)


def step_abandon(url, tag):
    tid = proxy(url).takeTicket([tag])
    try:
        data = proxy(url, timeout=2).waitTicket(tid)
    except (TimeoutError, OSError):
        print(tid, flush=True)
        return
    raise AssertionError("waitTicket %d answered %r although its pool is "
                         "full" % (tid, data))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    url, tag, step = sys.argv[1:4]
    if step == "close":
        proxy(url).closeTicket(int(sys.argv[4]))
        return
    steps = {"basic": step_basic, "block": step_block, "hold": step_hold,
             "linger": step_linger, "abandon": step_abandon}
    steps[step](url, tag)


if __name__ == "__main__":
    main()
