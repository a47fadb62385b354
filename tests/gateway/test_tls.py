"""HTTPS on the LAN: `make cert` (scripts/make_cert.py) writes a CA and a server pair for
this device's names and addresses, the gateway serves HTTPS with it and refuses plain
HTTP there, a bad [gateway.tls] stops the start naming its key, and plain HTTP off
loopback warns at start."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from common.config import PROJECT_ROOT, ConfigError, load_config
from common.stack import gateway_url, healthz
from gateway.settings import settings_of

SCRIPT = PROJECT_ROOT / "scripts" / "make_cert.py"
HOSTNAME = "edgequant-test"


def make_cert(directory: Path, backend: str) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--dir", str(directory), "--name", HOSTNAME,
         "--backend", backend],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _lan_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The machine's non-loopback addresses, by `ip -j address` (as the script finds them)."""
    result = subprocess.run(["ip", "-j", "address"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return set()
    found = set()
    for interface in json.loads(result.stdout):
        for info in interface.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if not (address.is_loopback or address.is_link_local):
                found.add(address)
    return found


@pytest.mark.parametrize("backend", ["cryptography", "openssl"])
def test_the_certificate_names_the_device_and_its_addresses(tmp_path: Path, backend: str) -> None:
    make_cert(tmp_path, backend)
    chain = x509.load_pem_x509_certificates((tmp_path / "gateway.crt").read_bytes())
    server, ca = chain
    assert ca == x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {
        HOSTNAME,
        f"{HOSTNAME}.local",
        "localhost",
    }
    ips = set(names.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= ips
    assert _lan_addresses() <= ips
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca)
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days <= 825
    for key in ("gateway.key", "ca.key"):
        assert (tmp_path / key).stat().st_mode & 0o777 == 0o600
    # A second run (a new address) keeps the CA the phones already trust.
    make_cert(tmp_path, backend)
    again = x509.load_pem_x509_certificates((tmp_path / "gateway.crt").read_bytes())
    assert again[1] == ca
    assert again[0].serial_number != server.serial_number


async def _start(environment: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", env=environment, stderr=asyncio.subprocess.PIPE
    )


async def _log_until_serving(gateway: asyncio.subprocess.Process) -> list[dict[str, str]]:
    """The gateway's log lines up to and including its "serving" line."""
    assert gateway.stderr is not None
    lines: list[dict[str, str]] = []
    while True:
        raw = await asyncio.wait_for(gateway.stderr.readline(), 60)
        assert raw, f"the gateway stopped: {lines}"
        line = json.loads(raw)
        lines.append(line)
        if line["message"] == "serving":
            return lines


async def _stop(gateway: asyncio.subprocess.Process) -> None:
    if gateway.returncode is None:
        gateway.terminate()
        await gateway.wait()


async def test_the_gateway_serves_https_and_refuses_plain_http(
    environment: dict[str, str], tmp_path: Path
) -> None:
    make_cert(tmp_path / "tls", "cryptography")
    env = {
        **environment,
        "EDGEQUANT_GATEWAY__TLS__CERT_FILE": str(tmp_path / "tls" / "gateway.crt"),
        "EDGEQUANT_GATEWAY__TLS__KEY_FILE": str(tmp_path / "tls" / "gateway.key"),
    }
    port = load_config(env).gateway.port
    gateway = await _start(env)
    try:
        log = await _log_until_serving(gateway)
        assert log[-1]["address"] == f"https://127.0.0.1:{port}"
        assert not [line for line in log if line["level"] == "WARNING"]
        trusted = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
        for host in ("127.0.0.1", "localhost"):
            async with httpx.AsyncClient(verify=trusted, timeout=30) as client:
                response = await client.get(f"https://{host}:{port}/healthz")
            # No service runs here: the gateway answers, over TLS, that they are not serving.
            assert response.status_code == 503
            assert response.json()["status"] == "NOT_SERVING"
        # A client that does not trust the CA is refused by its own check.
        async with httpx.AsyncClient(timeout=30) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"https://127.0.0.1:{port}/healthz")
        # `make run`'s readiness probe finds it on https (it answers, services down).
        url = gateway_url(load_config(env))
        assert url == f"https://127.0.0.1:{port}"
        ready, answer = await asyncio.to_thread(healthz, url)
        assert (ready, json.loads(answer)["status"]) == (False, "NOT_SERVING")
        # Plain HTTP on the HTTPS port gets no answer.
        async with httpx.AsyncClient(timeout=30) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        await _stop(gateway)


async def test_plain_http_off_loopback_warns_at_start(environment: dict[str, str]) -> None:
    gateway = await _start({**environment, "EDGEQUANT_GATEWAY__HOST": "0.0.0.0"})
    try:
        log = await _log_until_serving(gateway)
    finally:
        await _stop(gateway)
    warnings = [line["message"] for line in log if line["level"] == "WARNING"]
    assert any(message.startswith("plain HTTP on 0.0.0.0") for message in warnings), log
    assert log[-1]["address"].startswith("http://")


def test_bad_tls_settings_stop_the_start_naming_the_key(
    environment: dict[str, str], tmp_path: Path
) -> None:
    make_cert(tmp_path, "cryptography")
    cert, key = str(tmp_path / "gateway.crt"), str(tmp_path / "gateway.key")

    def error_of(**tls: str) -> str:
        overrides = {f"EDGEQUANT_GATEWAY__TLS__{name.upper()}": v for name, v in tls.items()}
        with pytest.raises(ConfigError) as raised:
            settings_of(load_config({**environment, **overrides}).gateway)
        return str(raised.value)

    assert error_of(cert_file=cert).startswith("config error: gateway.tls.key_file: HTTPS needs")
    assert error_of(key_file=key).startswith("config error: gateway.tls.cert_file: HTTPS needs")
    assert "no file" in error_of(cert_file=str(tmp_path / "absent.crt"), key_file=key)
    os.chmod(key, 0o644)
    assert "readable by others" in error_of(cert_file=cert, key_file=key)


def test_a_bad_tls_setting_fails_the_process_with_one_line(
    environment: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={**environment, "EDGEQUANT_GATEWAY__TLS__CERT_FILE": "nowhere.crt"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "config error: gateway.tls.key_file: HTTPS needs both cert_file and key_file"
    )
