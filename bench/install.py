"""What the device pays to install EdgeQuant: each pinned set (the runtime set `make run`
installs, and the full dev set `make test` adds) installed into an empty virtualenv,
exactly as the Makefile and the README's device steps do (`pip install --no-deps -r
<lock>`), timed, and measured on disk.

The time is from pip's local cache (the machine ran `make install` before the bench): it
is what unpacking, installing and byte-compiling cost, not the download, which depends on
the network. The baseline of each row is the other set, in the same run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import Row
from bench.section import TINY
from common.config import PROJECT_ROOT
from common.memory import MIB

SECTION = "install"
LOCKS = {"runtime": "requirements-runtime.lock", "full": "requirements.lock"}
# BENCH_SIZE=tiny: the first few pins of each lock, enough to prove the section works.
TINY_PINS = 2


@dataclass(frozen=True)
class Installed:
    packages: int
    seconds: float
    mib: float


def pins(lock: Path) -> list[str]:
    """The `name==version` lines of a lock (comments and hashes aside)."""
    lines = [line.split("#")[0].strip() for line in lock.read_text().splitlines()]
    found = [line for line in lines if "==" in line and not line.startswith("-")]
    return found[:TINY_PINS] if TINY else found


def disk_mib(directory: Path) -> float:
    """What the files under `directory` take on disk (allocated blocks, as `du` counts)."""
    blocks = sum(path.lstat().st_blocks for path in directory.rglob("*"))
    return blocks * 512 / MIB


def install(lock: Path, into: Path) -> Installed:
    """Installs `lock`'s pins into a new virtualenv at `into`; how long and how big."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", into], check=True)
    empty = disk_mib(into)
    requirements = into.parent / f"{into.name}.txt"
    requirements.write_text("\n".join(pins(lock)) + "\n")
    started = time.perf_counter()
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", into / "bin" / "python", "install",
         "--quiet", "--no-deps", "--disable-pip-version-check", "-r", requirements],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if pip.returncode:
        raise RuntimeError(f"pip could not install {lock.name}: {pip.stderr.strip()[-2000:]}")
    return Installed(len(pins(lock)), seconds, disk_mib(into) - empty)


def _rows(sets: dict[str, Installed]) -> list[Row]:
    runtime, full = sets["runtime"], sets["full"]
    return [
        Row(SECTION, "runtime set (make run): packages", "packages", runtime.packages,
            full.packages, "full set"),
        Row(SECTION, "runtime set: installed size", "MiB", runtime.mib, full.mib, "full set"),
        Row(SECTION, "runtime set: install time, from pip's cache", "s", runtime.seconds,
            full.seconds, "full set"),
    ]  # fmt: skip


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="eq-install-") as tmp:
        sets = {
            name: await asyncio.to_thread(install, PROJECT_ROOT / lock, Path(tmp) / name)
            for name, lock in LOCKS.items()
        }
    return _rows(sets)


if __name__ == "__main__":  # `python -m bench.install`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
