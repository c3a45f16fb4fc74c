#!/usr/bin/python3
"""Header-trickling HTTP clients, for tests/hostile/xmlrpc-slow.sh.

    slow.py HOST PORT COUNT SOURCES SECONDS

Opens COUNT connections to HOST:PORT, at once, from the addresses in
SOURCES (comma-separated, taken in turn), and
on each sends a request head one byte a second, never finishing it, for
up to SECONDS.  Prints "open" once every connection is made, then one
line per connection: "closed N AFTER" when the server closed it AFTER
seconds after it opened, or "open N" if it was still open at the end.
A slowloris of the mildest kind: it is never idle, so only a deadline on
the whole request head gets rid of it.
"""

import select
import socket
import sys
import time

HEAD = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        b"X-Slow: " + b"a" * 4096)


def main():
    host, port, count, sources, seconds = sys.argv[1:6]
    count, seconds = int(count), float(seconds)
    sources = sources.split(",")
    conns = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((sources[i % len(sources)], 0))
        s.connect((host, int(port)))
        s.setblocking(False)
        conns.append([s, time.monotonic(), None, 0])
    print("open", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(c[2] is None for c in conns):
        for i, c in enumerate(conns):
            s, t0, closed, sent = c
            if closed is not None:
                continue
            # Closed by the server? (EOF or a reset.)
            r, _, _ = select.select([s], [], [], 0)
            gone = False
            if r:
                try:
                    gone = s.recv(4096) == b""
                except (ConnectionResetError, BrokenPipeError):
                    gone = True
                except BlockingIOError:
                    pass
            if not gone and sent < len(HEAD):
                try:
                    s.send(HEAD[sent:sent + 1])
                    c[3] = sent + 1
                except (ConnectionResetError, BrokenPipeError):
                    gone = True
                except BlockingIOError:
                    pass
            if gone:
                c[2] = time.monotonic() - t0
                print("closed %d %.1f" % (i, c[2]), flush=True)
        time.sleep(1)
    for i, c in enumerate(conns):
        if c[2] is None:
            print("open %d" % i, flush=True)
        c[0].close()


if __name__ == "__main__":
    main()
