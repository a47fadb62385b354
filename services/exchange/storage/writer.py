"""The exchange's write path: common.writer (orders and executions, candle spans)."""

from common.writer import CHECKPOINT_EVERY, Transaction, Writer

__all__ = ["CHECKPOINT_EVERY", "Transaction", "Writer"]
