#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Audit-log lines of one event with given fields, for the shell suites.

    audit_grep.py count FILE EVENT [KEY=VALUE...]   how many
    audit_grep.py last  FILE EVENT [KEY=VALUE...]   the last one, as written

A missing file counts as empty; lines that are not JSON are skipped.
"""
import json
import sys


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
    print(n if mode == "count" else last)


if __name__ == "__main__":
    main()
