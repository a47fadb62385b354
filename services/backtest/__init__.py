"""The backtest service."""
