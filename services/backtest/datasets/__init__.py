"""Datasets: candles (CSV, Freqtrade JSON) and L2 ticks (hftbacktest .npz, raw Binance
futures feeds), checked on import and kept as compact array files."""
