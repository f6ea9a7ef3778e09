#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""tts.md and tts.tsv from tts_probe's raw lines and the agent's audit log.

Raw lines (tab-separated, microseconds):
  cmd      trial  tts  last_passed  release_to_pass  boundary_gap  early
  hbloss   trial  excess  last_passed_excess  agent_hb_delay  boundary_gap  early
  deadman  (as hbloss)
excess = first dropped probe's send time - (last heartbeat's send time +
timeout); last_passed is the same for the probe before it (a lower bound).
"""
import argparse
import json
import math
import os
import sys

TARGET_P99_US = 1000.0


def pct(xs, q):
    """Nearest-rank percentile of a sorted list."""
    if not xs:
        return float("nan")
    return xs[max(0, math.ceil(q * len(xs)) - 1)]


def summary(xs):
    xs = sorted(xs)
    n = len(xs)
    return {
        "n": n,
        "min": xs[0] if n else float("nan"),
        "p50": pct(xs, 0.50),
        "p90": pct(xs, 0.90),
        "p99": pct(xs, 0.99),
        "max": xs[-1] if n else float("nan"),
        "mean": sum(xs) / n if n else float("nan"),
    }


def read_raw(path, tag):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if p[0] == tag:
                    rows.append([float(x) for x in p[1:]])
    except OSError:
        pass
    return rows


def audit_tts(path, to, trigger):
    """time_to_secure_us of the agent's transitions, as it recorded them."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if (e.get("event") == "transition" and e.get("to") == to and
                        e.get("trigger") == trigger and
                        "time_to_secure_us" in e):
                    out.append(float(e["time_to_secure_us"]))
    except OSError:
        pass
    return out


def fmt(v, unit="us"):
    if v != v:
        return "-"
    if unit == "ms":
        return "%.2f" % (v / 1000.0)
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v


COLS = ["n", "min", "p50", "p90", "p99", "max", "mean"]


def md_row(name, s, unit):
    return "| %s | %d | %s |" % (name, s["n"], " | ".join(
        fmt(s[c], unit) for c in COLS[1:]))


