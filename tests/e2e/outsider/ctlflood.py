#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Forged controller datagrams for tests/e2e/outsider/ctlflood.sh.

  ctlflood.py forge --pub KEY.pub --host-id ID --out FILE [--version 1|2]

Writes one well-formed heartbeat (README "Controller protocol") whose
signature is random but canonical: it passes every structure check and
libsodium's cheap checks, so the agent spends a whole Ed25519
verification on it. Version 2 names the trusted key's
id (SHA-256 of the public key, first 8 bytes), as an attacker who knows
the public key would; version 1 is the old format, without a key id.
"""
import argparse
import base64
import hashlib
import os
import struct
import time


def forge(pub_b64, host_id, version):
    pk = base64.b64decode(pub_b64.strip(), validate=True)
    if len(pk) != 32:
        raise SystemExit("ctlflood: not a 32-byte public key")
    host = host_id.encode()
    ts = int(time.time() * 1000)
    hdr = b"PCM1" + bytes([version, 1, 0, 0])
    if version == 2:
        hdr += hashlib.sha256(pk).digest()[:8]
    hdr += struct.pack(">QQQ", 2**62, ts, 0) + os.urandom(16)
    body = hdr + bytes([len(host)]) + host + struct.pack(">I", 0)
    # R random; S below 2^252 (so below the group order L): libsodium
    # refuses a non-canonical S at once, a canonical one costs the whole
    # verification, which is what an attacker sends.
    sig = bytearray(os.urandom(64))
    sig[63] &= 0x0F
    return body + bytes(sig)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forge")
    f.add_argument("--pub", required=True)
    f.add_argument("--host-id", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--version", type=int, choices=(1, 2), default=2)
    a = ap.parse_args()
    with open(a.pub) as fh:
        data = forge(fh.read(), a.host_id, a.version)
    with open(a.out, "wb") as fh:
        fh.write(data)
    print(f"forged {len(data)} bytes, version {a.version}")


if __name__ == "__main__":
    main()
