#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A connection a quarantine cuts, for tests/e2e/failsecure/cut.sh.

  cutconn.py HOST PORT [--busy] [--seconds S]

Connects to an echo server, proves 3 round trips ('alive'), then:
  --busy   keeps writing a line every 0.2 s (TCP retransmits through the
           quarantine), or by default stays idle;
  SIGUSR1  marks "the host is back to normal": from then on every byte
           echoed back is counted, and (idle) one line is written now;
  SIGTERM  ends it: prints 'after_cut_bytes N' (bytes echoed after SIGUSR1).
Bounded by --seconds. A connection that was cut must count 0.
"""
import argparse
import select
import signal
import socket
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--busy", action="store_true")
    p.add_argument("--seconds", type=float, default=120)
    a = p.parse_args()
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.create_connection((a.host, a.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(3):
        s.sendall(b"ping %d\n" % i)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("closed before alive")
            got += chunk
    print("alive", s.getsockname()[1], flush=True)
    s.setblocking(False)
    marked, stop = [], []
    signal.signal(signal.SIGUSR1, lambda *_: marked.append(time.monotonic()))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    after, wrote_idle, last_write = 0, False, 0.0
    end = time.monotonic() + a.seconds
    while not stop and time.monotonic() < end:
        now = time.monotonic()
        try:
            if a.busy and now - last_write >= 0.2:
                s.send(b"data while cut\n")
                last_write = now
            elif marked and not a.busy and not wrote_idle:
                s.send(b"back after the cut\n")
                wrote_idle = True
                print("wrote", flush=True)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:	# reset or timed out: dead, as it should be
            print("socket:", e.strerror, flush=True)
            break
        try:
            r, _, _ = select.select([s], [], [], 0.1)
        except InterruptedError:
            continue
        if r:
            try:
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                print("socket:", e.strerror, flush=True)
                break
            if not chunk:
                print("closed by peer", flush=True)
                break
            if marked:
                after += len(chunk)
                print("echoed", len(chunk), flush=True)
    print("after_cut_bytes %d" % after, flush=True)


if __name__ == "__main__":
    main()
