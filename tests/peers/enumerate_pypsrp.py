"""pypsrp's WSMan enumerate (unmodified, from PyPI) against the simulator returns the
same instances as tokio-winrm's enumeration stream (through the `winrm` example tool).
Usage: enumerate_pypsrp.py ENDPOINT (credentials in WINRM_USER / WINRM_PASSWORD; the
tool at $WINRM_CLI, default $CARGO_TARGET_DIR/debug/winrm)."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

from pypsrp.wsman import WSMan

endpoint = sys.argv[1]
user = os.environ["WINRM_USER"]
password = os.environ["WINRM_PASSWORD"]
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/tokio-winrm-target"))
cli = os.environ.get("WINRM_CLI", os.path.join(target, "debug", "winrm"))

N = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
URI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
QUERY = "SELECT Name, State, StartMode FROM Win32_Service WHERE StartMode = 'Auto' OR Name LIKE 'W%'"

u = urlparse(endpoint)
wsman = WSMan(u.hostname, port=u.port, path=u.path.lstrip("/"), ssl=False, auth="basic",
              username=user, password=password, encryption="never")


def items_of(container):
    rows = []
    for item in list(container):
        row = {}
        for prop in list(item):
            row[prop.tag.split("}")[-1]] = prop.text or ""
        rows.append(row)
    return rows


enum = ET.Element("{%s}Enumerate" % N)
ET.SubElement(enum, "{%s}OptimizeEnumeration" % W)
ET.SubElement(enum, "{%s}MaxElements" % W).text = "7"
flt = ET.SubElement(enum, "{%s}Filter" % W, Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL")
flt.text = QUERY
body = wsman.enumerate(URI, enum)
resp = body.find("{%s}EnumerateResponse" % N)
rows = []
items = resp.find("{%s}Items" % W)
if items is not None:
    rows += items_of(items)
ended = resp.find("{%s}EndOfSequence" % W) is not None
context = resp.findtext("{%s}EnumerationContext" % N)
pulls = 0
while not ended:
    pull = ET.Element("{%s}Pull" % N)
    ET.SubElement(pull, "{%s}EnumerationContext" % N).text = context
    ET.SubElement(pull, "{%s}MaxElements" % N).text = "7"
    body = wsman.pull(URI, pull)
    resp = body.find("{%s}PullResponse" % N)
    pulls += 1
    rows += items_of(resp.find("{%s}Items" % N))
    ended = resp.find("{%s}EndOfSequence" % N) is not None
    context = resp.findtext("{%s}EnumerationContext" % N) or context

ours = subprocess.run(
    [cli, "--endpoint", endpoint, "--user", user, "--password", password, "--auth", "basic",
     "--allow-http-basic", "--json", "wql", QUERY],
    check=True, capture_output=True, text=True, timeout=60,
).stdout
our_rows = [json.loads(line) for line in ours.splitlines() if line.strip()]

key = lambda r: r["Name"]
if sorted(rows, key=key) != sorted(our_rows, key=key):
    print("FAIL: pypsrp and tokio-winrm disagree")
    print("pypsrp:", sorted(rows, key=key)[:5])
    print("ours:  ", sorted(our_rows, key=key)[:5])
    sys.exit(1)
if len(rows) < 10 or pulls < 1:
    print(f"FAIL: expected a multi-page result, got {len(rows)} rows in {pulls} pulls")
    sys.exit(1)
print(f"ok   pypsrp enumerate == tokio-winrm stream: {len(rows)} instances, {pulls} pulls")
