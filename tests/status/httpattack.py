#!/usr/bin/env python3
"""httpattack -- hostile HTTP clients for the tests of resbusd's status
server, in the Python standard library only.

  httpattack.py burst HOST PORT N [PER_ADDRESS]
      opens N connections at once, holds them a moment, closes them all;
      with PER_ADDRESS, at most that many from each source address
      127.0.0.2, 127.0.0.3, ... (HOST must be on loopback); prints how
      many the server kept open
  httpattack.py slow HOST PORT N PATH HOLD_S [PER_ADDRESS]
      N clients each send GET PATH and never read the answer (a small
      receive buffer); after HOLD_S seconds they close.  Prints how many
      connected as soon as they have sent their requests.  PER_ADDRESS as
      for burst.
  httpattack.py trickle HOST PORT INTERVAL_S MAX_S
      sends a request header one byte every INTERVAL_S seconds, never
      finishing it; prints the seconds after which the server closed the
      connection, or "open" if it still was after MAX_S
  httpattack.py perip HOST PORT N HOLD_S
      opens N idle connections from one address, holds them HOLD_S
      seconds; prints how many the server kept open after 1 s (a refused
      connection is closed at once)
"""
import socket
import sys
import time


def connect(host, port, rcvbuf=None, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source is not None:
        s.bind((source, 0))
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, port))
    return s


def closed_by_peer(s):
    """True if the peer closed S (EOF or reset) without blocking."""
    s.setblocking(False)
    try:
        data = s.recv(65536)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def burst(host, port, n, per_address):
    socks = []
    for i in range(n):
        source = None
        if per_address:
            source = "127.0.0.%d" % (2 + i // per_address)
        try:
            socks.append(connect(host, port, source=source))
        except OSError:
            pass
    time.sleep(1)
    alive = [s for s in socks if not closed_by_peer(s)]
    for s in socks:
        s.close()
    print(len(alive))


def slow(host, port, n, path, hold_s, per_address):
    socks = []
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode()
    for i in range(n):
        source = None
        if per_address:
            source = "127.0.0.%d" % (2 + i // per_address)
        s = connect(host, port, rcvbuf=4096, source=source)
        s.sendall(req)
        socks.append(s)
    print(len(socks), flush=True)
    time.sleep(hold_s)
    for s in socks:
        s.close()


def trickle(host, port, interval_s, max_s):
    s = connect(host, port)
    req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < max_s:
        try:
            s.sendall(req[i:i + 1])
        except OSError:
            print("%.1f" % (time.monotonic() - t0))
            return
        i += 1
        time.sleep(interval_s)
        if closed_by_peer(s):
            print("%.1f" % (time.monotonic() - t0))
            return
    print("open")


def perip(host, port, n, hold_s):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(host, port))
        except OSError:
            pass
    time.sleep(1)
    alive = [s for s in socks if not closed_by_peer(s)]
    print(len(alive), flush=True)
    time.sleep(hold_s)
    for s in socks:
        s.close()


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    cmd, host, port = argv[1], argv[2], int(argv[3])
    if cmd == "burst" and len(argv) in (5, 6):
        burst(host, port, int(argv[4]), int(argv[5]) if len(argv) == 6 else 0)
    elif cmd == "slow" and len(argv) in (7, 8):
        slow(host, port, int(argv[4]), argv[5], float(argv[6]),
             int(argv[7]) if len(argv) == 8 else 0)
    elif cmd == "trickle" and len(argv) == 6:
        trickle(host, port, float(argv[4]), float(argv[5]))
    elif cmd == "perip" and len(argv) == 6:
        perip(host, port, int(argv[4]), float(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
