#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Audit-log lines of one event with given fields, for the shell suites.

    audit_grep.py count FILE EVENT [KEY=VALUE...]   how many
    audit_grep.py last  FILE EVENT [KEY=VALUE...]   the last one, as written
    audit_grep.py ms    FILE EVENT [KEY=VALUE...]   the last one's "ts", as
                                                    Unix ms ("" if none)

A missing file counts as empty; lines that are not JSON are skipped.
"""
import datetime
import json
import sys


def unix_ms(line):
    """The "ts" of an audit line (2026-12-02T18:28:06.271Z) as Unix ms."""
    try:
        ts = json.loads(line)["ts"].rstrip("Z")
        d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f")
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)


def main():
    mode, path, event, conds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    want = dict(c.split("=", 1) for c in conds)
    n, last = 0, ""
    try:
        with open(path) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == event and all(
                        str(e.get(k)) == v for k, v in want.items()):
                    n += 1
                    last = line.rstrip("\n")
    except OSError:
        pass
    if mode == "count":
        print(n)
    elif mode == "ms":
        print(unix_ms(last) if last else "")
    else:
        print(last)


if __name__ == "__main__":
    main()