def md_table(title_unit, rows, unit):
    out = ["| measure (%s) | n | min | p50 | p90 | p99 | max | mean |" % title_unit,
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    out += [md_row(name, s, unit) for name, s in rows]
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("work", "audit", "out", "xdp", "host", "stats", "load"):
        ap.add_argument("--" + a, default="")
    for a in ("probe-us", "hb-ms", "timeout-ms"):
        ap.add_argument("--" + a, type=float, required=True)
    o = ap.parse_args()
    w = o.work

    cmd = read_raw(os.path.join(w, "raw-cmd.tsv"), "cmd")
    cmd_ok = [r for r in cmd if not r[5]]
    hb_on = read_raw(os.path.join(w, "raw-hbloss-dm-on.tsv"), "hbloss")
    hb_off = read_raw(os.path.join(w, "raw-hbloss-dm-off.tsv"), "hbloss")
    dm = read_raw(os.path.join(w, "raw-deadman.tsv"), "deadman")

    s_tts = summary([r[1] for r in cmd_ok])
    s_lo = summary([r[2] for r in cmd_ok])
    s_gap = summary([r[4] for r in cmd_ok])
    s_rel = summary([r[3] for r in cmd_ok])
    s_agent_cmd = summary(audit_tts(o.audit, "quarantine", "command"))
    s_agent_hb = summary(audit_tts(o.audit, "lockdown", "heartbeat_loss"))
    s_hb_on = summary([r[1] for r in hb_on])
    s_hb_on_delay = summary([r[3] for r in hb_on if r[3] >= 0])
    s_hb_off = summary([r[1] for r in hb_off])
    s_dm = summary([r[1] for r in dm])
    s_dm_delay = summary([r[3] for r in dm if r[3] >= 0])
    early = len(cmd) - len(cmd_ok)
    passed = s_tts["n"] >= 1000 and s_tts["p99"] < TARGET_P99_US

    # tts.tsv: one row per measure.
    with open(os.path.join(o.out, "tts.tsv"), "w") as f:
        f.write("measure\tunit\t" + "\t".join(COLS) + "\n")
        for name, s in [
                ("command_to_first_drop", s_tts),
                ("command_to_last_pass", s_lo),
                ("command_probe_gap", s_gap),
                ("release_to_first_pass", s_rel),
                ("agent_recorded_command_tts", s_agent_cmd),
                ("hbloss_deadman_on_minus_timeout", s_hb_on),
                ("hbloss_deadman_on_agent_hb_delay", s_hb_on_delay),
                ("hbloss_deadman_off_minus_timeout", s_hb_off),
                ("agent_recorded_hbloss_tts", s_agent_hb),
                ("sigkill_deadman_minus_timeout", s_dm),
                ("sigkill_agent_hb_delay", s_dm_delay)]:
            f.write("%s\tus\t%s\n" % (name, "\t".join(
                "%d" % s[c] if c == "n" else "%.1f" % s[c] for c in COLS)))
        f.write("target_command_p99_lt_1ms\tbool\t%s\n" %
                ("pass" if passed else "FAIL"))

    md = []
    md.append("# Time to secure")
    md.append("")
    md.append("Host: %s. XDP on the lab veth: %s. Probe interval %g us "
              "(UDP, peer -> node, allowed in normal mode only); heartbeats "
              "every %g ms; heartbeat timeout %g ms." %
              (o.host, o.xdp or "?", o.probe_us, o.hb_ms, o.timeout_ms))
    md.append("")
    md.append("Host load: %s. The prober spins one CPU, but only inside each "
              "trial's window (from 1 ms before T0 to the first drop, and "
              "from 5 ms before the expected heartbeat-loss drop)." % o.load)
    md.append("")
    md.append("**Target: signed command -> first packet dropped, p99 < 1 ms: "
              "%s** (p99 %s us over %d trials)." %
              ("PASS" if passed else "FAIL", fmt(s_tts["p99"]), s_tts["n"]))
    md.append("")
    md.append("## 1. Signed command -> first packet dropped")
    md.append("")
    md.append("T0: CLOCK_MONOTONIC right before the signed `quarantine` "
              "datagram leaves the controller (mgmt namespace; signing is "
              "done before T0). Dropped: the send time of the first probe "
              "that never arrived, minus T0. The probe before it arrived, so "
              "the true moment lies between the two rows; their distance is "
              "the resolution. After each trial a signed `release`.")
    md.append("")
    md += md_table("us", [
        ("command -> first probe dropped", s_tts),
        ("command -> last probe passed (lower bound)", s_lo),
        ("resolution: gap between those two probes", s_gap),
        ("signed release -> first probe through again", s_rel),
        ("agent's own time_to_secure_us (audit: receipt -> map write)",
         s_agent_cmd),
    ], "us")
    md.append("")
    if early:
        md.append("%d trial(s) lost a probe before T0 (not the agent's "
                  "doing) and are left out." % early)
        md.append("")
    md.append("## 2. Heartbeat loss -> first packet dropped, minus the timeout")
    md.append("")
    md.append("Heartbeats stop right after one sent at T_last; the value is "
              "first dropped probe - (T_last + timeout). With the kernel "
              "dead-man switch on, the datapath itself compares the agent's "
              "stamp of the last heartbeat with the timeout on every packet; "
              "with it off, the agent notices on its 100 ms tick.")
    md.append("")
    md += md_table("ms", [
        ("kernel dead-man on (default): first drop - (T_last + timeout)",
         s_hb_on),
        ("  of which: heartbeat sent -> agent's stamp", s_hb_on_delay),
        ("kernel dead-man off (agent tick only)", s_hb_off),
        ("agent's own time_to_secure_us, heartbeat_loss (tick -> map write)",
         s_agent_hb),
    ], "ms")
    md.append("")
    md.append("## 3. Agent SIGKILLed -> dead-man enforcement, minus the timeout")
    md.append("")
    md.append("The agent is SIGKILLed as soon as its stamp of the heartbeat "
              "sent at T_last shows in the dead-man map (polled every 50 us); "
              "no agent runs when the switch trips. Restarted over its pins "
              "between trials.")
    md.append("")
    md += md_table("ms", [
        ("first drop - (T_last + timeout)", s_dm),
        ("  of which: heartbeat sent -> agent's stamp", s_dm_delay),
    ], "ms")
    md.append("")
    md.append("Probe counters: %s." % o.stats)
    md.append("")
    with open(os.path.join(o.out, "tts.md"), "w") as f:
        f.write("\n".join(md))
    sys.stdout.write("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
