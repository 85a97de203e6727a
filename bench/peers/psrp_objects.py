"""pypsrp's side of examples/bench_psrp_objects.rs: one pipeline (`Get-Process`) whose
output is N `Get-Process`-shaped objects (a `winrm sim --psrp-processes N` endpoint),
each read into a small record of six fields (as the Rust side's serde struct), with
this process's CPU time; one JSON line on stdout. ROUNDS=N (default 1) runs the
pipeline N times in the same pool and reports the round with the least CPU, as the
Rust side does.

    python psrp_objects.py http://127.0.0.1:PORT/wsman
"""
import json
import os
import sys
import time

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan


class Process:
    __slots__ = ("name", "id", "handles", "working_set64", "cpu", "path")

    def __init__(self, o):
        p = o.extended_properties
        p.update(o.adapted_properties)
        self.name = str(p["Name"])
        self.id = int(p["Id"])
        self.handles = int(p["Handles"])
        self.working_set64 = int(p["WorkingSet64"])
        self.cpu = float(p["CPU"])
        path = p.get("Path")
        self.path = None if path is None else str(path)


def main():
    url = sys.argv[1]
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    wsman = WSMan(host, port=int(port), username="vagrant", password="vagrant", ssl=False,
                  auth="basic", encryption="never", operation_timeout=20, read_timeout=60)
    rounds = max(1, int(os.environ.get("ROUNDS", "1")))
    best = None
    with RunspacePool(wsman) as pool:
        for _ in range(rounds):
            c0, t0 = time.process_time(), time.perf_counter()
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Process")
            out = [Process(o) for o in ps.invoke()]
            wall, used = time.perf_counter() - t0, time.process_time() - c0
            assert out and out[0].name.startswith("svchost"), out[:1]
            if best is None or used < best[2]:
                best = (len(out), wall, used)
            del out
    print(json.dumps({"workload": "psrp_objects", "client": "pypsrp", "objects": best[0],
                      "rounds": rounds, "wall_s": best[1], "cpu_s": best[2]}))


if __name__ == "__main__":
    main()
