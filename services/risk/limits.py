"""The risk limits: what each pre-trade rule compares against.

Every limit is optional (`None` means "no limit"). `validate_limits` reports every bad
field at once, named as the caller sent it (`limits.max_leverage`), and the document
form (`to_document` / `from_document`) is what the database keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from common.validation import MAX_DURATION_SECONDS, Violations
from common.wire import decimal_text

# The names UpdateLimits' update_mask may carry (the proto's field names).
LIMIT_FIELDS: tuple[str, ...] = (
    "allowed_symbols",
    "min_order_notional",
    "max_order_notional",
    "max_position_quantity",
    "max_position_notional",
    "symbol_limits",
    "max_gross_exposure",
    "max_leverage",
    "max_open_orders",
    "max_orders_per_second",
    "max_orders_per_minute",
    "max_price_deviation",
    "daily_loss_limit",
    "max_drawdown",
    "loss_cooldown_trades",
    "loss_cooldown",
    "max_var",
)
DECIMAL_FIELDS = (
    "min_order_notional",
    "max_order_notional",
    "max_position_quantity",
    "max_position_notional",
    "max_gross_exposure",
    "max_leverage",
    "max_price_deviation",
    "daily_loss_limit",
    "max_drawdown",
    "max_var",
)
COUNT_FIELDS = (
    "max_open_orders",
    "max_orders_per_second",
    "max_orders_per_minute",
    "loss_cooldown_trades",
)


@dataclass(frozen=True)
class SymbolLimits:
    """Per-symbol overrides of the position limits."""

    max_position_quantity: Decimal | None = None
    max_position_notional: Decimal | None = None


@dataclass(frozen=True)
class Limits:
    allowed_symbols: frozenset[str] = frozenset()
    min_order_notional: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position_quantity: Decimal | None = None
    max_position_notional: Decimal | None = None
    symbol_limits: dict[str, SymbolLimits] = field(default_factory=dict)
    max_gross_exposure: Decimal | None = None
    max_leverage: Decimal | None = None
    max_open_orders: int | None = None
    max_orders_per_second: int | None = None
    max_orders_per_minute: int | None = None
    max_price_deviation: Decimal | None = None
    daily_loss_limit: Decimal | None = None
    max_drawdown: Decimal | None = None
    loss_cooldown_trades: int | None = None
    loss_cooldown: timedelta | None = None
    max_var: Decimal | None = None

    def position_quantity_limit(self, symbol: str) -> Decimal | None:
        override = self.symbol_limits.get(symbol)
        if override is not None and override.max_position_quantity is not None:
            return override.max_position_quantity
        return self.max_position_quantity

    def position_notional_limit(self, symbol: str) -> Decimal | None:
        override = self.symbol_limits.get(symbol)
        if override is not None and override.max_position_notional is not None:
            return override.max_position_notional
        return self.max_position_notional


@dataclass(frozen=True)
class RawLimits:
    """Limits as they arrive (decimal strings, ints, a duration in seconds), unchecked."""

    allowed_symbols: tuple[str, ...] = ()
    min_order_notional: str = ""
    max_order_notional: str = ""
    max_position_quantity: str = ""
    max_position_notional: str = ""
    symbol_limits: dict[str, tuple[str, str]] = field(default_factory=dict)
    max_gross_exposure: str = ""
    max_leverage: str = ""
    max_open_orders: int = 0
    max_orders_per_second: int = 0
    max_orders_per_minute: int = 0
    max_price_deviation: str = ""
    daily_loss_limit: str = ""
    max_drawdown: str = ""
    loss_cooldown_trades: int = 0
    loss_cooldown_seconds: float = 0.0
    max_var: str = ""


def validate_limits(raw: RawLimits, violations: Violations, prefix: str = "limits.") -> Limits:
    """Checks every field of `raw`; records a violation per bad one (named `prefix`+field)."""

    def amount(name: str, text: str) -> Decimal | None:
        value = violations.decimal(prefix + name, text, required=False, non_negative=True)
        return value if value else None  # 0 means "no limit", as in the proto

    def count(name: str, value: int) -> int | None:
        violations.require(value >= 0, prefix + name, "must not be negative")
        return value if value > 0 else None

    def fraction(name: str, text: str, upper: Decimal) -> Decimal | None:
        value = amount(name, text)
        if value is not None and value >= upper:
            violations.add(prefix + name, f"must be a fraction below {upper}, got {text}")
        return value

    for index, symbol in enumerate(raw.allowed_symbols):
        violations.require(
            _is_symbol(symbol),
            f"{prefix}allowed_symbols[{index}]",
            f"must be a unified symbol such as 'BTC/USDT', got {symbol[:40]!r}",
        )
    symbol_limits: dict[str, SymbolLimits] = {}
    for symbol, (quantity, notional) in raw.symbol_limits.items():
        key = f"{prefix}symbol_limits[{symbol[:40]!r}]"
        violations.require(_is_symbol(symbol), key, "key must be a unified symbol ('BTC/USDT')")
        symbol_limits[symbol] = SymbolLimits(
            max_position_quantity=amount(
                f"symbol_limits[{symbol!r}].max_position_quantity", quantity
            ),
            max_position_notional=amount(
                f"symbol_limits[{symbol!r}].max_position_notional", notional
            ),
        )
    cooldown_valid = 0 <= raw.loss_cooldown_seconds <= MAX_DURATION_SECONDS  # NaN fails too
    violations.require(
        cooldown_valid, prefix + "loss_cooldown", "must be between 0 and 10,000 years"
    )
    limits = Limits(
        allowed_symbols=frozenset(raw.allowed_symbols),
        min_order_notional=amount("min_order_notional", raw.min_order_notional),
        max_order_notional=amount("max_order_notional", raw.max_order_notional),
        max_position_quantity=amount("max_position_quantity", raw.max_position_quantity),
        max_position_notional=amount("max_position_notional", raw.max_position_notional),
        symbol_limits=symbol_limits,
        max_gross_exposure=amount("max_gross_exposure", raw.max_gross_exposure),
        max_leverage=amount("max_leverage", raw.max_leverage),
        max_open_orders=count("max_open_orders", raw.max_open_orders),
        max_orders_per_second=count("max_orders_per_second", raw.max_orders_per_second),
        max_orders_per_minute=count("max_orders_per_minute", raw.max_orders_per_minute),
        max_price_deviation=fraction("max_price_deviation", raw.max_price_deviation, Decimal(1)),
        daily_loss_limit=amount("daily_loss_limit", raw.daily_loss_limit),
        max_drawdown=fraction("max_drawdown", raw.max_drawdown, Decimal(1)),
        loss_cooldown_trades=count("loss_cooldown_trades", raw.loss_cooldown_trades),
        loss_cooldown=(
            timedelta(seconds=raw.loss_cooldown_seconds)
            if cooldown_valid and raw.loss_cooldown_seconds > 0
            else None
        ),
        max_var=amount("max_var", raw.max_var),
    )
    if limits.loss_cooldown_trades is not None and limits.loss_cooldown is None:
        violations.add(prefix + "loss_cooldown", "is required when loss_cooldown_trades is set")
    if (
        limits.min_order_notional is not None
        and limits.max_order_notional is not None
        and limits.min_order_notional > limits.max_order_notional
    ):
        violations.add(prefix + "min_order_notional", "must not exceed max_order_notional")
    return limits


def _is_symbol(symbol: str) -> bool:
    base, slash, quote = symbol.partition("/")
    return bool(base and slash and quote) and symbol == symbol.strip() and len(symbol) <= 64


def to_raw(limits: Limits) -> RawLimits:
    """The wire/document form of `limits` (the inverse of `validate_limits`)."""
    values: dict[str, Any] = {name: _text(getattr(limits, name)) for name in DECIMAL_FIELDS}
    values.update({name: getattr(limits, name) or 0 for name in COUNT_FIELDS})
    return RawLimits(
        allowed_symbols=tuple(sorted(limits.allowed_symbols)),
        symbol_limits={
            symbol: (_text(item.max_position_quantity), _text(item.max_position_notional))
            for symbol, item in sorted(limits.symbol_limits.items())
        },
        loss_cooldown_seconds=limits.loss_cooldown.total_seconds() if limits.loss_cooldown else 0.0,
        **values,
    )


def _text(value: Decimal | None) -> str:
    return decimal_text(value)  # plain notation: "0.0000001", never "1E-7"


def updated_limits(current: Limits, wanted: RawLimits, paths: tuple[str, ...]) -> Limits:
    """`current` with the fields named in `paths` (an update mask; empty: every field)
    taken from `wanted`; InvalidArgument names an unknown path or a bad value."""
    violations = Violations()
    paths = paths or LIMIT_FIELDS
    for path in paths:
        violations.require(
            path in LIMIT_FIELDS,
            "update_mask",
            f"unknown limit {path[:60]!r}; known: {', '.join(LIMIT_FIELDS)}",
        )
    violations.raise_if_any()
    merged = replace(
        to_raw(current), **{_raw_name(path): getattr(wanted, _raw_name(path)) for path in paths}
    )
    limits = validate_limits(merged, violations)
    violations.raise_if_any()
    return limits


def _raw_name(path: str) -> str:
    return "loss_cooldown_seconds" if path == "loss_cooldown" else path


def to_document(limits: Limits) -> dict[str, Any]:
    """A JSON-ready dict (decimal strings) for the database."""
    raw = to_raw(limits)
    document = {spec.name: getattr(raw, spec.name) for spec in fields(RawLimits)}
    document["allowed_symbols"] = list(raw.allowed_symbols)
    document["symbol_limits"] = {key: list(pair) for key, pair in raw.symbol_limits.items()}
    return document


def from_document(document: dict[str, Any]) -> Limits:
    """Limits from `to_document`'s form; raises InvalidArgument if it no longer validates."""
    known = {spec.name for spec in fields(RawLimits)}
    values = {key: value for key, value in document.items() if key in known}
    values["allowed_symbols"] = tuple(values.get("allowed_symbols", ()))
    values["symbol_limits"] = {
        key: (pair[0], pair[1]) for key, pair in values.get("symbol_limits", {}).items()
    }
    violations = Violations()
    limits = validate_limits(RawLimits(**values), violations)
    violations.raise_if_any()
    return limits
