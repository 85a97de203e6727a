"""pywinrm's certificate transport (unmodified, from PyPI) against the simulator in
HTTPS mode (`winrm sim --tls-cert ... --client-ca ... --map-cert alice.pem=alice`).
Usage: winrs_certificate.py ENDPOINT PKI_DIR (the files of make_pki.py). Exits
non-zero on the first mismatch."""

import os
import sys

import winrm
from winrm.exceptions import InvalidCredentialsError

endpoint, pki = sys.argv[1], sys.argv[2]


def path(name):
    return os.path.join(pki, name)


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


def session(user, **tls):
    # pywinrm wants a user name even for certificate logons; the host ignores it.
    return winrm.Session(
        endpoint,
        auth=("ignored", ""),
        transport="certificate",
        cert_pem=path(user + ".pem"),
        cert_key_pem=path(user + ".key"),
        **tls,
    )


if not endpoint.startswith("https://"):
    print(f"FAIL the endpoint is not https: {endpoint}")
    sys.exit(1)

# The server's certificate verified against the test CA, then not verified at all.
for label, tls in (
    ("ca_trust_path", {"ca_trust_path": path("ca.pem")}),
    ("server_cert_validation=ignore", {"server_cert_validation": "ignore"}),
):
    s = session("alice", **tls)
    r = s.run_cmd("echo", ["hello", "from", "a", "certificate"])
    check(f"pywinrm certificate run_cmd stdout ({label})", r.std_out, b"hello from a certificate\r\n")
    check(f"pywinrm certificate run_cmd exit code ({label})", r.status_code, 0)

s = session("alice", ca_trust_path=path("ca.pem"))
r = s.run_cmd("whoami")
check("pywinrm certificate logon's user", r.std_out, b"sim\\alice\r\n")
r = s.run_ps("Write-Output 'ps over a certificate'")
check("pywinrm certificate run_ps stdout", r.std_out.strip(), b"ps over a certificate")

# A certificate from the trusted CA that is not mapped: HTTP 401, as Windows answers.
try:
    session("carol", ca_trust_path=path("ca.pem")).run_cmd("echo", ["x"])
except InvalidCredentialsError as e:
    print(f"ok   pywinrm unmapped certificate refused ({e})")
else:
    print("FAIL pywinrm unmapped certificate: accepted")
    sys.exit(1)
