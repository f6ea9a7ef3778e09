#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers of the fleetauth scenario (tests/e2e/failsecure/fleetauth.sh).

Run with Debian's /usr/bin/python3 (stdlib only) inside a namespace:

  gateway ADDR PORT [--timeout S] [--heartbeat-b64 FILE] [--prefix P]
          [--tls-cert PEM --tls-key PEM]
      A fake etcd v3 JSON gateway: grants every lease, answers every
      keep-alive with TTL > 0, takes every put, and holds every watch
      open with nothing in it. A range finds nothing, except the
      heartbeat key if --heartbeat-b64 names a recorded value: the
      network attacker between agent and etcd, with no key of anyone.
      With --tls-cert/--tls-key it speaks HTTPS with that certificate.
      Prints "listening" once bound, then one line per request path.
  udp-count PORT [--timeout S]
      Counts datagrams to PORT until SIGTERM or the timeout; prints
      "listening" once bound and "received N" at the end.
  udp-burst HOST PORT N
      Sends N datagrams, 2 ms apart.
  etcd-get URL KEY
      The value of KEY (base64, as the gateway has it) on stdout; exit 1
      if absent.
"""

import argparse
import base64
import http.server
import json
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time

MAX_LIFETIME = 900.0  # nothing here outlives this, whatever it is told


def say(*words):
    print(*words, flush=True)


def bounded(seconds):
    return max(0.1, min(float(seconds), MAX_LIFETIME))


def b64(data):
    return base64.b64encode(data).decode()


class Gateway(http.server.BaseHTTPRequestHandler):
    """Speaks just enough etcd v3 JSON to look alive."""

    protocol_version = "HTTP/1.1"
    revision = 5
    lock = threading.Lock()
    heartbeat = None  # (key, value bytes) to answer ranges of that key with
    deadline = 0.0

    def log_message(self, fmt, *args):  # one line per request is ours
        pass

    def reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def header(self):
        return {"cluster_id": "1", "member_id": "1",
                "revision": str(Gateway.revision), "raft_term": "2"}

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        say(self.path)
        if self.path == "/v3/watch":
            return self.watch()
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        if self.path == "/v3/lease/grant":
            return self.reply({"header": self.header(), "ID": "7587881224",
                               "TTL": str(req.get("TTL", "3"))})
        if self.path == "/v3/lease/keepalive":
            return self.reply({"result": {"header": self.header(),
                                          "ID": req.get("ID", "7587881224"),
                                          "TTL": "3"}})
        if self.path == "/v3/kv/put":
            with Gateway.lock:
                Gateway.revision += 1
            return self.reply({"header": self.header()})
        if self.path == "/v3/kv/range":
            return self.range(req)
        return self.reply({"header": self.header()})

    def range(self, req):
        hb = Gateway.heartbeat
        key = base64.b64decode(req.get("key", ""))
        out = {"header": self.header()}
        if hb and key == hb[0]:
            out["kvs"] = [{"key": b64(key), "value": b64(hb[1]),
                           "create_revision": "2", "mod_revision": "3",
                           "version": "1"}]
            out["count"] = "1"
        return self.reply(out)

    def watch(self):
        """A watch that is created and then never says anything."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        line = json.dumps({"result": {"header": self.header(),
                                      "created": True}}).encode() + b"\n"
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            while time.monotonic() < Gateway.deadline:
                time.sleep(0.5)
        except OSError:
            pass
        self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def gateway(args):
    Gateway.deadline = time.monotonic() + bounded(args.timeout)
    if args.heartbeat_b64:
        with open(args.heartbeat_b64) as f:
            value = base64.b64decode(f.read().strip())
        Gateway.heartbeat = ((args.prefix + "/heartbeat").encode(), value)
    srv = Server((args.addr, args.port), Gateway)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    say("listening")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while time.monotonic() < Gateway.deadline:
        time.sleep(0.2)
    return 0


def udp_count(args):
    deadline = time.monotonic() + bounded(args.timeout)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", args.port))
    sock.settimeout(0.2)
    got = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    say("listening")
    while not stop and time.monotonic() < deadline:
        try:
            sock.recv(2048)
            got += 1
        except (socket.timeout, InterruptedError):
            pass
    say("received", got)
    return 0


def udp_burst(args):
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    for i in range(max(0, min(args.n, 10000))):
        try:
            sock.sendto(b"fleetauth %d" % i, (args.host, args.port))
        except OSError:
            pass
        time.sleep(0.002)
    return 0


def etcd_get(args):
    import urllib.request
    req = urllib.request.Request(
        args.url + "/v3/kv/range",
        data=json.dumps({"key": b64(args.key.encode())}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        kvs = json.load(r).get("kvs") or []
    if not kvs:
        return 1
    say(kvs[0].get("value", ""))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("gateway")
    s.add_argument("addr")
    s.add_argument("port", type=int)
    s.add_argument("--timeout", default=300)
    s.add_argument("--heartbeat-b64")
    s.add_argument("--prefix", default="/portcullis")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.set_defaults(fn=gateway)
    s = sub.add_parser("udp-count")
    s.add_argument("port", type=int)
    s.add_argument("--timeout", default=60)
    s.set_defaults(fn=udp_count)
    s = sub.add_parser("udp-burst")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("n", type=int)
    s.set_defaults(fn=udp_burst)
    s = sub.add_parser("etcd-get")
    s.add_argument("url")
    s.add_argument("key")
    s.set_defaults(fn=etcd_get)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
