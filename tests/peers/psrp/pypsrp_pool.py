"""pypsrp (PyPI, unmodified) against the simulator's PSRP endpoint: a runspace pool,
cmdlets with parameters, scripts, input objects, the output/error/warning/verbose/
information/progress streams, an unknown command, a host call, a small
MaxEnvelopeSize (fragmentation), a stop, set/get runspaces and disconnect/reconnect.

Usage: python pypsrp_pool.py http://127.0.0.1:PORT/wsman (credentials in
WINRM_USER / WINRM_PASSWORD). Exits non-zero on the first mismatch.
"""

import os
import sys
import threading
import time
from urllib.parse import urlparse

from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

ENDPOINT = urlparse(sys.argv[1])
USER = os.environ.get("WINRM_USER", "vagrant")
PASSWORD = os.environ.get("WINRM_PASSWORD", "vagrant")


def wsman(**kw):
    return WSMan(
        ENDPOINT.hostname,
        port=ENDPOINT.port,
        path=ENDPOINT.path.lstrip("/"),
        ssl=False,
        auth="basic",
        username=USER,
        password=PASSWORD,
        encryption="never",
        operation_timeout=10,
        read_timeout=20,
        **kw,
    )


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {what}")


def adapted(obj, name):
    return obj.adapted_properties.get(name, obj.extended_properties.get(name))


def run(pool, build, input_data=None):
    ps = PowerShell(pool)
    build(ps)
    out = ps.invoke(input=input_data)
    return ps, out


class AnsweringUI(PSHostUserInterface):
    """A host UI that answers Read-Host with a fixed line and keeps what it was told."""

    def __init__(self):
        super().__init__()
        self.written = []

    def ReadLine(self, runspace, pipeline):
        return "Ada"

    def Write1(self, runspace, pipeline, value):
        self.written.append(value)


