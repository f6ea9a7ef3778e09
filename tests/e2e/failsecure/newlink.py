#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Counted UDP bursts for the newlink scenario (tests/e2e/failsecure/newlink.sh).

Run with Debian's /usr/bin/python3 (stdlib only) inside a lab namespace:

  recv --ports P,P.. --run RUN --out FILE [--duration S]
        Bind UDP on each port, IPv4 and IPv6 (one dual-stack socket per
        port), count the datagrams of this run per stream until SIGTERM
        (then read on until the sockets are quiet for 0.5 s, at most 5 s)
        or --duration. Writes FILE: one "NAME COUNT" line per stream that
        arrived. Prints "listening" once bound.
  send --stream NAME,SRC,DST,PORT... --count N --run RUN [--interval S]
        N datagrams per stream, one round every S seconds (default
        0.002), payload "PCNL RUN NAME SEQ" from SRC to DST:PORT.
        Prints "sent NAME OK ERRORS" per stream: OK left the socket,
        ERRORS were refused (the interface gone, no route).

Bounded in time: nothing outlives MAX_LIFETIME.
"""

import argparse
import os
import select
import signal
import socket
import sys
import time

MAX_LIFETIME = 300.0
QUIET = 0.5
DRAIN = 5.0
MAGIC = b"PCNL"


def say(*words):
    print(*words, flush=True)


def recv_main(args):
    socks = []
    for port in (int(p) for p in args.ports.split(",")):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind(("::", port))
        s.setblocking(False)
        socks.append(s)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    counts = {}
    seen = set()
    deadline = time.monotonic() + min(args.duration, MAX_LIFETIME)
    say("listening", args.ports)
    quiet_until = drain_until = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if stop and quiet_until is None:
            quiet_until, drain_until = now + QUIET, now + DRAIN
        if quiet_until is not None and (now >= quiet_until or
                                        now >= drain_until):
            break
        ready, _, _ = select.select(socks, [], [], 0.1)
        if ready and quiet_until is not None:
            quiet_until = time.monotonic() + QUIET
        for s in ready:
            for _ in range(256):
                try:
                    data = s.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                parts = data.split(b" ")
                if len(parts) != 4 or parts[0] != MAGIC or \
                   parts[1] != args.run.encode():
                    continue
                key = (parts[2], parts[3])
                if key in seen:
                    continue
                seen.add(key)
                name = parts[2].decode(errors="replace")
                counts[name] = counts.get(name, 0) + 1
    with open(args.out + ".tmp", "w") as f:
        for name, n in sorted(counts.items()):
            f.write("%s %d\n" % (name, n))
    os.rename(args.out + ".tmp", args.out)
    return 0


def send_main(args):
    streams = []
    for spec in args.stream:
        name, src, dst, port = spec.split(",")
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((src, 0))
        streams.append([name, s, dst, int(port), 0, 0])
    deadline = time.monotonic() + MAX_LIFETIME
    for seq in range(args.count):
        if time.monotonic() > deadline:
            break
        for st in streams:
            msg = b"%s %s %s %d" % (MAGIC, args.run.encode(),
                                    st[0].encode(), seq)
            try:
                st[1].sendto(msg, (st[2], st[3]))
                st[4] += 1
            except OSError:
                st[5] += 1
        time.sleep(args.interval)
    for st in streams:
        say("sent", st[0], st[4], st[5])
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("recv")
    p.add_argument("--ports", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=120)
    p = sub.add_parser("send")
    p.add_argument("--stream", action="append", required=True,
                   help="NAME,SRC,DST,PORT")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--interval", type=float, default=0.002)
    args = ap.parse_args()
    return recv_main(args) if args.cmd == "recv" else send_main(args)


if __name__ == "__main__":
    sys.exit(main())
