"""An independent CredSSP acceptor for WinRM: pyspnego's CredSSP server (PyPI,
`spnego.server(protocol="credssp")`, with its own inner TLS certificate and its NTLM
acceptor inside) behind an HTTPS server, with CredSSP message encryption ([MS-WSMV]
2.2.9.1.3: multipart/encrypted, or multipart/x-multi-encrypted in 16 KiB parts),
answering Identify and a WinRS command (Create, Command, Receive, Signal, Delete) with
canned responses; `sim-gen --kib N` answers N KiB of output. One CredSSP context per
TCP connection. Every request after the exchange must be encrypted.

Usage: credssp_server.py CERT_PEM KEY_PEM (prints `https://localhost:PORT/wsman` on the
first stdout line; user `SIM\\vagrant` or `vagrant`, password `vagrant`; the delegated
credentials are printed to stderr as `delegated: DOMAIN\\USER password-ok`; runs until
stdin closes)."""

import base64
import re
import ssl
import sys

import winrm_peer
from winrm_peer import BOUNDARY, ntlm_user_file, serve

USER_FILE = ntlm_user_file(":vagrant:vagrant\nSIM:vagrant:vagrant\n")

import spnego  # noqa: E402  (reads NTLM_USER_FILE)

PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
CHUNK = 16 * 1024
NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"'
)
SHELL_ID = "11111111-2222-3333-4444-555555555555"
COMMAND_ID = "66666666-7777-8888-9999-AAAAAAAAAAAA"
LINE = b"pyspnego credssp 0123456789 abcdefghijklmnopqrstuvwxyz\r\n"


def envelope(action, relates_to, body):
    return winrm_peer.envelope(NS, action, relates_to, body)


def answer(req, state):
    text = req.decode("utf-8", "replace")
    m = re.search(r"<[\w:]*MessageID[^>]*>([^<]+)<", text)
    rel = m.group(1) if m else ""
    m = re.search(r"<[\w:]*Action[^>]*>([^<]+)<", text)
    action = m.group(1) if m else ""
    sh = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
    if "Identify" in text and not action:
        return envelope("", rel, (
            '<wsmid:IdentifyResponse xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
            "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>"
            "<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"
            "<wsmid:ProductVersion>OS: 10.0.17763 SP: 0.0 Stack: 3.0 (pyspnego credssp peer)</wsmid:ProductVersion>"
            "</wsmid:IdentifyResponse>"))
    if action == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create":
        return envelope(action + "Response", rel, (
            "<x:ResourceCreated><a:Address>https://localhost/wsman</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{sh}/cmd</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{SHELL_ID}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{SHELL_ID}</rsp:ShellId><rsp:ResourceUri>{sh}/cmd</rsp:ResourceUri>"
            "<rsp:State>Connected</rsp:State></rsp:Shell>"))
    if action == f"{sh}/Command":
        m = re.search(r"<rsp:Command>sim-gen</rsp:Command>\s*<rsp:Arguments>--kib</rsp:Arguments>\s*<rsp:Arguments>(\d+)<", text)
        size = int(m.group(1)) * 1024 if m else len(LINE)
        state["output"] = (LINE * (size // len(LINE) + 1))[:size]
        return envelope(action + "Response", rel,
                        f"<rsp:CommandResponse><rsp:CommandId>{COMMAND_ID}</rsp:CommandId></rsp:CommandResponse>")
    if action == f"{sh}/Receive":
        out = base64.b64encode(state.get("output", LINE)).decode()
        return envelope(action + "Response", rel, (
            "<rsp:ReceiveResponse>"
            f'<rsp:Stream Name="stdout" CommandId="{COMMAND_ID}">{out}</rsp:Stream>'
            f'<rsp:Stream Name="stdout" CommandId="{COMMAND_ID}" End="true"></rsp:Stream>'
            f'<rsp:Stream Name="stderr" CommandId="{COMMAND_ID}" End="true"></rsp:Stream>'
            f'<rsp:CommandState CommandId="{COMMAND_ID}" State="{sh}/CommandState/Done">'
            "<rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"))
    if action == f"{sh}/Signal":
        return envelope(action + "Response", rel, "<rsp:SignalResponse/>")
    if action == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete":
        return envelope(action + "Response", rel, "")
    return None


def split_parts(body):
    """(declared length, encrypted bytes) of each part of an encrypted body."""
    head = BOUNDARY + b"\r\n\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
    end = BOUNDARY + b"--"
    body = body[: body.rindex(end)]
    parts = []
    for chunk in body.split(head)[1:]:
        length = int(re.search(rb"Length=(\d+)\r\n", chunk).group(1))
        payload = chunk.split(b"application/octet-stream\r\n", 1)[1]
        parts.append((length, payload[4:]))  # after the u32 trailer length
    return parts


class Handler(winrm_peer.Handler):
    ctx = None  # one CredSSP context per connection (this handler object)

    def refuse(self):
        self.reply(401, headers=[("WWW-Authenticate", "CredSSP")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("credssp "):
            token = base64.b64decode(auth.split(" ", 1)[1])
            if self.ctx is None or self.ctx.complete:
                self.ctx = spnego.server(protocol="credssp")
                self.state = {}
            try:
                out = self.ctx.step(token)
            except Exception as e:  # wrong password and friends
                print(f"refused: {type(e).__name__}", file=sys.stderr, flush=True)
                self.ctx = None
                return self.refuse()
            if not self.ctx.complete:
                if not out:
                    self.ctx = None
                    return self.refuse()
                return self.reply(401, headers=[("WWW-Authenticate", "CredSSP " + base64.b64encode(out).decode())])
            cred = self.ctx.get_extra_info("client_credential")
            ok = cred.password == "vagrant"
            print(f"delegated: {cred.domain_name}\\{cred.username} password-{'ok' if ok else 'wrong'}",
                  file=sys.stderr, flush=True)
            if not body:
                return self.reply(200)
        if self.ctx is None or not self.ctx.complete:
            return self.refuse()
        if "encrypted" not in self.headers.get("Content-Type", ""):
            return self.reply(500)  # AllowUnencrypted=false
        try:
            plain = b""
            for length, data in split_parts(body):
                part = self.ctx.unwrap(data).data
                assert len(part) == length, (len(part), length)
                plain += part
        except Exception as e:
            print(f"undecryptable request: {e!r}", file=sys.stderr, flush=True)
            self.ctx = None
            return self.reply(400)
        resp = answer(plain, self.state)
        if resp is None:
            return self.reply(500)
        out = b""
        for i in range(0, len(resp), CHUNK):
            chunk = resp[i: i + CHUNK]
            w = self.ctx.wrap_winrm(chunk)
            out += (
                BOUNDARY + b"\r\n\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
                + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(chunk)}\r\n".encode()
                + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
                + len(w.header).to_bytes(4, "little") + w.header + w.data
            )
        out += BOUNDARY + b"--\r\n"
        kind = "multipart/x-multi-encrypted" if len(resp) > CHUNK else "multipart/encrypted"
        self.reply(200, out, [("Content-Type", f'{kind};protocol="{PROTOCOL}";boundary="Encrypted Boundary"')])


tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(sys.argv[1], sys.argv[2])
serve(Handler, "https://localhost:{port}/wsman", USER_FILE, tls)
