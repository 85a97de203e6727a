"""pypsrp's side of examples/bench_psrp.rs: small pipelines (Get-Date) per second in one
opened RunspacePool, sequentially (without and with close() after each) and 32 at once
(begin_invoke/end_invoke), with this process's CPU time; JSON lines on stdout.

    python psrp_pipelines.py http://127.0.0.1:PORT/wsman [SEQ] [CONC_OPS]
"""
import json
import os
import sys
import time

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan


def cpu():
    t = os.times()
    return t.user + t.system


def sequential(pool, seq, close):
    """`seq` Get-Date pipelines one after the other; a JSON line with the CPU used."""
    c0, t0 = cpu(), time.perf_counter()
    for _ in range(seq):
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Date")
        out = ps.invoke()
        assert len(out) == 1, out
        if close:
            ps.close()
    wall, used = time.perf_counter() - t0, cpu() - c0
    workload = "psrp_seq_close" if close else "psrp_seq"
    print(json.dumps({"workload": workload, "client": "pypsrp", "ops": seq, "wall_s": wall, "cpu_s": used}))


def main():
    url = sys.argv[1]
    seq = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    conc_ops = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    wsman = WSMan(host, port=int(port), username="vagrant", password="vagrant", ssl=False,
                  auth="basic", encryption="never", operation_timeout=20, read_timeout=30)
    with RunspacePool(wsman, max_runspaces=32) as pool:
        for _ in range(5):
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Date")
            ps.invoke()
        sequential(pool, seq, close=False)
        # The same with close() after each pipeline: its Signal terminate releases the
        # finished command on the server, the three requests tokio-winrm sends. Without
        # it Windows refuses the pool's next pipeline once MaxConcurrentCommandsPerShell
        # (1,000 by default) finished commands are kept (pypsrp issue #148).
        sequential(pool, seq, close=True)
        c0, t0 = cpu(), time.perf_counter()
        done = 0
        while done < conc_ops:
            batch = []
            for _ in range(min(32, conc_ops - done)):
                ps = PowerShell(pool)
                ps.add_cmdlet("Get-Date")
                ps.begin_invoke()
                batch.append(ps)
            for ps in batch:
                ps.end_invoke()
                assert len(ps.output) == 1, ps.output
            done += len(batch)
        wall, used = time.perf_counter() - t0, cpu() - c0
        print(json.dumps({"workload": "psrp_32", "client": "pypsrp", "ops": conc_ops, "wall_s": wall, "cpu_s": used}))


if __name__ == "__main__":
    main()
