#!/usr/bin/env python3
"""tools/s3/faultproxy.py: an HTTP/1.1 proxy in front of an S3 server that
injects the faults a client must survive, for tests/cli/t_remote.sh.

    faultproxy.py UPSTREAM_PORT PORTFILE [--every N] [--faults 503,reset,truncate,slowdown]

Listens on a free loopback port (written to PORTFILE), forwards every
request unchanged (the Host header too, so SigV4 signatures stay valid)
and answers every Nth request (default 3) with the next fault in turn:
  503       HTTP 503 ServiceUnavailable, the request is not forwarded
  slowdown  HTTP 503 with the S3 error code SlowDown, not forwarded
  reset     forwarded; the connection is closed halfway through the body
  truncate  forwarded; the full Content-Length is sent, half the body, close
Counts are printed to stderr on SIGTERM.
"""
import http.client
import http.server
import signal
import socketserver
import sys
import threading

upstream = int(sys.argv[1])
portfile = sys.argv[2]
every, faults = 3, ["503", "reset", "truncate", "slowdown"]
args = sys.argv[3:]
while args:
    if args[0] == "--every":
        every = int(args[1]); args = args[2:]
    elif args[0] == "--faults":
        faults = args[1].split(","); args = args[2:]
    else:
        sys.exit("faultproxy: unknown argument " + args[0])

lock = threading.Lock()
count = {"requests": 0, "faults": 0}


def next_fault():
    with lock:
        count["requests"] += 1
        n = count["requests"]
        if n % every:
            return None
        count["faults"] += 1
        return faults[(n // every - 1) % len(faults)]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def error_body(self, code):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                "<Message>injected by faultproxy</Message></Error>" % code).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = next_fault()
        if fault in ("503", "slowdown"):
            self.error_body("ServiceUnavailable" if fault == "503" else "SlowDown")
            return
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items()}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        if fault in ("reset", "truncate") and self.command != "HEAD" and len(data) > 1:
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if fault == "reset":
                import socket
                import struct
                # SO_LINGER 0: close with a TCP reset, not a clean FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + ".tmp", portfile)


def stop(*_):
    sys.stderr.write("faultproxy: %d requests, %d faults\n" % (count["requests"], count["faults"]))
    sys.stderr.flush()
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
srv.serve_forever()
