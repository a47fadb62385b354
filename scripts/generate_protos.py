"""Generate Python code from protos/ (grpcio-tools + mypy-protobuf).

The generated `_pb2.py`, `_pb2_grpc.py` and `.pyi` files are written beside each
.proto and committed; tests/contract/test_codegen.py regenerates them into a temporary
directory and fails on any drift. `--vendor` also copies the googleapis protos the
contract imports into protos/google, where buf (which cannot reach a registry here)
finds them.

It also writes `edgequant/descriptors.binpb`: the contract's FileDescriptorSet WITH
source info (the generated `_pb2.py` files drop it), so the gateway's /openapi.json
can carry each RPC's, message's and field's comment as its description.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import google.api  # googleapis-common-protos ships its .proto files
import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
VENDORED = ("google/api/annotations.proto", "google/api/http.proto")
DESCRIPTORS = Path("edgequant") / "descriptors.binpb"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "edgequant").rglob("*.proto"))


def include_dirs() -> list[Path]:
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(str(resources.files(grpc_tools) / "_proto"))
    return [PROTO_ROOT, googleapis, well_known]


def generate(out_dir: Path) -> None:
    (out_dir / DESCRIPTORS).parent.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"-I{path}" for path in include_dirs()),
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        f"--descriptor_set_out={out_dir / DESCRIPTORS}",
        "--include_source_info",
        *(str(path.relative_to(PROTO_ROOT)) for path in proto_files()),
    ]
    subprocess.run(command, check=True, cwd=PROTO_ROOT)


def vendor_googleapis() -> None:
    googleapis = include_dirs()[1]
    for name in VENDORED:
        target = PROTO_ROOT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(googleapis / name, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_ROOT)
    parser.add_argument("--vendor", action="store_true")
    args = parser.parse_args()
    generate(args.out)
    if args.vendor:
        vendor_googleapis()


if __name__ == "__main__":
    main()
