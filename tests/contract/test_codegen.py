"""The committed generated code is exactly what `make protos` produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.config import PROJECT_ROOT

PROTOS = PROJECT_ROOT / "protos"


def _generated(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for pattern in (
            "*_pb2.py",
            "*_pb2.pyi",
            "*_pb2_grpc.py",
            "*_pb2_grpc.pyi",
            "descriptors.binpb",  # with source info: /openapi.json's descriptions
        )
        for path in (root / "edgequant").rglob(pattern)
    }


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "generate_protos.py"),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh, committed = _generated(tmp_path), _generated(PROTOS)
    assert sorted(fresh) == sorted(committed), "run `make protos` and commit the result"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files, run `make protos`: {stale}"


def test_generated_code_imports_without_path_edits() -> None:
    probe = "import edgequant.exchange.v1.exchange_pb2_grpc as m; print(m.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().startswith(str(PROTOS))
