#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Capture for tests/e2e/outsider/hbreplay.sh.

  hbreplay.py capture IFACE PORT OUT --count N --seconds S
      records UDP datagrams to PORT (IPv4) seen on IFACE, as an on-path
      outsider would; after N of them writes the last one's payload to OUT
      and prints 'captured N'; gives up after S seconds ('captured 0').
"""
import argparse
import select
import socket
import struct
import time

ETH_P_ALL = 0x0003


def udp_payload(frame, port):
    """The UDP payload of an Ethernet/IPv4 frame to PORT, else None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ihl < 20 or ip[9] != socket.IPPROTO_UDP:
        return None
    total = struct.unpack("!H", ip[2:4])[0]
    udp = ip[ihl:total]
    if len(udp) < 8 or struct.unpack("!H", udp[2:4])[0] != port:
        return None
    return udp[8:struct.unpack("!H", udp[4:6])[0]]


def capture(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    print("listening", flush=True)
    end, got, last = time.monotonic() + a.seconds, 0, None
    while got < a.count:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        payload = udp_payload(s.recv(65535), a.port)
        if payload is not None:
            got, last = got + 1, payload
    if last is not None:
        with open(a.out, "wb") as f:
            f.write(last)
    print("captured", got if got >= a.count else 0, flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("iface")
    c.add_argument("port", type=int)
    c.add_argument("out")
    c.add_argument("--count", type=int, default=3)
    c.add_argument("--seconds", type=float, default=20)
    a = p.parse_args()
    capture(a)


if __name__ == "__main__":
    main()
