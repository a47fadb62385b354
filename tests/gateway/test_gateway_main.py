"""`python -m gateway`: a bad configuration stops the start with one line."""

from __future__ import annotations

import subprocess
import sys


def test_auth_off_on_a_lan_address_refuses_to_start(environment: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={
            **environment,
            "EDGEQUANT_GATEWAY__HOST": "0.0.0.0",
            "EDGEQUANT_GATEWAY__AUTH__ENABLED": "false",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("config error: gateway.auth.enabled: auth is off")
