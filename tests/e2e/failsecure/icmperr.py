#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""ICMP errors that quote a flow, for tests/e2e/failsecure/icmp.sh.

  icmperr.py syn SRC DST SPORT DPORT         one TCP SYN (opens the flow)
  icmperr.py send SRC DST QSRC QDST QSPORT QDPORT [--payload N]
             [--count N] [--marker M]        N ICMP errors (v4: unreachable,
                                             v6: packet too big) quoting a
                                             QSRC:QSPORT -> QDST:QDPORT SYN,
                                             then PAYLOAD bytes
  icmperr.py count FAMILY --marker M --seconds S
                                             prints 'ready', then counts the
                                             ICMP packets carrying M until
                                             SIGTERM or S; prints 'received N'

Raw sockets with our own IP headers: the outer addresses are whatever the
test says, as an attacker's would be. Checksums are right, so the
receiving kernel delivers what the datapath lets through.
"""
import argparse
import ipaddress
import signal
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def family(addr):
    return ipaddress.ip_address(addr).version


def pseudo(src, dst, proto, length):
    if family(src) == 4:
        return (socket.inet_pton(socket.AF_INET, src) +
                socket.inet_pton(socket.AF_INET, dst) +
                struct.pack("!BBH", 0, proto, length))
    return (socket.inet_pton(socket.AF_INET6, src) +
            socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack("!IxxxB", length, proto))


def ip_header(src, dst, proto, length):
    if family(src) == 4:
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0x4242, 0,
                        64, proto, 0, socket.inet_pton(socket.AF_INET, src),
                        socket.inet_pton(socket.AF_INET, dst))
        return h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return (struct.pack("!IHBB", 6 << 28, length, proto, 64) +
            socket.inet_pton(socket.AF_INET6, src) +
            socket.inet_pton(socket.AF_INET6, dst))


def tcp_syn(src, dst, sport, dport):
    t = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535,
                    0, 0)
    c = csum(pseudo(src, dst, 6, len(t)) + t)
    return t[:16] + struct.pack("!H", c) + t[18:]


def ip_packet(src, dst, proto, l4):
    return ip_header(src, dst, proto, len(l4)) + l4


def raw_socket(fam):
    if fam == 4:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW,
                             socket.IPPROTO_RAW)
    return socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)


def cmd_syn(a):
    pkt = ip_packet(a.src, a.dst, 6, tcp_syn(a.src, a.dst, a.sport, a.dport))
    raw_socket(family(a.src)).sendto(pkt, (a.dst, 0))
    print("sent 1")


def icmp_error(a):
    fam = family(a.src)
    quoted = ip_packet(a.qsrc, a.qdst, 6,
                       tcp_syn(a.qsrc, a.qdst, a.qsport, a.qdport))
    quoted = quoted[:28] if fam == 4 else quoted
    body = quoted + a.marker.encode()
    body += b"\xa5" * max(0, a.payload - len(a.marker))
    if fam == 4:
        icmp = struct.pack("!BBHI", 3, 3, 0, 0) + body
        return ip_packet(a.src, a.dst, 1,
                         icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:])
    icmp = struct.pack("!BBHI", 2, 0, 0, 1280) + body
    c = csum(pseudo(a.src, a.dst, 58, len(icmp)) + icmp)
    return ip_packet(a.src, a.dst, 58,
                     icmp[:2] + struct.pack("!H", c) + icmp[4:])


def cmd_send(a):
    s = raw_socket(family(a.src))
    pkt = icmp_error(a)
    sent = 0
    for _ in range(a.count):
        try:
            s.sendto(pkt, (a.dst, 0))
            sent += 1
        except OSError as e:	# a drop on our own egress may say EPERM
            print("send: %s" % e.strerror, file=sys.stderr)
        time.sleep(0.002)
    print("sent %d of %d (%d bytes each)" % (sent, a.count, len(pkt)))


def cmd_count(a):
    if a.family == 4:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW,
                          socket.IPPROTO_ICMPV6)
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    marker = a.marker.encode()
    n = 0
    print("ready", flush=True)
    end = time.monotonic() + a.seconds
    quiet_since = None
    # After SIGTERM, drain until 0.5 s without a packet (at most 3 s).
    while time.monotonic() < end:
        if stop:
            if quiet_since is None:
                quiet_since = time.monotonic()
                end = min(end, quiet_since + 3)
            elif time.monotonic() - quiet_since > 0.5:
                break
        try:
            data = s.recv(65535)
        except (socket.timeout, InterruptedError):
            continue
        if marker in data:
            n += 1
            if stop:
                quiet_since = time.monotonic()
    print("received %d" % n, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("syn")
    q.add_argument("src")
    q.add_argument("dst")
    q.add_argument("sport", type=int)
    q.add_argument("dport", type=int)
    q = sub.add_parser("send")
    for name in ("src", "dst", "qsrc", "qdst"):
        q.add_argument(name)
    q.add_argument("qsport", type=int)
    q.add_argument("qdport", type=int)
    q.add_argument("--payload", type=int, default=0)
    q.add_argument("--count", type=int, default=20)
    q.add_argument("--marker", default="pc-icmp-covert")
    q = sub.add_parser("count")
    q.add_argument("family", type=int, choices=(4, 6))
    q.add_argument("--marker", default="pc-icmp-covert")
    q.add_argument("--seconds", type=float, default=60)
    a = p.parse_args()
    {"syn": cmd_syn, "send": cmd_send, "count": cmd_count}[a.cmd](a)


if __name__ == "__main__":
    main()
