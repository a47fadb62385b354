"""The bar engine: candles and a target-position signal in, trades, equity and metrics out."""
