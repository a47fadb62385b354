"""What a worker is asked to do: plain data, JSON-serialisable, free of gRPC and SQL
(a worker process imports numpy and the engine, nothing else of the server)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from services.backtest.bars.settings import BarSettings, FillTiming, Sizing


@dataclass(frozen=True)
class TickSettings:
    maker_fee: float = 0.0
    taker_fee: float = 0.0
    # Nanoseconds.
    entry_latency_ns: int = 0
    response_latency_ns: int = 0
    # "risk_adverse", "power_prob_2", "power_prob_3", "log_prob_2", ...
    queue_model: str = "risk_adverse"
    initial_cash: float = 0.0


@dataclass(frozen=True)
class Run:
    # Single runs are index 0; the runs of a sweep are numbered from 1.
    index: int
    parameters: dict[str, float]


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    engine: str  # "bar" or "tick"
    strategy: str
    dataset_file: str
    runs: tuple[Run, ...]
    bar: BarSettings = field(default_factory=BarSettings)
    tick: TickSettings = field(default_factory=TickSettings)
    tick_size: float = 0.0
    lot_size: float = 0.0
    timeframe_ms: int = 60_000
    strategies_dir: str = ""
    rank_by: str = ""
    # A sweep keeps the equity curve and trades of this many of its best runs.
    keep_details: int = 1

    @property
    def is_sweep(self) -> bool:
        return self.runs[0].index > 0

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        # Enums by value (BarSettings reads them back).
        document["bar"] = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in document["bar"].items()
        }
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> JobSpec:
        bar = dict(document["bar"])
        bar["fill_timing"] = FillTiming(bar["fill_timing"])
        bar["sizing"] = Sizing(bar["sizing"])
        return cls(
            **{
                **document,
                "bar": BarSettings(**bar),
                "tick": TickSettings(**document["tick"]),
                "runs": tuple(Run(**run) for run in document["runs"]),
            }
        )
