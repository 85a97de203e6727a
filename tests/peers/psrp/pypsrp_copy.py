"""pypsrp's Client.copy / Client.fetch (unmodified, from PyPI) against the simulator's
file system, and across implementations: files of 0 bytes, 1 byte, 200 KiB and 1.5 MB
(several pypsrp input chunks) go up with pypsrp and come back with pypsrp and with
`winrm fetch`, and go up with `winrm cp` and come back with pypsrp; every file is
compared byte for byte. A missing file and a directory fail pypsrp's fetch.
Usage: pypsrp_copy.py ENDPOINT (credentials in WINRM_USER / WINRM_PASSWORD; the tool at
$WINRM_CLI, default $CARGO_TARGET_DIR/debug/winrm)."""

import os
import subprocess
import sys
import tempfile
from urllib.parse import urlparse

from pypsrp.client import Client

endpoint = sys.argv[1]
user = os.environ["WINRM_USER"]
password = os.environ["WINRM_PASSWORD"]
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/tokio-winrm-target"))
cli = os.environ.get("WINRM_CLI", os.path.join(target, "debug", "winrm"))
u = urlparse(endpoint)
client = Client(u.hostname, port=u.port, path=u.path.lstrip("/"), ssl=False, auth="basic",
                username=user, password=password, encryption="never")
tool = [cli, "--endpoint", endpoint, "--user", user, "--password", password, "--auth", "basic",
        "--allow-http-basic"]
work = tempfile.mkdtemp()
failed = 0


def check(what, ok):
    global failed
    print(("ok   " if ok else "FAILED ") + what)
    if not ok:
        failed = 1


def read(p):
    with open(p, "rb") as f:
        return f.read()


for n in (0, 1, 200 * 1024, 1500 * 1000):
    data = os.urandom(n)
    src = os.path.join(work, "src%d.bin" % n)
    with open(src, "wb") as f:
        f.write(data)
    remote = "C:\\Windows\\TEMP\\py%d.bin" % n
    out = client.copy(src, remote)
    check("pypsrp copy of %d bytes returned %s" % (n, out), out.lower() == remote.lower())
    back = os.path.join(work, "back%d.bin" % n)
    if n == 0:
        # fetch.ps1 hashes `$null` when the file is empty: Windows fails it too.
        try:
            client.fetch(remote, back)
            check("pypsrp fetch of an empty file fails (as on Windows)", False)
        except Exception as e:
            check("pypsrp fetch of an empty file fails (as on Windows): %s" % str(e).splitlines()[0], True)
    else:
        client.fetch(remote, back)
        check("pypsrp copy then pypsrp fetch: %d bytes identical" % n, read(back) == data)
    ours = os.path.join(work, "ours%d.bin" % n)
    subprocess.run(tool + ["fetch", remote, ours], check=True, stderr=subprocess.DEVNULL)
    check("pypsrp copy then winrm fetch: %d bytes identical" % n, read(ours) == data)
    remote2 = "%TEMP%\\tw" + str(n) + ".bin"
    subprocess.run(tool + ["cp", src, remote2], check=True, stderr=subprocess.DEVNULL)
    back2 = os.path.join(work, "back2_%d.bin" % n)
    if n > 0:
        client.fetch(remote2, back2, expand_variables=True)
        check("winrm cp then pypsrp fetch (%%TEMP%% expanded): %d bytes identical" % n, read(back2) == data)
    else:
        subprocess.run(tool + ["fetch", remote2, back2], check=True, stderr=subprocess.DEVNULL)
        check("winrm cp then winrm fetch of an empty file", read(back2) == b"")

for bad, what in (("C:\\Windows\\TEMP\\missing.bin", "a missing file"), ("C:\\Windows", "a directory")):
    try:
        client.fetch(bad, os.path.join(work, "bad"))
        check("pypsrp fetch of %s fails" % what, False)
    except Exception as e:  # pypsrp raises WinRMError (or its subclasses)
        check("pypsrp fetch of %s fails: %s" % (what, str(e).splitlines()[0]), not os.path.exists(os.path.join(work, "bad")))

sys.exit(failed)
