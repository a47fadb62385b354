"""Chunked uploads on disk: assembled in order, a resent chunk replaces what followed,
and an upload left unfinished for an hour is discarded when the next one starts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from common.errors import InvalidArgument
from services.backtest.datasets.store import UPLOAD_EXPIRY_SECONDS, Chunk, DatasetStore


def store(tmp_path: Path) -> DatasetStore:
    # Chunks touch only the uploads directory, never the database.
    return DatasetStore(None, tmp_path / "datasets", tmp_path / "import")  # type: ignore[arg-type]


async def test_chunks_assemble_and_a_resent_chunk_replaces_the_tail(tmp_path: Path) -> None:
    datasets = store(tmp_path)
    first = await datasets.receive_chunk(Chunk("", 0, b"time,open\n", more=True))
    second = await datasets.receive_chunk(Chunk(first.upload_id, 10, b"1,2\n3,", more=True))
    assert second.size == 16
    # The answer was lost; the client resends from offset 10 with the chunk it meant.
    again = await datasets.receive_chunk(Chunk(first.upload_id, 10, b"1,2\n", more=True))
    assert again.size == 14
    assert again.path.read_bytes() == b"time,open\n1,2\n"
    assert again.path.parent == tmp_path / "datasets" / "uploads"


async def test_an_unfinished_upload_expires(tmp_path: Path) -> None:
    datasets = store(tmp_path)
    old = await datasets.receive_chunk(Chunk("", 0, b"abc", more=True))
    long_ago = time.time() - UPLOAD_EXPIRY_SECONDS - 60
    os.utime(old.path, (long_ago, long_ago))
    await datasets.receive_chunk(Chunk("", 0, b"new", more=True))
    assert not old.path.exists()
    with pytest.raises(InvalidArgument) as raised:
        await datasets.receive_chunk(Chunk(old.upload_id, 3, b"d", more=True))
    assert [v.field for v in raised.value.violations] == ["upload_id"]
    with pytest.raises(InvalidArgument):
        await datasets.receive_chunk(Chunk("../../etc/passwd", 0, b"d", more=True))
