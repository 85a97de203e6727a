"""The Python side of bench/compare.sh: the same workloads through pywinrm and pypsrp,
unmodified from PyPI, against the simulator. One workload per run, one JSON line on
stdout with the same fields as examples/bench_client.rs.

  peers.py LIB w1 URL OPS CONCURRENCY [basic|ntlm]   open shell, echo, read, close
  peers.py LIB w2 URL MIB                            stdout of `sim-gen --mib N`
  peers.py pypsrp w3 URL COUNT                       enumerate Sim_Item into dicts

LIB is pywinrm or pypsrp. CPU is this process's own (getrusage RUSAGE_SELF), measured
around the workload only; peak RSS is VmHWM from /proc/self/status. Credentials are the
simulator's defaults (vagrant/vagrant)."""

import json
import resource
import sys
import threading
import time
from urllib.parse import urlparse

USER = PASSWORD = "vagrant"
# Same MaxEnvelopeSize as the tokio-winrm W3 client.
W3_ENVELOPE = 512000
MAX_ELEMENTS = 32000


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def pypsrp_wsman(url, auth="basic", envelope=153600):
    from pypsrp.wsman import WSMan

    u = urlparse(url)
    return WSMan(
        u.hostname,
        port=u.port,
        path=u.path.lstrip("/"),
        ssl=False,
        auth=auth,
        username=USER,
        password=PASSWORD,
        encryption="always" if auth == "ntlm" else "never",
        max_envelope_size=envelope,
        operation_timeout=60,
    )


def make_echo(lib, url, auth):
    """A function running one W1 operation, with its own session (one per thread)."""
    if lib == "pywinrm":
        import winrm

        if auth == "ntlm":
            s = winrm.Session(url, auth=(USER, PASSWORD), transport="ntlm", message_encryption="always")
        else:
            s = winrm.Session(url, auth=(USER, PASSWORD), transport="basic")

        def op():
            r = s.run_cmd("echo", ["hello"])
            if r.std_out != b"hello\r\n" or r.status_code != 0:
                raise RuntimeError(f"unexpected output {r.std_out!r} {r.status_code}")

        return op
    from pypsrp.shell import Process, WinRS

    wsman = pypsrp_wsman(url, auth)

    def op():
        with WinRS(wsman) as shell:
            p = Process(shell, "echo", ["hello"])
            p.invoke()
            if p.stdout != b"hello\r\n" or p.rc != 0:
                raise RuntimeError(f"unexpected output {p.stdout!r} {p.rc}")

    return op


def w1(lib, url, ops, conc, auth):
    ops_fns = [make_echo(lib, url, auth) for _ in range(conc)]
    for op in ops_fns[: min(conc, 8)]:
        op()
    lock = threading.Lock()
    state = {"next": 0, "failures": 0}

    def worker(op):
        while True:
            with lock:
                if state["next"] >= ops:
                    return
                state["next"] += 1
            try:
                op()
            except Exception as e:  # counted and reported, never fatal
                print(f"w1: {e}", file=sys.stderr)
                with lock:
                    state["failures"] += 1

    c0, t0 = cpu(), time.perf_counter()
    threads = [threading.Thread(target=worker, args=(op,)) for op in ops_fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, used = time.perf_counter() - t0, cpu() - c0
    return {"workload": "w1", "auth": auth, "concurrency": conc, "ops": ops, "wall_s": wall, "cpu_s": used,
            "failures": state["failures"]}


def w2(lib, url, mib):
    want = mib << 20
    c0, t0 = cpu(), time.perf_counter()
    if lib == "pywinrm":
        import winrm

        s = winrm.Session(url, auth=(USER, PASSWORD), transport="basic")
        r = s.run_cmd("sim-gen", ["--mib", str(mib)])
        got = len(r.std_out)
    else:
        from pypsrp.shell import Process, WinRS

        with WinRS(pypsrp_wsman(url)) as shell:
            p = Process(shell, "sim-gen", ["--mib", str(mib)])
            p.invoke()
            got = len(p.stdout)
    wall, used = time.perf_counter() - t0, cpu() - c0
    return {"workload": "w2", "bytes": got, "wall_s": wall, "cpu_s": used, "failures": int(got != want)}


def w3(lib, url, count):
    """pypsrp's WSMan.enumerate/pull with OptimizeEnumeration and MaxElements (as a
    caller would write them), each item turned into a dict of property -> text."""
    import xml.etree.ElementTree as ET

    from pypsrp.wsman import NAMESPACES

    wsen, wsman_ns = NAMESPACES["wsen"], NAMESPACES["wsman"]
    uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Sim_Item"
    wsman = pypsrp_wsman(url, envelope=W3_ENVELOPE)
    rss0 = status_kib("VmRSS:")
    c0, t0 = cpu(), time.perf_counter()
    body = ET.Element(f"{{{wsen}}}Enumerate")
    ET.SubElement(body, f"{{{wsman_ns}}}OptimizeEnumeration")
    ET.SubElement(body, f"{{{wsman_ns}}}MaxElements").text = str(MAX_ELEMENTS)
    resp = wsman.enumerate(uri, body)
    n = 0
    while True:
        resp_el = resp[0]
        items = resp_el.find(f"{{{wsman_ns}}}Items")
        if items is None:
            items = resp_el.find(f"{{{wsen}}}Items")
        for item in items if items is not None else []:
            d = {}
            for prop in item:
                d[prop.tag.rsplit("}", 1)[-1]] = prop.text
            if int(d["Index"]) != n:
                raise RuntimeError(f"item {d['Index']} out of order")
            n += 1
        if resp_el.find(f"{{{wsman_ns}}}EndOfSequence") is not None or resp_el.find(f"{{{wsen}}}EndOfSequence") is not None:
            break
        ctx = resp_el.find(f"{{{wsen}}}EnumerationContext").text
        pull = ET.Element(f"{{{wsen}}}Pull")
        ET.SubElement(pull, f"{{{wsen}}}EnumerationContext").text = ctx
        ET.SubElement(pull, f"{{{wsen}}}MaxElements").text = str(MAX_ELEMENTS)
        resp = wsman.pull(uri, pull)
    wall, used = time.perf_counter() - t0, cpu() - c0
    return {"workload": "w3", "items": n, "wall_s": wall, "cpu_s": used, "rss_before_kib": rss0,
            "peak_rss_kib": status_kib("VmHWM:"), "failures": int(n != count)}


def main():
    lib, workload, url = sys.argv[1], sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    if workload == "w1":
        out = w1(lib, url, int(rest[0]), int(rest[1]), rest[2] if len(rest) > 2 else "basic")
    elif workload == "w2":
        out = w2(lib, url, int(rest[0]))
    elif workload == "w3":
        out = w3(lib, url, int(rest[0]))
    else:
        sys.exit(f"unknown workload {workload}")
    out = {"client": lib, **out}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
