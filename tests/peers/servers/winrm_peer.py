"""What the pyspnego WinRM peers (credssp_server.py, ntlm_server.py) share: the NTLM
user file pyspnego reads, the SOAP envelope of a canned answer, the HTTP handler's
plumbing, and serving on loopback until stdin closes."""

import os
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOUNDARY = b"--Encrypted Boundary"


def ntlm_user_file(lines):
    """Writes `DOMAIN:USER:PASSWORD` lines to a file and names it in NTLM_USER_FILE
    (call it before importing spnego); returns its path."""
    creds = tempfile.NamedTemporaryFile("w", delete=False, suffix=".ntlm")
    creds.write(lines)
    creds.close()
    os.environ["NTLM_USER_FILE"] = creds.name
    return creds.name


def envelope(ns, action, relates_to, body):
    """A SOAP envelope with the namespace declarations `ns`, as bytes."""
    return (
        f"<s:Envelope {ns}><s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 (one handler object per connection), quiet, with `reply`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler, url, user_file, tls=None):
    """Serves `handler` on 127.0.0.1 (inside `tls`, an ssl.SSLContext, when given),
    prints `url` with `{port}` filled in on the first stdout line, runs until stdin
    closes, then removes the user file."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    print(url.format(port=server.server_address[1]), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the parent closes stdin
    server.shutdown()
    os.unlink(user_file)
