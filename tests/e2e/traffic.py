#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Bounded traffic helpers for the Portcullis namespace lab.

Run with Debian's /usr/bin/python3 (stdlib only) inside a namespace:

  tcp-server PORT [--timeout S]        dual-stack line echo server
  udp-server PORT [--timeout S]        dual-stack datagram echo server
  tcp-probe HOST PORT [--timeout S] [--source ADDR]
  udp-probe HOST PORT [--timeout S] [--source ADDR]
  tcp-hold HOST PORT [--interval S] [--count N] [--timeout S]

Servers print "listening PROTO PORT" once bound, then run for at most
--timeout seconds. Probes exit 0 on a full round trip, 1 otherwise, and
never take longer than their --timeout. tcp-hold keeps ONE connection and
prints "rtt I ok" per round trip, then "summary ok=N first_fail=I|none".
"""

import argparse
import select
import signal
import socket
import sys
import threading
import time

EXIT_OK = 0
EXIT_FAIL = 1
MAX_LIFETIME = 3600.0  # no helper outlives this, whatever it is told


def say(*words):
    print(*words, flush=True)


def bounded(seconds):
    return max(0.1, min(float(seconds), MAX_LIFETIME))


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def dual_stack_socket(kind, port):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    return sock


def echo_lines(conn, deadline):
    """Echo whatever arrives until the peer closes or the deadline."""
    with conn:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([conn], [], [], 0.5)
            if not ready:
                continue
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            conn.sendall(data)


def tcp_server(args):
    deadline = time.monotonic() + bounded(args.timeout)
    sock = dual_stack_socket(socket.SOCK_STREAM, args.port)
    sock.listen(64)
    say("listening tcp", args.port)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.5)
        if not ready:
            continue
        conn, _ = sock.accept()
        threading.Thread(target=echo_lines, args=(conn, deadline),
                 daemon=True).start()
    return EXIT_OK


def udp_server(args):
    deadline = time.monotonic() + bounded(args.timeout)
    sock = dual_stack_socket(socket.SOCK_DGRAM, args.port)
    say("listening udp", args.port)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.5)
        if ready:
            data, addr = sock.recvfrom(4096)
            sock.sendto(data, addr)
    return EXIT_OK


def recv_line(sock, deadline):
    """Read up to a newline before the deadline; None on timeout/close."""
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_connect(host, port, timeout, source):
    src = (source, 0) if source else None
    return socket.create_connection((host, port), timeout=timeout,
                    source_address=src)


def tcp_probe(args):
    deadline = time.monotonic() + bounded(args.timeout)
    line = b"portcullis-probe\n"
    try:
        with tcp_connect(args.host, args.port, bounded(args.timeout),
                 args.source) as sock:
            sock.sendall(line)
            got = recv_line(sock, deadline)
    except OSError as e:
        say("fail tcp", args.host, args.port, e)
        return EXIT_FAIL
    if got != line:
        say("fail tcp", args.host, args.port, "no echo")
        return EXIT_FAIL
    say("ok tcp", args.host, args.port)
    return EXIT_OK


def udp_probe(args):
    payload = b"portcullis-probe"
    try:
        with socket.socket(family_of(args.host), socket.SOCK_DGRAM) as sock:
            if args.source:
                sock.bind((args.source, 0))
            sock.settimeout(bounded(args.timeout))
            sock.sendto(payload, (args.host, args.port))
            data, _ = sock.recvfrom(4096)
    except OSError as e:
        say("fail udp", args.host, args.port, e)
        return EXIT_FAIL
    if data != payload:
        say("fail udp", args.host, args.port, "wrong echo")
        return EXIT_FAIL
    say("ok udp", args.host, args.port)
    return EXIT_OK


def hold_round(sock, i, timeout):
    line = b"hold %d\n" % i
    try:
        sock.sendall(line)
    except OSError:
        return False
    return recv_line(sock, time.monotonic() + timeout) == line


def tcp_hold(args):
    count = max(1, min(args.count, 100000))
    try:
        sock = tcp_connect(args.host, args.port, bounded(args.timeout),
                   args.source)
    except OSError as e:
        say("fail connect", e)
        say("summary ok=0 first_fail=0")
        return EXIT_FAIL
    ok, first_fail = 0, None
    # SIGTERM ends the hold after the current round, with its summary.
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with sock:
        for i in range(count):
            if stop:
                break
            if not hold_round(sock, i, bounded(args.timeout)):
                first_fail = i
                say("rtt", i, "fail")
                break
            ok += 1
            say("rtt", i, "ok")
            time.sleep(max(0.0, min(args.interval, 10.0)))
    say("summary ok=%d first_fail=%s" %
        (ok, "none" if first_fail is None else first_fail))
    return EXIT_OK if first_fail is None else EXIT_FAIL


def parser():
    p = argparse.ArgumentParser(description="Portcullis lab traffic")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn in (("tcp-server", tcp_server), ("udp-server", udp_server)):
        s = sub.add_parser(name)
        s.add_argument("port", type=int)
        s.add_argument("--timeout", type=float, default=300.0)
        s.set_defaults(fn=fn)
    for name, fn in (("tcp-probe", tcp_probe), ("udp-probe", udp_probe),
             ("tcp-hold", tcp_hold)):
        s = sub.add_parser(name)
        s.add_argument("host")
        s.add_argument("port", type=int)
        s.add_argument("--timeout", type=float, default=2.0)
        s.add_argument("--source", default=None)
        s.set_defaults(fn=fn)
        if name == "tcp-hold":
            s.add_argument("--interval", type=float, default=0.2)
            s.add_argument("--count", type=int, default=25)
    return p


def main():
    args = parser().parse_args()
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
