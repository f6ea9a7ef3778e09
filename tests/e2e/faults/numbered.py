#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Numbered UDP streams for the fault-injection suite (tests/e2e/faults.sh).

Run with Debian's /usr/bin/python3 (stdlib only) inside a lab namespace:

  recv --ports P,P.. --out FILE [--duration S]
        On the node: bind UDP on each port, record which numbered
        datagrams of which stream arrived (and when, and from where) until
        SIGTERM/SIGINT (then until the sockets are quiet for 0.5 s, at
        most 5 s) or --duration; write FILE (JSON). Prints "listening"
        once bound.
  send --dst ADDR --stream NAME:SRC:PORT... --rate R --duration S --out FILE
        On the peer: every 1/R s, one datagram per stream, from SRC to
        ADDR:PORT, payload "PCF1 RUN NAME SEQ". Send errors (the interface
        gone) are counted, never fatal. Writes FILE (JSON): per stream the
        send time of every number.
  report --sent FILE --recv FILE [--events FILE] [--deny NAME,..]
         [--window EVENT1:EVENT2]...
        Compare: prints key=value lines (for the shell) and a readable
        account of what arrived, what was lost and when, and for each
        window what was sent and arrived between two events.
  flood --ifname IF --src-mac MAC --dst-mac MAC --src ADDR --dst ADDR
        --dports LO-HI --sports LO-HI --count N [--seconds S]
        Raw Ethernet frames (AF_PACKET) from distinct UDP port pairs: as
        many new flows as frames. A frame refused by a full queue is
        sent again; only frames sent are reported. Bounded by --count
        and --seconds.
  cidrs --v6prefix PREFIX --count N --out FILE
        A cidr_file of N distinct /128s under a 2001:db8::/32 prefix.

