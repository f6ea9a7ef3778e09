#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers of the outsider "metrics" scenario (tests/e2e/outsider/metrics.sh).

  trickle HOST PORT --sources A,B,.. --per-source K --seconds S [--interval I]
      The slow-header attack: K connections from each source address,
      each sending a request line and then one header byte every I
      seconds, never finishing the headers. A connection the server
      closes is opened again (50 ms later), as an attacker would, to take
      the slot back. Prints "attack on" once every connection was tried,
      and at the end (S seconds, or SIGTERM) "summary opened=N
      server_closed=N max_life_ms=N": max_life_ms is the longest a
      connection lived before the server closed it.
  poll URL.. --seconds S [--interval I] [--timeout T]
      GETs each URL in turn every I seconds until S seconds have passed
      (or SIGTERM); one line "probe URL STATUS MS" each (STATUS 000: no
      answer within T), then "summary URL ok=N total=N max_ms=N" per URL
      (ok: status 200).
"""
import argparse
import errno
import http.client
import selectors
import signal
import socket
import sys
import time
import urllib.parse

PREFIX = b"GET /metrics HTTP/1.1\r\nHost: portcullis\r\nX-Slow: "
REOPEN_S = 0.05
STOP = []


def on_term(signum, frame):
    STOP.append(signum)


def now():
    return time.monotonic()


class Slot:
    def __init__(self, source):
        self.source = source
        self.sock = None
        self.connected = 0.0	# when the handshake finished; 0: not yet
        self.next_byte = 0.0
        self.retry_at = 0.0


def slot_open(sel, slot, host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.bind((slot.source, 0))
        s.connect_ex((host, port))
    except OSError:
        s.close()
        slot.retry_at = now() + REOPEN_S
        return
    slot.sock = s
    slot.connected = 0.0
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, slot)


def slot_close(sel, slot):
    sel.unregister(slot.sock)
    slot.sock.close()
    slot.sock = None
    slot.retry_at = now() + REOPEN_S


def trickle(args):
    stats = {"opened": 0, "server_closed": 0, "max_life_ms": 0}
    sel = selectors.DefaultSelector()
    slots = [Slot(src) for src in args.sources.split(",")
             for _ in range(args.per_source)]
    start = now()
    announced = False
    for slot in slots:
        slot_open(sel, slot, args.host, args.port)
    while not STOP and now() - start < args.seconds:
        for key, ev in sel.select(timeout=0.05):
            slot = key.data
            if not slot.connected and ev & selectors.EVENT_WRITE:
                if slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    slot_close(sel, slot)
                    continue
                slot.connected = now()
                stats["opened"] += 1
                sel.modify(slot.sock, selectors.EVENT_READ, slot)
                try:
                    slot.sock.send(PREFIX)
                except OSError:
                    pass
                slot.next_byte = now() + args.interval
            elif ev & selectors.EVENT_READ:
                try:
                    data = slot.sock.recv(4096)
                except OSError:
                    data = b""
                if slot.connected:
                    stats["server_closed"] += 1
                    life = int((now() - slot.connected) * 1000)
                    stats["max_life_ms"] = max(stats["max_life_ms"], life)
                del data
                slot_close(sel, slot)
        t = now()
        for slot in slots:
            if slot.sock is None and t >= slot.retry_at:
                slot_open(sel, slot, args.host, args.port)
            elif slot.sock is not None and slot.connected and t >= slot.next_byte:
                try:
                    slot.sock.send(b"a")
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        stats["server_closed"] += 1
                        slot_close(sel, slot)
                        continue
                slot.next_byte = t + args.interval
        if not announced and t - start >= 1.0:
            print("attack on", flush=True)
            announced = True
    print("summary " + " ".join("%s=%d" % kv for kv in stats.items()), flush=True)


def get(url, timeout):
    u = urllib.parse.urlsplit(url)
    t0 = now()
    status = 0
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        c.request("GET", u.path, headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        status = r.status
        c.close()
    except (OSError, http.client.HTTPException):
        status = 0
    return status, int((now() - t0) * 1000)


def poll(args):
    res = {url: [0, 0, 0] for url in args.urls}	# ok, total, max_ms
    start = now()
    while not STOP and now() - start < args.seconds:
        t0 = now()
        for url in args.urls:
            status, ms = get(url, args.timeout)
            print("probe %s %03d %d" % (url, status, ms), flush=True)
            r = res[url]
            r[0] += status == 200
            r[1] += 1
            r[2] = max(r[2], ms)
            if STOP:
                break
        time.sleep(max(0.0, args.interval - (now() - t0)))
    for url, (ok, total, max_ms) in res.items():
        print("summary %s ok=%d total=%d max_ms=%d" % (url, ok, total, max_ms),
              flush=True)


def parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("trickle")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("--sources", required=True)
    s.add_argument("--per-source", type=int, default=4)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--interval", type=float, default=0.5)
    s.set_defaults(fn=trickle)
    s = sub.add_parser("poll")
    s.add_argument("urls", nargs="+")
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--interval", type=float, default=0.25)
    s.add_argument("--timeout", type=float, default=3.0)
    s.set_defaults(fn=poll)
    return p


def main():
    args = parser().parse_args()
    signal.signal(signal.SIGTERM, on_term)
    args.fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
