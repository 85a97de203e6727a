"""Writes a throwaway PKI for the certificate peer test into DIR: ca.pem (a CA),
server.pem/server.key (for 127.0.0.1 and localhost), alice.pem/alice.key (a client
certificate the simulator maps), carol.pem/carol.key (one it does not map).
Usage: make_pki.py DIR (created when missing). Needs `cryptography` (a dependency of
pyspnego)."""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if len(sys.argv) != 2:
    sys.exit("usage: make_pki.py DIR")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
now = datetime.datetime.now(datetime.timezone.utc)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write(stem, cert, key):
    with open(os.path.join(out, stem + ".pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path = os.path.join(out, stem + ".key")
        with open(path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        os.chmod(path, 0o600)


def builder(subject, issuer, public_key):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = name("tokio-winrm peer test CA")
ca = (
    builder(ca_name, ca_name, ca_key.public_key())
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(
        x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False,
        ),
        critical=True,
    )
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
    .sign(ca_key, hashes.SHA256())
)
write("ca", ca, None)


def leaf(stem, cn, sans, usage):
    key = ec.generate_private_key(ec.SECP256R1())
    b = builder(name(cn), ca_name, key.public_key())
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    b = b.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    write(stem, b.sign(ca_key, hashes.SHA256()), key)


leaf(
    "server", "localhost",
    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    ExtendedKeyUsageOID.SERVER_AUTH,
)
# Windows maps by the UPN in the subject alternative name (otherName); the simulator
# maps by the certificate itself, so the SAN is here only to look like the real thing.
upn = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
for user in ("alice", "carol"):
    value = f"{user}@corp.example".encode()
    der_utf8 = bytes([0x0C, len(value)]) + value
    leaf(user, user, [x509.OtherName(upn, der_utf8)], ExtendedKeyUsageOID.CLIENT_AUTH)
print(out)
