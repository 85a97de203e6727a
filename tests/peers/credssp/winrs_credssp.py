"""pywinrm's CredSSP transport (unmodified pywinrm and requests-credssp from PyPI)
against the simulator in HTTPS mode with CredSSP on (`winrm sim --tls-cert ...
--credssp`). Usage: winrs_credssp.py ENDPOINT CA_PEM (the credentials are in
WINRM_USER / WINRM_PASSWORD). Exits non-zero on the first mismatch."""

import os
import sys

import winrm

endpoint, ca = sys.argv[1], sys.argv[2]
user, password = os.environ["WINRM_USER"], os.environ["WINRM_PASSWORD"]


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r:.200}, want {want!r:.200}")
        sys.exit(1)
    print(f"ok   {what}")


if not endpoint.startswith("https://"):
    print(f"FAIL the endpoint is not https: {endpoint}")
    sys.exit(1)

# message_encryption: "always" encrypts every message with the CredSSP TLS session
# (multipart/encrypted, or multipart/x-multi-encrypted in 16 KiB parts); "auto" over
# https sends SOAP in clear text inside the outer TLS after the CredSSP exchange.
for enc in ("always", "auto"):
    s = winrm.Session(endpoint, auth=(user, password), transport="credssp",
                      ca_trust_path=ca, message_encryption=enc)
    r = s.run_cmd("echo", ["hello", "over", "credssp"])
    check(f"pywinrm credssp run_cmd stdout ({enc})", r.std_out, b"hello over credssp\r\n")
    check(f"pywinrm credssp run_cmd exit code ({enc})", r.status_code, 0)
    r = s.run_cmd("whoami")
    check(f"pywinrm credssp logon's user ({enc})", r.std_out, b"sim\\vagrant\r\n")
    r = s.run_ps("Write-Output 'ps over credssp'")
    check(f"pywinrm credssp run_ps stdout ({enc})", r.std_out.strip(), b"ps over credssp")

s = winrm.Session(endpoint, auth=(user, password), transport="credssp",
                  ca_trust_path=ca, message_encryption="always")
# Output over 16 KiB: responses in several encrypted parts (x-multi-encrypted).
r = s.run_cmd("sim-gen", ["--kib", "100"])
check("pywinrm credssp large output length", len(r.std_out), 100 * 1024)
check("pywinrm credssp large output start", r.std_out[:18], b"sim-gen 0123456789")
# Input over 16 KiB: a Send of 40 KiB of stdin, encrypted in several parts.
p = s.protocol
shell = p.open_shell()
cmd = p.run_command(shell, "findstr", ["x"])
line = b"x" * 1022 + b"\r\n"
p.send_command_input(shell, cmd, line * 40, end=True)
out, err, code = p.get_command_output(shell, cmd)
check("pywinrm credssp 40 KiB of stdin through findstr", out, line * 40)
check("pywinrm credssp findstr exit code", code, 0)
p.cleanup_command(shell, cmd)
p.close_shell(shell)

# A wrong password: refused.
try:
    winrm.Session(endpoint, auth=(user, password + "-wrong"), transport="credssp",
                  ca_trust_path=ca, message_encryption="always").run_cmd("echo", ["x"])
except Exception as e:  # requests-credssp or pywinrm, depending on the leg
    print(f"ok   pywinrm credssp wrong password refused ({type(e).__name__})")
else:
    print("FAIL a wrong password was accepted")
    sys.exit(1)
