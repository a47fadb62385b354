"""Only the gateway faces the LAN: a gRPC address off loopback stops the start, named."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import SERVICE_NAMES, ConfigError, load_config
from common.testing import isolated_config

OFF_LOOPBACK = ["0.0.0.0", "[::]", "192.168.1.20", "10.0.0.1", "example.com", ""]


@pytest.mark.parametrize("host", OFF_LOOPBACK)
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_config_refuses_a_grpc_address_off_loopback(
    tmp_path: Path, service: str, host: str
) -> None:
    environment = isolated_config(tmp_path, **{f"{service.upper()}__ADDRESS": f"{host}:50051"})
    with pytest.raises(ConfigError) as raised:
        load_config(environment)
    assert raised.value.key == f"{service}.address"
