#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Packets for tests/e2e/outsider/anomaly.sh.

  anomaly.py synflood DST6 DPORT SRCNET6 COUNT [--sport 25] [--seconds S]
      COUNT bare SYNs (raw IPv6, no handshake) from source port --sport,
      each from another address of SRCNET6 (a /64 prefix, "2001:db8:99::"),
      spread over --seconds; prints 'sent N'.
  anomaly.py connect HOST PORT --rate R --seconds S
      the host's own attempts: R non-blocking connects a second; 'tried N'.
  anomaly.py sniff IFACE --seconds S
      counts TCP arriving on IFACE until SIGTERM or S seconds: SYN-ACKs
      to port 25 and SYNs to port 25; prints 'synack25 N syn25 M'.
"""
import argparse
import ipaddress
import signal
import socket
import struct
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn6(src, dst, sport, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02,
                      65535, 0, 0)
    pseudo = src + dst + struct.pack("!I3xB", len(tcp), socket.IPPROTO_TCP)
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(tcp), socket.IPPROTO_TCP, 64)
    return ip6 + src + dst + tcp


def synflood(a):
    dst = socket.inet_pton(socket.AF_INET6, a.dst)
    net = int(ipaddress.IPv6Address(a.srcnet))
    # IPPROTO_RAW on IPv6: we write the IPv6 header ourselves.
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    gap = a.seconds / a.count
    t0, sent = time.monotonic(), 0
    for i in range(a.count):
        src = ipaddress.IPv6Address(net + 0x100 + i).packed
        s.sendto(syn6(src, dst, a.sport, a.dport, 1000 + i), (a.dst, 0))
        sent += 1
        ahead = t0 + (i + 1) * gap - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print("sent", sent, flush=True)


def connect(a):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    end, tried = time.monotonic() + a.seconds, 0
    while time.monotonic() < end:
        t = time.monotonic()
        for _ in range(max(1, a.rate // 10)):
            c = socket.socket(fam, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect((a.host, a.port))
            except (BlockingIOError, OSError):
                pass
            tried += 1
            c.close()
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
    print("tried", tried, flush=True)


def sniff(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((a.iface, 0))
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    synack25 = syn25 = 0
    end = time.monotonic() + a.seconds
    print("listening", flush=True)
    while not stop and time.monotonic() < end:
        try:
            f = s.recv(2048)
        except (socket.timeout, InterruptedError):
            continue
        etype = struct.unpack("!H", f[12:14])[0]
        if etype == 0x0800 and f[23] == 6:
            l4 = 14 + (f[14] & 15) * 4
        elif etype == 0x86DD and f[20] == 6:
            l4 = 14 + 40
        else:
            continue
        if len(f) < l4 + 14:
            continue
        dport = struct.unpack("!H", f[l4 + 2:l4 + 4])[0]
        flags = f[l4 + 13] & 0x12
        if dport == 25 and flags == 0x12:
            synack25 += 1
        elif dport == 25 and flags == 0x02:
            syn25 += 1
    print("synack25", synack25, "syn25", syn25, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("synflood")
    f.add_argument("dst")
    f.add_argument("dport", type=int)
    f.add_argument("srcnet")
    f.add_argument("count", type=int)
    f.add_argument("--sport", type=int, default=25)
    f.add_argument("--seconds", type=float, default=4)
    c = sub.add_parser("connect")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--rate", type=int, default=100)
    c.add_argument("--seconds", type=float, default=5)
    n = sub.add_parser("sniff")
    n.add_argument("iface")
    n.add_argument("--seconds", type=float, default=120)
    a = p.parse_args()
    {"synflood": synflood, "connect": connect, "sniff": sniff}[a.cmd](a)


if __name__ == "__main__":
    main()
