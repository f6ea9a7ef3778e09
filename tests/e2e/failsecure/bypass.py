#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Raw-socket sends that skip the qdisc layer, and a receiver counting them
(tests/e2e/failsecure/bypass.sh). Debian's /usr/bin/python3, stdlib only.

  recv --port P --seconds S
        UDP on P: prints "listening", then "got TAG SEQ" per new datagram
        "PCBYP TAG SEQ". On SIGTERM (or after S) it reads on until quiet
        for 0.5 s, then prints "summary TAG=N ..." (distinct SEQs per TAG).
  send --ifname IF --src-mac M --dst-mac M --src A --dst A --port P
       --tag TAG --count N [--no-bypass]
        A new AF_PACKET socket on IF; setsockopt(PACKET_QDISC_BYPASS, 1)
        (prints "bypass ok" or "bypass refused ERRNO"), then N crafted
        IPv4/UDP frames: prints "sent TAG ok=K errors=E first_error=NAME".
  hold (same options but --tag/--count) --go FILE --seconds S
        Opens the socket and sets bypass once ("bypass ok"), then each
        time FILE appears holding "TAG N" sends N frames on that same
        socket, prints the "sent" line and removes FILE.
  xdp   socket(AF_XDP, SOCK_RAW), then setsockopt(SOL_XDP, XDP_TX_RING, 64)
        (the set-up a transmitting AF_XDP socket needs): prints "xdp ok" or
        "xdp refused ERRNO" (the option), "xdp socket refused ERRNO".

Every command is bounded in time (MAX_LIFETIME); send errors are counted,
never fatal: the scenario judges what the receiver got.
"""

import argparse
import errno
import os
import select
import signal
import socket
import struct
import sys
import time

SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
AF_XDP = 44
SOL_XDP = 283
XDP_TX_RING = 3
MAGIC = b"PCBYP"
MAX_LIFETIME = 600.0
QUIET_S = 0.5


def say(*words):
    print(*words, flush=True)


def bounded(seconds):
    return max(0.1, min(float(seconds), MAX_LIFETIME))


def errname(e):
    return errno.errorcode.get(e, str(e))


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ip_checksum(hdr):
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(args, tag, seq):
    """Ethernet + IPv4 + UDP (checksum 0: none) carrying PCBYP TAG SEQ."""
    payload = b"%s %s %d" % (MAGIC, tag.encode(), seq)
    udp = struct.pack("!HHHH", 40000 + seq % 1000, args.port,
                      8 + len(payload), 0) + payload
    iph = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp),
                                seq & 0xFFFF, 0x4000, 64, 17, 0,
                                socket.inet_aton(args.src),
                                socket.inet_aton(args.dst)))
    struct.pack_into("!H", iph, 10, ip_checksum(bytes(iph)))
    return (mac_bytes(args.dst_mac) + mac_bytes(args.src_mac) + b"\x08\x00" +
            bytes(iph) + udp)


def open_bypass(args, want_bypass=True):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((args.ifname, 0))
    if want_bypass:
        try:
            s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            say("bypass ok")
        except OSError as e:
            say("bypass refused", errname(e.errno))
    return s


def send_batch(s, args, tag, count):
    ok = errors = 0
    first = "none"
    for seq in range(count):
        try:
            s.send(frame(args, tag, seq))
            ok += 1
        except OSError as e:
            errors += 1
            if first == "none":
                first = errname(e.errno)
    say("sent %s ok=%d errors=%d first_error=%s" % (tag, ok, errors, first))


def cmd_send(args):
    s = open_bypass(args, not args.no_bypass)
    send_batch(s, args, args.tag, min(args.count, 100000))
    return 0


def cmd_hold(args):
    s = open_bypass(args)
    deadline = time.monotonic() + bounded(args.seconds)
    while time.monotonic() < deadline:
        try:
            with open(args.go) as f:
                words = f.read().split()
        except FileNotFoundError:
            time.sleep(0.05)
            continue
        if len(words) == 2:
            send_batch(s, args, words[0], min(int(words[1]), 100000))
        else:
            say("bad go file:", " ".join(words))
        os.unlink(args.go)
    return 0


def cmd_xdp(args):
    try:
        s = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
    except OSError as e:
        say("xdp socket refused", errname(e.errno))
        return 0
    try:
        s.setsockopt(SOL_XDP, XDP_TX_RING, 64)
        say("xdp ok")
    except OSError as e:
        say("xdp refused", errname(e.errno))
    s.close()
    return 0


stopping = False


def on_term(signum, frm):
    global stopping
    stopping = True


def cmd_recv(args):
    signal.signal(signal.SIGTERM, on_term)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", args.port))
    say("listening udp", args.port)
    seen = {}
    deadline = time.monotonic() + bounded(args.seconds)
    last = time.monotonic()
    # After the stop signal, read on until quiet: nothing still in flight
    # goes uncounted.
    while True:
        now = time.monotonic()
        if (stopping or now >= deadline) and now - last >= QUIET_S:
            break
        try:
            ready, _, _ = select.select([s], [], [], 0.1)
        except InterruptedError:
            continue
        if not ready:
            continue
        data = s.recv(2048)
        last = time.monotonic()
        words = data.split()
        if len(words) != 3 or words[0] != MAGIC:
            continue
        tag, seq = words[1].decode(), words[2].decode()
        if seq not in seen.setdefault(tag, set()):
            seen[tag].add(seq)
            say("got", tag, seq)
    say("summary", " ".join("%s=%d" % (t, len(v)) for t, v in
                            sorted(seen.items())) or "none")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--seconds", type=float, default=120)
    for name in ("send", "hold"):
        q = sub.add_parser(name)
        for opt in ("--ifname", "--src-mac", "--dst-mac", "--src", "--dst"):
            q.add_argument(opt, required=True)
        q.add_argument("--port", type=int, required=True)
        if name == "send":
            q.add_argument("--tag", required=True)
            q.add_argument("--count", type=int, default=50)
            q.add_argument("--no-bypass", action="store_true")
        else:
            q.add_argument("--go", required=True)
            q.add_argument("--seconds", type=float, default=120)
    sub.add_parser("xdp")
    args = p.parse_args()
    signal.alarm(int(MAX_LIFETIME) + 30)
    return {"send": cmd_send, "hold": cmd_hold, "recv": cmd_recv,
            "xdp": cmd_xdp}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
