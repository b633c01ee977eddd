#!/usr/bin/env python3
"""A TLS backend for the load-balancer tests (cluster_lb: keepalived + nginx in front of it): HTTPS on IP:6443 with a certificate from the
cluster CA. Answers GET /healthz and /readyz with "ok" (header X-Served-By: NAME) and
DELETE /api/v1/nodes/NAME only for a client certificate from the cluster CA with O=system:masters, which it appends
to RECORD. Usage: tls_backend.py NAME IP CERT KEY CA RECORD"""
import http.server
import json
import ssl
import sys

name, ip, cert, key, ca, record = sys.argv[1:7]


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", name)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path in ("/healthz", "/readyz", "/livez"):
            self.reply(200, "ok")
        else:
            self.reply(404, "not found")

    def do_DELETE(self):
        peer = self.connection.getpeercert()
        if not peer:
            self.reply(401, "Unauthorized")
            return
        subject = {k: v for rdn in peer.get("subject", ()) for (k, v) in rdn}
        if subject.get("organizationName") != "system:masters":
            self.reply(403, "Forbidden: %r" % subject)
            return
        prefix = "/api/v1/nodes/"
        if not self.path.startswith(prefix):
            self.reply(404, "not found")
            return
        node = self.path[len(prefix):]
        with open(record, "a") as f:
            f.write("%s %s %s\n" % (name, node, subject.get("commonName")))
        self.reply(200, json.dumps({"kind": "Status", "status": "Success"}), "application/json")

    def log_message(self, *a):
        pass


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_OPTIONAL


class Server(http.server.ThreadingHTTPServer):
    # The TLS handshake runs on the connection's own thread: a client that connects and stalls (a bare TCP
    # probe) must not block accept() for everyone else.
    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(tls, client_address)


Server((ip, 6443), H).serve_forever()
