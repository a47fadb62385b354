"""`make cert`: a certificate for the gateway's HTTPS on the LAN, for this device's name
and addresses.

    python scripts/make_cert.py [--dir var/tls] [--name HOST] [--ip ADDRESS ...]

Writes, under --dir:
    ca.crt       a small certificate authority of this device's own: install THIS on
                 phones and laptops (README, "HTTPS on the LAN"); valid 10 years
    ca.key       its key (0600), kept so a re-run re-issues the server certificate
                 (new address) under the same CA and the phones need not trust anew
    gateway.crt  the server certificate (then ca.crt: the chain the gateway sends),
                 for DNS hostname, hostname.local, localhost and IP 127.0.0.1, ::1 and
                 the device's non-loopback addresses; valid 825 days (iOS's limit)
    gateway.key  its key (0600)
and prints the [gateway.tls] lines to configure.

Why a CA and a server certificate rather than one self-signed certificate: iOS offers
"full trust" only for a CA certificate, Android installs CA certificates, and Firefox
refuses a CA certificate used as a server's own (CA_CERT_USED_AS_END_ENTITY).

Python's `cryptography` when the venv has it (the runtime lock does), else the openssl
command line; ECDSA P-256 keys, SHA-256 signatures, serverAuth only.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = Path("var") / "tls"
CA_DAYS = 3650
# iOS and macOS refuse a TLS server certificate valid longer than 825 days.
SERVER_DAYS = 825
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Names:
    """Who the server certificate is for."""

    common_name: str
    dns: tuple[str, ...]
    ips: tuple[IpAddress, ...]


def device_names(hostname: str, extra_ips: list[str]) -> Names:
    dns = [hostname, f"{hostname}.local", "localhost"] if hostname != "localhost" else ["localhost"]
    ips: list[IpAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    for address in [*lan_addresses(), *(ipaddress.ip_address(a) for a in extra_ips)]:
        if address not in ips:
            ips.append(address)
    return Names(hostname, tuple(dict.fromkeys(dns)), tuple(ips))


def lan_addresses() -> list[IpAddress]:
    """The machine's non-loopback, non-link-local addresses: `ip -j address` (iproute2),
    else the address of the default route (a UDP connect sends nothing)."""
    found: list[IpAddress] = []
    ip = shutil.which("ip")
    if ip:
        result = subprocess.run(
            [ip, "-j", "address"], capture_output=True, text=True, check=False, timeout=10
        )
        try:
            interfaces = json.loads(result.stdout) if result.returncode == 0 else []
        except ValueError:
            interfaces = []
        for interface in interfaces:
            for info in interface.get("addr_info", []):
                try:
                    found.append(ipaddress.ip_address(info.get("local", "")))
                except ValueError:
                    continue
    if not found:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
                found.append(ipaddress.ip_address(probe.getsockname()[0]))
            except OSError:
                pass
    usable = [a for a in found if not (a.is_loopback or a.is_link_local or a.is_unspecified)]
    return list(dict.fromkeys(usable))


# --- with cryptography ---------------------------------------------------------------


def _with_cryptography(directory: Path, names: Names) -> None:
    # Imported here: without cryptography, the openssl path still runs.
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    now = datetime.now(UTC) - timedelta(minutes=5)  # a phone's clock may run behind
    ca_key_path, ca_cert_path = directory / "ca.key", directory / "ca.crt"
    if ca_key_path.exists() and ca_cert_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey), "ca.key is not ours: remove it"
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, f"EdgeQuant CA ({names.common_name})")]
        )
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, private_pem(ca_key), private=True)
        _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    alternative: list[x509.GeneralName] = [x509.DNSName(name) for name in names.dns]
    alternative += [x509.IPAddress(address) for address in names.ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / "gateway.key", private_pem(key), private=True)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
        serialization.Encoding.PEM
    )
    _write(directory / "gateway.crt", chain)


# --- with the openssl command line ---------------------------------------------------


def _with_openssl(directory: Path, names: Names, openssl: str) -> None:
    def run(*arguments: str) -> None:
        subprocess.run([openssl, *arguments], check=True, capture_output=True, timeout=60)

    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, cert = directory / "gateway.key", directory / "gateway.crt"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if not (ca_key.exists() and ca_cert.exists()):
            run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(work / "ca.key"))
            run(
                "req", "-x509", "-new", "-sha256", "-days", str(CA_DAYS),
                "-key", str(work / "ca.key"), "-out", str(work / "ca.crt"),
                "-subj", f"/CN=EdgeQuant CA ({names.common_name})",
                "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
            )  # fmt: skip
            _write(ca_key, (work / "ca.key").read_bytes(), private=True)
            _write(ca_cert, (work / "ca.crt").read_bytes())
        alternative = [f"DNS:{name}" for name in names.dns]
        alternative += [f"IP:{address}" for address in names.ips]
        (work / "server.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName={','.join(alternative)}\n"
            "authorityKeyIdentifier=keyid\n"
        )
        run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(work / "key"))
        run(
            "req", "-new", "-sha256", "-key", str(work / "key"), "-out", str(work / "csr"),
            "-subj", f"/CN={names.common_name}",
        )  # fmt: skip
        run(
            "x509", "-req", "-sha256", "-days", str(SERVER_DAYS), "-in", str(work / "csr"),
            "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-CAserial", str(work / "serial"), "-extfile", str(work / "server.ext"),
            "-out", str(work / "crt"),
        )  # fmt: skip
        run("pkey", "-in", str(work / "key"), "-out", str(work / "key.pem"))  # PKCS#8
        _write(key, (work / "key.pem").read_bytes(), private=True)
        _write(cert, (work / "crt").read_bytes() + ca_cert.read_bytes())


def _write(path: Path, content: bytes, *, private: bool = False) -> None:
    """Written whole under its final mode, then moved into place."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = 0o600 if private else 0o644
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.replace(partial, path)


def _has_cryptography() -> bool:
    return importlib.util.find_spec("cryptography") is not None


def make_cert(directory: Path, names: Names, backend: str = "auto") -> str:
    """Writes the files under `directory`; returns the backend used."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl = shutil.which("openssl")
    if backend == "auto":
        backend = "cryptography" if _has_cryptography() else "openssl"
    if backend == "cryptography":
        _with_cryptography(directory, names)
    elif openssl:
        _with_openssl(directory, names, openssl)
    else:
        raise SystemExit("make cert needs Python's cryptography or the openssl command")
    return backend


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="relative to the project")
    parser.add_argument("--name", default=socket.gethostname(), help="the device's hostname")
    parser.add_argument("--ip", action="append", default=[], help="one more address")
    parser.add_argument("--backend", choices=("auto", "cryptography", "openssl"), default="auto")
    args = parser.parse_args(argv)
    directory = args.dir if args.dir.is_absolute() else ROOT / args.dir
    names = device_names(args.name, args.ip)
    backend = make_cert(directory, names, args.backend)
    shown = args.dir if not args.dir.is_absolute() else directory
    print(f"wrote {shown}/gateway.crt and gateway.key ({backend}) for", file=sys.stderr)
    print("  " + ", ".join([*names.dns, *map(str, names.ips)]), file=sys.stderr)
    print(
        f"trust {shown}/ca.crt on phones and laptops (README: HTTPS on the LAN),", file=sys.stderr
    )
    print("then set, in configs/local.toml (or EDGEQUANT_GATEWAY__TLS__*):\n", file=sys.stderr)
    print(f'[gateway.tls]\ncert_file = "{shown}/gateway.crt"\nkey_file = "{shown}/gateway.key"')


if __name__ == "__main__":
    main()
