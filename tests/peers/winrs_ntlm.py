"""Real peers against the simulator's NTLM acceptor with message encryption over HTTP:
pywinrm (transport='ntlm', message_encryption='always') and pypsrp (auth='ntlm',
encryption='always'), unmodified from PyPI. Usage: winrs_ntlm.py ENDPOINT (credentials
in WINRM_USER / WINRM_PASSWORD). Exits non-zero on the first mismatch."""

import os
import sys
from urllib.parse import urlparse

import winrm
from pypsrp.shell import Process, WinRS
from pypsrp.wsman import WSMan

endpoint = sys.argv[1]
user = os.environ["WINRM_USER"]
password = os.environ["WINRM_PASSWORD"]


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


# pywinrm, NTLM with message encryption
s = winrm.Session(endpoint, auth=(user, password), transport="ntlm", message_encryption="always")
r = s.run_cmd("echo", ["sealed", "by", "pywinrm"])
check("pywinrm ntlm run_cmd stdout", r.std_out, b"sealed by pywinrm\r\n")
check("pywinrm ntlm run_cmd exit code", r.status_code, 0)
r = s.run_cmd("cmd", ["/c", "echo out && exit /b 3"])
check("pywinrm ntlm exit code 3", r.status_code, 3)

# A wrong password is refused.
bad = winrm.Session(endpoint, auth=(user, password + "x"), transport="ntlm", message_encryption="always")
try:
    bad.run_cmd("echo", ["never"])
    print("FAIL pywinrm ntlm wrong password was accepted")
    sys.exit(1)
except winrm.exceptions.InvalidCredentialsError:
    print("ok   pywinrm ntlm wrong password refused")

# pypsrp, NTLM with message encryption
u = urlparse(endpoint)
wsman = WSMan(
    u.hostname,
    port=u.port,
    path=u.path.lstrip("/"),
    ssl=False,
    auth="ntlm",
    username=user,
    password=password,
    encryption="always",
)
with WinRS(wsman) as shell:
    p = Process(shell, "echo", ["sealed", "by", "pypsrp"])
    p.invoke()
    check("pypsrp ntlm stdout", p.stdout, b"sealed by pypsrp\r\n")
    check("pypsrp ntlm exit code", p.rc, 0)
print("all NTLM peer checks passed")
