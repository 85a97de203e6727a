"""Real peers against the simulator's SPNEGO acceptor: pyspnego's `negotiate` protocol
(from PyPI, unmodified; no Kerberos here, so NTLM inside SPNEGO) through pypsrp's WSMan
(auth='negotiate', encryption='always': every message sealed). First it checks that
pyspnego's first token really is a SPNEGO NegTokenInit offering NTLM (not a raw NTLM
token). Usage: winrs_spnego.py ENDPOINT (credentials in WINRM_USER / WINRM_PASSWORD).
Exits non-zero on the first mismatch."""

import os
import sys
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

import spnego
from pypsrp.exceptions import AuthenticationError
from pypsrp.shell import Process, WinRS
from pypsrp.wsman import WSMan

endpoint = sys.argv[1]
user = os.environ["WINRM_USER"]
password = os.environ["WINRM_PASSWORD"]
u = urlparse(endpoint)


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


# What pyspnego's negotiate sends first: a NegTokenInit ([APPLICATION 0], the SPNEGO
# OID) whose mechTypes hold NTLMSSP (1.3.6.1.4.1.311.2.2.10) and whose mechToken is
# the NTLM NEGOTIATE.
ctx = spnego.client(user, password, hostname=u.hostname, service="HTTP", protocol="negotiate")
first = ctx.step()
check("pyspnego negotiate: first token is a NegTokenInit", first[:1], b"\x60")
check("pyspnego negotiate: SPNEGO OID", b"\x06\x06\x2b\x06\x01\x05\x05\x02" in first, True)
check("pyspnego negotiate: offers NTLMSSP", b"\x06\x0a\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a" in first, True)
check("pyspnego negotiate: NTLM NEGOTIATE inside", b"NTLMSSP\x00\x01\x00\x00\x00" in first, True)


def wsman(pw):
    return WSMan(u.hostname, port=u.port, path=u.path.lstrip("/"), ssl=False, auth="negotiate",
                 username=user, password=pw, encryption="always")


w = wsman(password)
with WinRS(w) as shell:
    p = Process(shell, "echo", ["sealed", "by", "pypsrp", "negotiate"])
    p.invoke()
    check("pypsrp negotiate stdout", p.stdout, b"sealed by pypsrp negotiate\r\n")
    check("pypsrp negotiate exit code", p.rc, 0)
    p = Process(shell, "cmd", ["/c", "exit /b 3"])
    p.invoke()
    check("pypsrp negotiate exit code 3", p.rc, 3)
    # A large output: many sealed Receive responses.
    p = Process(shell, "sim-gen", ["--kib", "256"])
    p.invoke()
    check("pypsrp negotiate large output", len(p.stdout), 256 * 1024)

# WQL through WS-Enumeration, sealed.
N = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
URI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
enum = ET.Element("{%s}Enumerate" % N)
ET.SubElement(enum, "{%s}OptimizeEnumeration" % W)
ET.SubElement(enum, "{%s}MaxElements" % W).text = "100"
flt = ET.SubElement(enum, "{%s}Filter" % W, Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL")
flt.text = "SELECT Name FROM Win32_Service"
body = w.enumerate(URI, enum)
resp = body.find("{%s}EnumerateResponse" % N)
items = resp.find("{%s}Items" % W)
rows = len(list(items)) if items is not None else 0
context = resp.findtext("{%s}EnumerationContext" % N)
while resp.find("{%s}EndOfSequence" % W) is None and resp.find("{%s}EndOfSequence" % N) is None:
    pull = ET.Element("{%s}Pull" % N)
    ET.SubElement(pull, "{%s}EnumerationContext" % N).text = context
    ET.SubElement(pull, "{%s}MaxElements" % N).text = "100"
    body = w.pull(URI, pull)
    resp = body.find("{%s}PullResponse" % N)
    items = resp.find("{%s}Items" % N)
    rows += len(list(items)) if items is not None else 0
    context = resp.findtext("{%s}EnumerationContext" % N) or context
check("pypsrp negotiate WQL rows >= 10", rows >= 10, True)

# A wrong password is refused.
try:
    with WinRS(wsman(password + "x")) as shell:
        pass
    print("FAIL pypsrp negotiate: a wrong password was accepted")
    sys.exit(1)
except AuthenticationError:
    print("ok   pypsrp negotiate: wrong password refused")
print("all SPNEGO peer checks passed")