def main():
    with RunspacePool(wsman()) as pool:
        check("pool opened", pool.state, RunspacePoolState.OPENED)
        table = pool.application_private_data.data.get("PSVersionTable", {})
        check("PSVersionTable.PSEdition", table.get("PSEdition"), "Desktop")

        # A cmdlet with a parameter: Windows' ServiceController shape.
        ps, out = run(pool, lambda p: p.add_cmdlet("Get-Service").add_parameter("Name", "WinRM"))
        check("Get-Service -Name WinRM: one object", len(out), 1)
        svc = out[0]
        check("service type", svc.types[0], "System.ServiceProcess.ServiceController")
        check("service Name", adapted(svc, "Name"), "WinRM")
        check("service Status", str(adapted(svc, "Status")), "Running")
        check("state Completed", ps.state, PSInvocationState.COMPLETED)

        # A script: a pipeline with Select-Object.
        ps, out = run(pool, lambda p: p.add_script("Get-Service | Select-Object -First 3"))
        check("script: 3 services", len(out), 3)
        names = [adapted(s, "Name") for s in out]
        check("services sorted by name", names, sorted(names, key=str.lower))

        # Positional arrays, enumerated.
        ps, out = run(pool, lambda p: p.add_cmdlet("Write-Output").add_argument([1, 2, 3]))
        check("Write-Output 1,2,3", out, [1, 2, 3])

        # Input objects streamed to the pipeline.
        ps, out = run(pool, lambda p: p.add_cmdlet("Write-Output"), ["a", 2, {"k": "v"}])
        check("input: 3 objects back", len(out), 3)
        check("input string and int", out[:2], ["a", 2])
        check("input hashtable", out[2], {"k": "v"})
        ps, out = run(pool, lambda p: p.add_cmdlet("Select-Object").add_parameter("First", 2), list(range(10)))
        check("input | Select-Object -First 2", out, [0, 1])

        # Streams.
        ps, out = run(
            pool,
            lambda p: p.add_script(
                "Write-Warning 'careful'; Write-Error 'boom'; Write-Verbose 'loud' -Verbose; "
                "Write-Verbose 'quiet'; Write-Information 'info'; "
                "Write-Progress -Activity 'act' -Status 'half' -PercentComplete 50; Write-Output done"
            ),
        )
        check("stream output", out, ["done"])
        check("warning", [w.message for w in ps.streams.warning], ["careful"])
        check("error", [str(e.exception.adapted_properties.get("Message")) for e in ps.streams.error], ["boom"])
        check("verbose (only with -Verbose)", [v.message for v in ps.streams.verbose], ["loud"])
        check("information", [i.message_data for i in ps.streams.information], ["info"])
        check("progress", [(p.activity, p.percent_complete) for p in ps.streams.progress], [("act", 50)])

        # ConvertTo-Json of a pipeline.
        ps, out = run(pool, lambda p: p.add_script("Write-Output 1,'two' | ConvertTo-Json -Compress"))
        check("ConvertTo-Json", out, ['[1,"two"]'])

        # An unknown command: CommandNotFoundException, state Failed.
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Nothing")
        ps.invoke()
        check("unknown command: Failed", ps.state, PSInvocationState.FAILED)
        check("unknown command: error id", [e.fq_error for e in ps.streams.error], ["CommandNotFoundException"])

        # Parameters with switches and merged streams (2>&1).
        ps = PowerShell(pool)
        ps.add_cmdlet("Write-Error").add_parameter("Message", "merged")
        ps.merge_error("output")
        out = ps.invoke()
        check("merged error goes to output", [o.exception.adapted_properties.get("Message") for o in out], ["merged"])

        # A stop: Start-Sleep stopped while running.
        ps = PowerShell(pool)
        ps.add_cmdlet("Start-Sleep").add_parameter("Seconds", 60)
        ps.begin_invoke()
        time.sleep(0.3)
        t0 = time.monotonic()
        ps.stop()
        check("stopped", ps.state, PSInvocationState.STOPPED)
        check("stop is quick", time.monotonic() - t0 < 5, True)

        # Runspace counts.
        pool.max_runspaces = 4
        check("available runspaces", pool.get_available_runspaces(), 4)

        # Command metadata.
        meta = pool.get_command_metadata(["Write-W*", "Get-Service"])
        check("command metadata names", sorted(m.name for m in meta), ["Get-Service", "Write-Warning"])
        svc_meta = [m for m in meta if m.name == "Get-Service"][0]
        check("Get-Service parameters", sorted(svc_meta.parameters), ["DisplayName", "Name"])

        # Disconnect while a pipeline runs; its output survives the reconnect.
        ps = PowerShell(pool)
        ps.add_script("Start-Sleep -Milliseconds 500; Write-Output after")
        ps.begin_invoke()
        pool.disconnect()
        check("pool disconnected", pool.state, RunspacePoolState.DISCONNECTED)
        time.sleep(0.7)
        pool.connect()
        check("pool reconnected", pool.state, RunspacePoolState.OPENED)
        out = ps.connect()
        check("output across reconnect", out, ["after"])
        check("reconnected pipeline completed", ps.state, PSInvocationState.COMPLETED)

    # A host call: Read-Host goes to the client's host (PIPELINE_HOST_CALL ReadLine).
    ui = AnsweringUI()
    host = PSHost(None, None, False, "sim-peer", None, ui, "1.0")
    with RunspacePool(wsman(), host=host) as pool:
        ps, out = run(pool, lambda p: p.add_cmdlet("Read-Host").add_parameter("Prompt", "Name"))
        check("Read-Host answered by the host", out, ["Ada"])
        check("Read-Host prompt written", ui.written, ["Name: "])
    # Without a host: PowerShell's NonInteractive error.
    with RunspacePool(wsman()) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Read-Host")
        ps.invoke()
        check("Read-Host without a host: Failed", ps.state, PSInvocationState.FAILED)

    # A small MaxEnvelopeSize: requests and responses in many fragments.
    with RunspacePool(wsman(max_envelope_size=8192)) as pool:
        big = "x" * 20000
        ps, out = run(pool, lambda p: p.add_cmdlet("Write-Output").add_argument(big), ["in" * 3000])
        check("small envelope: large objects both ways", [len(o) for o in out], [20000, 6000])
        ps, out = run(pool, lambda p: p.add_script("Get-Process | Select-Object -First 5"))
        check("small envelope: 5 processes", len(out), 5)
        check("process type", out[0].types[0], "System.Diagnostics.Process")

    print("all pypsrp PSRP checks passed")


if __name__ == "__main__":
    main()
