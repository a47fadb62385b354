"""Candle timeframes by name ("1m", "4h"), as ccxt and Freqtrade spell them."""

from __future__ import annotations

MINUTE_MS = 60_000
TIMEFRAME_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
    "1w": 10080 * MINUTE_MS,
}


def timeframe_of(milliseconds: int) -> str | None:
    return next((name for name, ms in TIMEFRAME_MS.items() if ms == milliseconds), None)