Every helper is bounded in time: nothing outlives MAX_LIFETIME.
"""

import argparse
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time

MAX_LIFETIME = 600.0
QUIET = 0.5     # recv: after SIGTERM, stop once quiet this long ...
DRAIN = 5.0     # ... or after this long at most
MAGIC = b"PCF1"


def say(*words):
    print(*words, flush=True)


def bounded(seconds):
    return max(0.1, min(float(seconds), MAX_LIFETIME))


# ---- receiver ----

def recv_main(args):
    ports = [int(p) for p in args.ports.split(",")]
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # Root may exceed rmem_max: a busy CPU must not cost us
            # datagrams the policy let through.
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind(("0.0.0.0", port))
        s.setblocking(False)
        socks.append(s)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    streams = {}     # name -> {seq: [arrival, src, port]}
    junk = 0
    deadline = time.monotonic() + bounded(args.duration)
    say("listening", args.ports)
    # After SIGTERM keep reading until the sockets have been quiet for
    # QUIET s (at most DRAIN s): datagrams still in flight or queued when
    # a loaded machine delivered the signal are counted, not called lost.
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
                    data, addr = s.recvfrom(2048)
                except (BlockingIOError, InterruptedError):
                    break
                now = time.time()
                parts = data.split(b" ")
                if len(parts) < 4 or parts[0] != MAGIC or \
                   parts[1].decode(errors="replace") != args.run:
                    junk += 1
                    continue
                name = parts[2].decode(errors="replace")
                try:
                    seq = int(parts[3])
                except ValueError:
                    junk += 1
                    continue
                got = streams.setdefault(name, {})
                if seq not in got:
                    got[seq] = [round(now, 6), addr[0],
                                s.getsockname()[1]]
    out = {"run": args.run, "junk": junk,
           "streams": {n: {str(k): v for k, v in d.items()}
                       for n, d in streams.items()}}
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.rename(args.out + ".tmp", args.out)
    return 0


# ---- sender ----

def send_main(args):
    streams = []
    for spec in args.stream:
        name, src, port = spec.split(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        streams.append((name, s, int(port)))
    rate = float(args.rate)
    duration = bounded(args.duration)
    n = int(rate * duration)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sent = {name: [] for name, _, _ in streams}
    errors = {name: 0 for name, _, _ in streams}
    say("sending", len(streams), "streams", n, "each at", rate, "/s")
    t0 = time.time()
    m0 = time.monotonic()
    for seq in range(n):
        if stop:
            break
        due = m0 + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for name, s, port in streams:
            msg = b"%s %s %s %d" % (MAGIC, args.run.encode(),
                                    name.encode(), seq)
            now = time.time()
            try:
                s.sendto(msg, (args.dst, port))
                sent[name].append(round(now, 6))
            except OSError:
                errors[name] += 1
                sent[name].append(-round(now, 6))  # never left
    out = {"run": args.run, "t0": t0, "rate": rate,
           "elapsed": time.monotonic() - m0,
           "streams": sent, "errors": errors}
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.rename(args.out + ".tmp", args.out)
    say("sent", {k: len(v) for k, v in sent.items()}, "errors", errors)
    return 0


# ---- report ----

def ranges(seqs):
    """Sorted ints -> [(lo, hi)] runs."""
    out = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def load_events(path):
    ev = []
    if not path:
        return ev
    try:
        with open(path) as f:
            for line in f:
                t, _, label = line.strip().partition(" ")
                try:
                    ev.append((float(t), label))
                except ValueError:
                    pass
    except OSError:
        pass
    return ev


def rel(t, t0):
    return "%.3f s" % (t - t0)


def report_main(args):
    with open(args.sent) as f:
        sent = json.load(f)
    with open(args.recv) as f:
        recv = json.load(f)
    deny = set(args.deny.split(",")) if args.deny else set()
    events = load_events(args.events)
    t0 = sent["t0"]
    kv = {}
    # Each event's time on the report's clock (seconds after t0).
    for t, label in events:
        name = "".join(c if c.isalnum() else "_" for c in label).upper()
        kv["EV_" + name + "_T"] = "%.3f" % (t - t0)
    text = []
    d_sent = d_recv = 0
    for name, times in sorted(sent["streams"].items()):
        got = recv["streams"].get(name, {})
        left = [i for i, t in enumerate(times) if t > 0]
        arrived = [i for i in left if str(i) in got]
        lost = [i for i in left if str(i) not in got]
        key = name.upper()
        kv[key + "_SENT"] = len(left)
        kv[key + "_UNSENT"] = len(times) - len(left)
        kv[key + "_RECV"] = len(arrived)
        kv[key + "_LOST"] = len(lost)
        if name in deny:
            d_sent += len(left)
            d_recv += len(arrived)
            line = "%s (denied): %d sent, %d ARRIVED" % (
                name, len(left), len(arrived))
            if len(times) != len(left):
                line += ", %d not sent (send error)" % (len(times) - len(left))
            text.append(line)
            for lo, hi in ranges(arrived)[:10]:
                a = got[str(lo)]
                text.append("  LEAK %s #%d-#%d sent at %s, first arrived at %s "
                            "from %s to port %s" % (
                                name, lo, hi, rel(times[lo], t0),
                                rel(a[0], t0), a[1], a[2]))
            if arrived:
                kv[key + "_FIRST_LEAK_T"] = "%.3f" % (times[arrived[0]] - t0)
                kv[key + "_LAST_LEAK_T"] = "%.3f" % (times[arrived[-1]] - t0)
        else:
            line = "%s (allowed): %d sent, %d arrived, %d lost" % (
                name, len(left), len(arrived), len(lost))
            if len(times) != len(left):
                line += ", %d not sent (send error)" % (len(times) - len(left))
            text.append(line)
            gaps = ranges(lost)
            kv[key + "_GAPS"] = len(gaps)
            longest, worst = 0.0, None
            for lo, hi in gaps:
                span = times[hi] - times[lo] + 1.0 / sent["rate"]
                if span > longest:
                    longest, worst = span, (lo, hi)
            kv[key + "_LONGEST_GAP_MS"] = int(round(longest * 1000))
            if worst:
                # The first number that arrived after it: when A was back.
                back = [i for i in arrived if i > worst[1]]
                kv[key + "_LONGEST_GAP_START_T"] = "%.3f" % (
                    times[worst[0]] - t0)
                if back:
                    kv[key + "_LONGEST_GAP_END_T"] = "%.3f" % (
                        times[back[0]] - t0)
            for lo, hi in gaps[:8]:
                text.append("  lost %s #%d-#%d (%d), sent %s .. %s" % (
                    name, lo, hi, hi - lo + 1, rel(times[lo], t0),
                    rel(times[hi], t0)))
            if len(gaps) > 8:
                text.append("  ... %d more gaps" % (len(gaps) - 8))
            if arrived:
                kv[key + "_LAST_RECV_T"] = "%.3f" % (times[arrived[-1]] - t0)
                kv[key + "_FIRST_RECV_T"] = "%.3f" % (times[arrived[0]] - t0)
            if lost:
                kv[key + "_FIRST_LOST_T"] = "%.3f" % (times[lost[0]] - t0)
    kv["D_SENT"] = d_sent
    kv["D_RECV"] = d_recv
    kv["JUNK"] = recv.get("junk", 0)
    kv["ELAPSED"] = "%.2f" % sent.get("elapsed", 0)
    for t, label in events:
        kv["EV_" + label.upper().replace("-", "_")] = "%.3f" % (t - t0)
        text.append("event %-12s at %s" % (label, rel(t, t0)))
    at = {label: t for t, label in events}
    for w in args.window:
        a, _, b = w.partition(":")
        if a not in at or b not in at:
            text.append("window %s: event missing" % w)
            continue
        key = "W_%s_" % a.upper().replace("-", "_")
        for name in ("A", "D"):
            names = sorted(deny) if name == "D" else ["A"]
            n_sent = n_recv = 0
            for sn in names:
                times = sent["streams"].get(sn, [])
                got = recv["streams"].get(sn, {})
                for i, t in enumerate(times):
                    if t > 0 and at[a] <= t <= at[b]:
                        n_sent += 1
                        n_recv += str(i) in got
            kv[key + name + "_SENT"] = n_sent
            kv[key + name + "_RECV"] = n_recv
        text.append("window %s .. %s (%d ms): D %d sent, %d arrived; "
                    "A %d sent, %d arrived" % (
                        a, b, (at[b] - at[a]) * 1000, kv[key + "D_SENT"],
                        kv[key + "D_RECV"], kv[key + "A_SENT"],
                        kv[key + "A_RECV"]))
    for k, v in kv.items():
        print("R_%s=%s" % (k, v))
    for line in text:
        print("# " + line)
    return 0


# ---- flood of new flows ----

def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ip_checksum(hdr):
    s = 0
    for i in range(0, len(hdr), 2):
        s += (hdr[i] << 8) | hdr[i + 1]
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def flood_main(args):
    payload = b"PCF1 flood"
    udp_len = 8 + len(payload)
    ip_len = 20 + udp_len
    iph = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000,
                                64, 17, 0, socket.inet_aton(args.src),
                                socket.inet_aton(args.dst)))
    struct.pack_into("!H", iph, 10, ip_checksum(iph))
    head = mac_bytes(args.dst_mac) + mac_bytes(args.src_mac) + b"\x08\x00" + \
        bytes(iph)
    dlo, dhi = (int(x) for x in args.dports.split("-"))
    slo, shi = (int(x) for x in args.sports.split("-"))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((args.ifname, 0))
    deadline = time.monotonic() + bounded(args.seconds)
    # A full device queue answers ENOBUFS (or EAGAIN): that frame did not
    # leave. It is sent again after a short pause, never counted as sent;
    # any other error loses it (counted). Only frames the kernel took are
    # reported as sent: the scenario judges what the node counted anyway.
    sent = retries = errs = 0
    pack = struct.Struct("!HHHH").pack
    late = False
    pairs = ((sp, dp) for dp in range(dlo, dhi + 1)
             for sp in range(slo, shi + 1))
    for sport, dport in pairs:
        if sent + errs >= args.count or late:
            break
        if ((sent + errs) & 1023) == 0 and time.monotonic() > deadline:
            break
        frame = head + pack(sport, dport, udp_len, 0) + payload
        while True:
            try:
                s.send(frame)
                sent += 1
                break
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    errs += 1
                    break
                if time.monotonic() > deadline:
                    late = True
                    break
                retries += 1
                time.sleep(0.0002)
        if args.pace and (sent % args.pace) == 0:
            time.sleep(0.0005)
    say("flood: %d frames sent of %d asked (%d retries after a full queue, "
        "%d lost to send errors) in %.2f s" % (
            sent, args.count, retries, errs,
            bounded(args.seconds) - (deadline - time.monotonic())))
    return 0


# ---- big cidr files ----

def cidrs_main(args):
    base = bytearray(socket.inet_pton(socket.AF_INET6, args.v6prefix))
    with open(args.out, "w") as f:
        for i in range(args.count):
            b = bytearray(base)
            struct.pack_into("!I", b, 12, i + 1)
            f.write(socket.inet_ntop(socket.AF_INET6, bytes(b)) + "/128\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("recv")
    p.add_argument("--ports", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--duration", type=float, default=120)
    p.set_defaults(fn=recv_main)
    p = sub.add_parser("send")
    p.add_argument("--dst", required=True)
    p.add_argument("--stream", action="append", required=True)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--out", required=True)
    p.add_argument("--run", required=True)
    p.set_defaults(fn=send_main)
    p = sub.add_parser("report")
    p.add_argument("--sent", required=True)
    p.add_argument("--recv", required=True)
    p.add_argument("--events")
    p.add_argument("--deny", default="")
    p.add_argument("--window", action="append", default=[],
                   help="EVENT1:EVENT2: what was sent between the two")
    p.set_defaults(fn=report_main)
    p = sub.add_parser("flood")
    p.add_argument("--ifname", required=True)
    p.add_argument("--src-mac", required=True)
    p.add_argument("--dst-mac", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--dports", required=True)
    p.add_argument("--sports", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--pace", type=int, default=0,
                   help="sleep 0.5 ms after every PACE frames")
    p.set_defaults(fn=flood_main)
    p = sub.add_parser("cidrs")
    p.add_argument("--v6prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cidrs_main)
    args = ap.parse_args()
    if args.cmd == "cidrs" and args.count > 2000000:
        ap.error("--count above 2,000,000")
    if args.cmd == "cidrs" and not args.v6prefix.lower().startswith("2001:db8:"):
        ap.error("--v6prefix must be inside 2001:db8::/32 (documentation)")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
