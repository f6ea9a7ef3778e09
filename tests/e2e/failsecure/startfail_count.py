#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Counted UDP bursts for the startfail scenario: what the receiver got.

    startfail_count.py recv PORT SECONDS    bind 0.0.0.0:PORT, print
                                            "listening", then after SECONDS
                                            "received N" (datagrams)
    startfail_count.py send HOST PORT N     N datagrams, 10 ms apart

Both are bounded in time; the receiver counts only our payload.
"""
import select
import socket
import sys
import time

PAYLOAD = b"portcullis-startfail"


def recv(port, seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print("listening", flush=True)
    deadline = time.monotonic() + min(seconds, 60.0)
    n = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            data, _ = sock.recvfrom(4096)
            n += data == PAYLOAD
    print("received", n, flush=True)
    return 0


def send(host, port, count):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(min(count, 1000)):
            try:
                sock.sendto(PAYLOAD, (host, port))
            except OSError:
                pass
            time.sleep(0.01)
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "recv":
        return recv(int(sys.argv[2]), float(sys.argv[3]))
    if len(sys.argv) == 5 and sys.argv[1] == "send":
        return send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
