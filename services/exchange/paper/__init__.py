"""The paper venue: real Binance market data replayed offline, with a fill model that walks
the book, rests limit orders until trades go through them, charges fees and enforces
balances."""
