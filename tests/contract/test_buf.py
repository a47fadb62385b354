"""buf lint (STANDARD) and buf breaking (WIRE_JSON) against the committed baseline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from common.config import PROJECT_ROOT

BUF = Path(sys.executable).parent / "buf"
BASELINE = PROJECT_ROOT / "protos" / "baseline.binpb"


def _buf(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_lint_passes() -> None:
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_contract_is_compatible_with_the_baseline() -> None:
    result = _buf("breaking", "--against", str(BASELINE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_breaking_catches_a_renamed_json_field(tmp_path: Path) -> None:
    """The check can fail: renaming a field keeps the wire format but breaks JSON clients."""
    shutil.copy(PROJECT_ROOT / "buf.yaml", tmp_path)
    shutil.copytree(PROJECT_ROOT / "protos", tmp_path / "protos")
    proto = tmp_path / "protos" / "edgequant" / "common" / "v1" / "common.proto"
    proto.write_text(
        proto.read_text().replace("string client_order_id = 2;", "string client_id = 2;")
    )
    result = _buf("breaking", "--against", str(BASELINE), cwd=tmp_path)
    assert result.returncode != 0
    assert "client_order_id" in result.stdout + result.stderr
