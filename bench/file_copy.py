"""File copy benchmark: SIZE_MIB (default 256) up and down, tokio-winrm's `winrm cp` /
`winrm fetch` (a child process: its CPU from RUSAGE_CHILDREN) against pypsrp 0.9.1's
unmodified Client.copy / Client.fetch (this process: RUSAGE_SELF), in the same run,
against one standalone `winrm sim` (release) on loopback. Prints a Markdown table:
MB/s (wall) and client CPU ms per MB, and the ratios.

Usage: python bench/file_copy.py WINRM_BINARY   (pypsrp importable; SIZE_MIB optional)
       JSON=1 python bench/file_copy.py WINRM_BINARY   one JSON line instead (bench/compare.sh)
"""

import json

import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

from pypsrp.client import Client

winrm = sys.argv[1]
size = int(os.environ.get("SIZE_MIB", "256")) << 20
work = tempfile.mkdtemp(prefix="tw-bench-copy-")
src = os.path.join(work, "src.bin")
with open(src, "wb") as f:
    left = size
    while left:
        n = min(left, 1 << 20)
        f.write(os.urandom(n))
        left -= n


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


want = sha(src)
sim = subprocess.Popen([winrm, "sim", "--addr", "127.0.0.1:0", "--ignore-stdin"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
endpoint = sim.stdout.readline().strip()
tool = [winrm, "--endpoint", endpoint, "--user", "vagrant", "--password", "vagrant", "--auth", "basic",
        "--allow-http-basic"]


def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def ours(args):
    c0, t0 = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(tool + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, cpu(resource.RUSAGE_CHILDREN) - c0


def theirs(f):
    c0, t0 = cpu(resource.RUSAGE_SELF), time.perf_counter()
    f()
    return time.perf_counter() - t0, cpu(resource.RUSAGE_SELF) - c0


rows = {}
rows["tokio-winrm up"] = ours(["cp", src, "C:\\Windows\\TEMP\\tw.bin"])
back = os.path.join(work, "tw-back.bin")
rows["tokio-winrm down"] = ours(["fetch", "C:\\Windows\\TEMP\\tw.bin", back])
assert sha(back) == want, "tokio-winrm: the file came back different"
os.remove(back)
u = urlparse(endpoint)
client = Client(u.hostname, port=u.port, path=u.path.lstrip("/"), ssl=False, auth="basic",
                username="vagrant", password="vagrant", encryption="never")
rows["pypsrp up"] = theirs(lambda: client.copy(src, "C:\\Windows\\TEMP\\py.bin"))
back = os.path.join(work, "py-back.bin")
rows["pypsrp down"] = theirs(lambda: client.fetch("C:\\Windows\\TEMP\\py.bin", back))
assert sha(back) == want, "pypsrp: the file came back different"
sim.terminate()
sim.wait()

mb = size / 1e6
if os.environ.get("JSON") == "1":
    line = {"workload": "file_copy", "mib": size >> 20}
    for k, (wall, c) in rows.items():
        who, d = k.split(" ")
        key = ("rust" if who == "tokio-winrm" else who) + "_" + d
        line[key + "_wall_s"] = round(wall, 4)
        line[key + "_cpu_s"] = round(c, 4)
    print(json.dumps(line))
else:
    print("| client, direction | MB/s | client CPU ms/MB |")
    print("| --- | ---: | ---: |")
    for k, (wall, c) in rows.items():
        print("| %s | %.1f | %.2f |" % (k, mb / wall, 1000 * c / mb))
    for d in ("up", "down"):
        (tw, tc), (pw, pc) = rows["tokio-winrm " + d], rows["pypsrp " + d]
        print("| ratio %s (tokio-winrm / pypsrp) | %.1fx | %.1fx less CPU |" % (d, pw / tw, pc / tc))
for f in os.listdir(work):
    os.remove(os.path.join(work, f))
os.rmdir(work)
