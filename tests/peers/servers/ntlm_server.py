"""An independent WinRM test server: pyspnego's NTLM acceptor (PyPI), and its Negotiate
(SPNEGO) acceptor for a client that sends a NegTokenInit (NTLM inside SPNEGO here: no
Kerberos), with WinRM message encryption ([MS-WSMV] 2.2.9.1), answering Identify, a WinRS command (Create, Command,
Receive, Signal, Delete) and an enumeration (Enumerate, Pull, Release) with canned but
plausible responses. One NTLM context per TCP connection, as Windows keeps it. Every
request after the handshake must be sealed (AllowUnencrypted=false).

Usage: ntlm_server.py  (prints `http://127.0.0.1:PORT/wsman` on the first stdout line;
user `vagrant`, password `vagrant`; runs until stdin closes)."""

import base64
import re

import winrm_peer
from winrm_peer import BOUNDARY, ntlm_user_file, serve

USER_FILE = ntlm_user_file(":vagrant:vagrant\nCORP:vagrant:vagrant\n")

import spnego  # noqa: E402  (reads NTLM_USER_FILE)

CT_ENC = 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"'
)
SHELL_ID = "11111111-2222-3333-4444-555555555555"
COMMAND_ID = "66666666-7777-8888-9999-AAAAAAAAAAAA"
OUTPUT = b"hello from pyspnego\r\n"


def envelope(action, relates_to, body):
    return winrm_peer.envelope(NS, action, relates_to, body)


def service(name):
    return f"<p:Win32_Service><p:Name>{name}</p:Name><p:State>Running</p:State></p:Win32_Service>"


def answer(req):
    text = req.decode("utf-8", "replace")
    m = re.search(r"<[\w:]*MessageID[^>]*>([^<]+)<", text)
    rel = m.group(1) if m else ""
    m = re.search(r"<[\w:]*Action[^>]*>([^<]+)<", text)
    action = m.group(1) if m else ""
    if "Identify" in text and not action:
        return envelope("", rel, (
            '<wsmid:IdentifyResponse xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
            "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>"
            "<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"
            "<wsmid:ProductVersion>OS: 10.0.17763 SP: 0.0 Stack: 3.0 (pyspnego peer)</wsmid:ProductVersion>"
            "</wsmid:IdentifyResponse>"))
    sh = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
    if action == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create":
        return envelope(action + "Response", rel, (
            "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{sh}/cmd</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{SHELL_ID}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{SHELL_ID}</rsp:ShellId><rsp:ResourceUri>{sh}/cmd</rsp:ResourceUri>"
            "<rsp:State>Connected</rsp:State></rsp:Shell>"))
    if action == f"{sh}/Command":
        return envelope(action + "Response", rel,
                        f"<rsp:CommandResponse><rsp:CommandId>{COMMAND_ID}</rsp:CommandId></rsp:CommandResponse>")
    if action == f"{sh}/Receive":
        out = base64.b64encode(OUTPUT).decode()
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
    en = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
    if action == f"{en}/Enumerate":
        if "OptimizeEnumeration" in text:
            return envelope(action + "Response", rel, (
                "<n:EnumerateResponse><n:EnumerationContext>ctx-1</n:EnumerationContext>"
                f"<w:Items>{service('WinRM')}</w:Items></n:EnumerateResponse>"))
        return envelope(action + "Response", rel,
                        "<n:EnumerateResponse><n:EnumerationContext>ctx-1</n:EnumerationContext></n:EnumerateResponse>")
    if action == f"{en}/Pull":
        return envelope(action + "Response", rel, (
            f"<n:PullResponse><n:Items>{service('Spooler')}{service('W32Time')}</n:Items>"
            "<n:EndOfSequence/></n:PullResponse>"))
    if action == f"{en}/Release":
        return envelope(action + "Response", rel, "")
    return None


class Handler(winrm_peer.Handler):
    ctx = None  # one NTLM context per connection (this handler object)

    def refuse(self):
        self.reply(401, headers=[("WWW-Authenticate", "Negotiate")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("negotiate "):
            token = base64.b64decode(auth.split(" ", 1)[1])
            if token.startswith(b"NTLMSSP\x00") and token[8:12] == b"\x01\x00\x00\x00":
                self.ctx = spnego.server(protocol="ntlm")
            elif token[:1] == b"\x60":  # a SPNEGO NegTokenInit
                self.ctx = spnego.server(protocol="negotiate")
            if self.ctx is None:
                return self.refuse()
            try:
                out = self.ctx.step(token)
            except Exception:  # wrong password and friends
                self.ctx = None
                return self.refuse()
            if not self.ctx.complete:
                return self.reply(401, headers=[("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode())])
            # SPNEGO: the acceptor's last token (accept-completed, its mechListMIC).
            self.final = [("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode())] if out else []
            if not body:
                return self.reply(200, headers=self.final)
        if self.ctx is None or not self.ctx.complete:
            return self.refuse()
        if "multipart/encrypted" not in self.headers.get("Content-Type", ""):
            return self.reply(500)  # AllowUnencrypted=false
        try:
            m = re.search(rb"Length=(\d+)\r\n", body)
            payload = body.split(b"application/octet-stream\r\n", 1)[1]
            payload = payload[: payload.rindex(BOUNDARY + b"--")]
            sig_len = int.from_bytes(payload[:4], "little")
            plain = self.ctx.unwrap_winrm(payload[4: 4 + sig_len], payload[4 + sig_len:])
            assert len(plain) == int(m.group(1))
        except Exception:
            self.ctx = None
            return self.reply(400)
        resp = answer(plain)
        if resp is None:
            return self.reply(500)
        w = self.ctx.wrap_winrm(resp)
        sealed = (
            BOUNDARY + b"\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(resp)}\r\n".encode()
            + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + len(w.header).to_bytes(4, "little") + w.header + w.data + BOUNDARY + b"--\r\n"
        )
        self.reply(200, sealed, [("Content-Type", CT_ENC)])


serve(Handler, "http://127.0.0.1:{port}/wsman", USER_FILE)
