#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The idle connection of tests/e2e/outsider/flows.sh.

  flows.py idle HOST PORT --wake FILE [--max-idle S] [--rounds N]
                [--timeout S]
      one TCP connection to an echo server: a round trip ('rtt 0 ok'),
      then idle -- not a byte either way -- until FILE exists or
      --max-idle seconds, then --rounds more round trips ('rtt I ok|fail'),
      each within --timeout; prints 'summary ok=N first_fail=I|none'.
"""
import argparse
import os
import socket
import sys
import time


def say(*words):
    print(*words, flush=True)


def round_trip(sock, i, timeout):
    line = b"idle %d\n" % i
    deadline = time.monotonic() + timeout
    got = b""
    try:
        sock.sendall(line)
        while not got.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(left)
            chunk = sock.recv(256)
            if not chunk:
                return False
            got += chunk
    except OSError:
        return False
    return got == line


def idle(a):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    try:
        sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    except OSError as e:
        say("fail connect", e)
        say("summary ok=0 first_fail=0")
        return 1
    assert sock.family == fam
    ok, first_fail = 0, None
    with sock:
        if not round_trip(sock, 0, a.timeout):
            say("rtt 0 fail")
            say("summary ok=0 first_fail=0")
            return 1
        ok += 1
        say("rtt 0 ok")
        say("idle")
        end = time.monotonic() + min(a.max_idle, 300)
        while not os.path.exists(a.wake) and time.monotonic() < end:
            time.sleep(0.1)
        for i in range(1, 1 + max(1, min(a.rounds, 100))):
            if not round_trip(sock, i, a.timeout):
                first_fail = i
                say("rtt", i, "fail")
                break
            ok += 1
            say("rtt", i, "ok")
    say("summary ok=%d first_fail=%s" %
        (ok, "none" if first_fail is None else first_fail))
    return 0 if first_fail is None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle")
    i.add_argument("host")
    i.add_argument("port", type=int)
    i.add_argument("--wake", required=True)
    i.add_argument("--max-idle", type=float, default=120)
    i.add_argument("--rounds", type=int, default=3)
    i.add_argument("--timeout", type=float, default=3)
    a = p.parse_args()
    return idle(a)


if __name__ == "__main__":
    sys.exit(main())
