"""Real peers against the simulator over Basic on HTTP: pywinrm (run_cmd, run_ps) and
pypsrp (WinRS with stdin), unmodified from PyPI. Usage: winrs_basic.py ENDPOINT
(credentials in WINRM_USER / WINRM_PASSWORD). Exits non-zero on the first mismatch."""

import os
import sys

import winrm
from pypsrp.shell import Process, SignalCode, WinRS
from pypsrp.wsman import WSMan
from urllib.parse import urlparse

endpoint = sys.argv[1]
user = os.environ["WINRM_USER"]
password = os.environ["WINRM_PASSWORD"]


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


# pywinrm
s = winrm.Session(endpoint, auth=(user, password), transport="basic")
r = s.run_cmd("echo", ["hello", "from", "pywinrm"])
check("pywinrm run_cmd stdout", r.std_out, b"hello from pywinrm\r\n")
check("pywinrm run_cmd exit code", r.status_code, 0)
r = s.run_cmd("cmd", ["/c", "echo out && echo err>&2 && exit /b 7"])
check("pywinrm stdout with stderr", r.std_out.strip(), b"out")
check("pywinrm stderr", r.std_err.strip(), b"err")
check("pywinrm exit code 7", r.status_code, 7)
r = s.run_ps("Write-Output 'ps says hi'; Write-Error 'ps failed'")
check("pywinrm run_ps stdout", r.std_out.strip(), b"ps says hi")
if b"ps failed" not in r.std_err:
    print(f"FAIL pywinrm run_ps stderr: {r.std_err!r}")
    sys.exit(1)
print("ok   pywinrm run_ps stderr (CLIXML decoded by pywinrm)")

# pypsrp
u = urlparse(endpoint)
wsman = WSMan(
    u.hostname,
    port=u.port,
    path=u.path.lstrip("/"),
    ssl=False,
    auth="basic",
    username=user,
    password=password,
    encryption="never",
)
with WinRS(wsman) as shell:
    p = Process(shell, "findstr", ["fruit"])
    p.begin_invoke()
    p.send(b"fruit: apple\r\nvegetable: leek\r\n", end=False)
    p.send(b"fruit: pear\r\n", end=True)
    p.end_invoke()
    p.signal(SignalCode.CTRL_C)
    check("pypsrp findstr stdin->stdout", p.stdout, b"fruit: apple\r\nfruit: pear\r\n")
    check("pypsrp exit code", p.rc, 0)
    p = Process(shell, "cmd.exe", ["/c", "exit", "/b", "5"])
    p.invoke()
    check("pypsrp exit code 5", p.rc, 5)
print("all peer checks passed")
