// Risk limits as a trader reads them: a label, the unit where it is plain, and the raw
// key (snake_case, as in configs and the API's update_mask) kept for a title attribute.
// Each limit's kind says how the form edits it and what its JSON value is.

/** decimal: a decimal string ("" no limit); count: an int32 (0 off); duration: a proto3
 * Duration string ("300s", "0s" off); symbols: a list ([] every market). */
export type LimitKind = 'decimal' | 'count' | 'duration' | 'symbols'

export interface LimitField {
  /** The JSON name (camelCase) in GET /v1/risk/limits. */
  key: string
  label: string
  unit?: string
  kind: LimitKind
  /** The [risk.limits] key in configs/default.toml where it is not snakeCase(key). */
  configKey?: string
}

export const LIMIT_FIELDS: LimitField[] = [
  { key: 'minOrderNotional', label: 'Min order notional', unit: 'quote currency', kind: 'decimal' },
  { key: 'maxOrderNotional', label: 'Max order notional', unit: 'quote currency', kind: 'decimal' },
  { key: 'maxPositionQuantity', label: 'Max position quantity', unit: 'base currency, per symbol', kind: 'decimal' },
  { key: 'maxPositionNotional', label: 'Max position notional', unit: 'quote currency, per symbol', kind: 'decimal' },
  { key: 'maxGrossExposure', label: 'Max gross exposure', unit: 'quote currency', kind: 'decimal' },
  { key: 'maxLeverage', label: 'Max leverage', unit: '× equity', kind: 'decimal' },
  { key: 'maxPriceDeviation', label: 'Max price deviation', unit: 'fraction of the mark, 0.1 = 10%', kind: 'decimal' },
  { key: 'dailyLossLimit', label: 'Daily loss limit', unit: 'quote currency, since 00:00 UTC', kind: 'decimal' },
  { key: 'maxDrawdown', label: 'Max drawdown', unit: 'fraction below the equity peak', kind: 'decimal' },
  { key: 'maxVar', label: 'Max VaR', unit: 'quote currency, one-day 99%', kind: 'decimal' },
  { key: 'maxOpenOrders', label: 'Max open orders', unit: 'at once, 0 = off', kind: 'count' },
  { key: 'maxOrdersPerSecond', label: 'Max orders per second', unit: '0 = off', kind: 'count' },
  { key: 'maxOrdersPerMinute', label: 'Max orders per minute', unit: '0 = off', kind: 'count' },
  { key: 'lossCooldownTrades', label: 'Loss cooldown after', unit: 'losing trades in a row, 0 = off', kind: 'count' },
  { key: 'lossCooldown', label: 'Loss cooldown', unit: 'seconds ("300" or "300s"), 0 = none', kind: 'duration', configKey: 'loss_cooldown_seconds' },
  { key: 'allowedSymbols', label: 'Allowed symbols', unit: 'comma-separated, empty = all', kind: 'symbols' },
]

// Every limit is editable (symbol_limits, a map of per-symbol overrides, is not in the form).
export const EDITABLE_LIMITS = LIMIT_FIELDS.map((field) => field.key)

/** What an empty form field means for each kind: its placeholder. */
export const EMPTY_TEXT: Record<LimitKind, string> = { decimal: 'no limit', count: 'off', duration: 'none', symbols: 'all' }

/** The raw key as configs and update_mask spell it: maxOrderNotional -> max_order_notional. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => '_' + letter.toLowerCase())
}

/** The name a config file uses, for the title attribute. */
export function configKey(field: LimitField): string {
  return field.configKey ?? snakeCase(field.key)
}

/** Seconds of a proto3 Duration string ("300s", "1.5s"); 0 for none. */
export function durationSeconds(value: unknown): number {
  const match = /^(-?\d+(?:\.\d+)?)s$/.exec(String(value ?? ''))
  return match ? Number(match[1]) : 0
}

/** "5m", "1h 30m", "45s": a cooldown as a trader reads it. */
function durationWords(seconds: number): string {
  const parts: string[] = []
  let rest = seconds
  for (const [unit, size] of [['h', 3600], ['m', 60]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
  }
  if (rest || !parts.length) parts.push(`${Number(rest.toFixed(3))}s`)
  return parts.join(' ')
}

/** A limit's value as its form field holds it ("" for unset, so the placeholder shows). */
export function formText(field: LimitField, value: unknown): string {
  switch (field.kind) {
    case 'symbols':
      return Array.isArray(value) ? value.join(', ') : ''
    case 'count':
      return Number(value ?? 0) ? String(value) : ''
    case 'duration': {
      const seconds = durationSeconds(value)
      return seconds ? `${seconds}s` : ''
    }
    default:
      return value === undefined || value === null ? '' : String(value)
  }
}

/** Whether a value is the kind's "no limit"/"off" (shown muted). */
export function isUnset(field: LimitField, value: unknown): boolean {
  return !formText(field, value)
}

/** A limit's value for display: an unset one reads as what it means for its kind. */
export function limitText(field: LimitField, value: unknown): string {
  if (isUnset(field, value)) return EMPTY_TEXT[field.kind]
  return field.kind === 'duration' ? durationWords(durationSeconds(value)) : formText(field, value)
}

const INT32_MAX = 2 ** 31 - 1
const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600 }

/** A form field's text as the API's JSON value, or an error a trader can act on. */
export function parseLimit(field: LimitField, text: string): { value: unknown } | { error: string } {
  const trimmed = text.trim()
  switch (field.kind) {
    case 'symbols':
      return { value: trimmed.split(',').map((each) => each.trim()).filter(Boolean) }
    case 'count': {
      if (!trimmed) return { value: 0 }
      if (!/^\d+$/.test(trimmed) || Number(trimmed) > INT32_MAX) return { error: 'a whole number of 0 or more (0 or empty: off)' }
      return { value: Number(trimmed) }
    }
    case 'duration': {
      if (!trimmed) return { value: '0s' }
      const match = /^(\d+(?:\.\d{1,9})?)\s*([smh]?)$/.exec(trimmed)
      if (!match) return { error: 'seconds, like 300 or 300s (also 5m, 1h; 0 or empty: none)' }
      const seconds = Number(match[1]) * DURATION_UNITS[match[2]]
      return { value: `${Number(seconds.toFixed(9))}s` }
    }
    default:
      if (trimmed && !/^\d+(\.\d+)?$/.test(trimmed)) return { error: 'a decimal number of 0 or more, like 2500 or 0.1 (empty: no limit)' }
      return { value: trimmed }
  }
}

/** The fields whose edited value differs from the stored one ("BTC/USDT,ETH/USDT" is
 * "BTC/USDT, ETH/USDT"); a field that does not parse counts as changed. */
export function changedLimits(stored: Record<string, unknown>, edits: Record<string, string>): LimitField[] {
  const same = (field: LimitField) =>
    JSON.stringify(parseLimit(field, edits[field.key] ?? '')) === JSON.stringify(parseLimit(field, formText(field, stored[field.key])))
  return LIMIT_FIELDS.filter((field) => !same(field))
}
