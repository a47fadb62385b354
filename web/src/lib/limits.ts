// Risk limits as a trader reads them: a label, the unit where it is plain, and the raw
// key (snake_case, as in configs and the API's update_mask) kept for a title attribute.

export interface LimitField {
  /** The JSON name (camelCase) in GET /v1/risk/limits. */
  key: string
  label: string
  unit?: string
  /** A decimal string the form edits; the others are shown as they are. */
  editable?: boolean
  /** The [risk.limits] key in configs/default.toml where it is not snakeCase(key). */
  configKey?: string
}

export const LIMIT_FIELDS: LimitField[] = [
  { key: 'minOrderNotional', label: 'Min order notional', unit: 'quote currency', editable: true },
  { key: 'maxOrderNotional', label: 'Max order notional', unit: 'quote currency', editable: true },
  { key: 'maxPositionQuantity', label: 'Max position quantity', unit: 'base currency, per symbol', editable: true },
  { key: 'maxPositionNotional', label: 'Max position notional', unit: 'quote currency, per symbol', editable: true },
  { key: 'maxGrossExposure', label: 'Max gross exposure', unit: 'quote currency', editable: true },
  { key: 'maxLeverage', label: 'Max leverage', unit: '× equity', editable: true },
  { key: 'maxPriceDeviation', label: 'Max price deviation', unit: 'fraction of the mark, 0.1 = 10%', editable: true },
  { key: 'dailyLossLimit', label: 'Daily loss limit', unit: 'quote currency, since 00:00 UTC', editable: true },
  { key: 'maxDrawdown', label: 'Max drawdown', unit: 'fraction below the equity peak', editable: true },
  { key: 'maxVar', label: 'Max VaR', unit: 'quote currency, one-day 99%', editable: true },
  { key: 'maxOpenOrders', label: 'Max open orders' },
  { key: 'maxOrdersPerSecond', label: 'Max orders per second' },
  { key: 'maxOrdersPerMinute', label: 'Max orders per minute' },
  { key: 'lossCooldownTrades', label: 'Loss cooldown after', unit: 'losing trades in a row' },
  { key: 'lossCooldown', label: 'Loss cooldown', unit: 'duration', configKey: 'loss_cooldown_seconds' },
  { key: 'allowedSymbols', label: 'Allowed symbols' },
]

// Decimal-string limits the Risk page edits; the rest are shown as they are.
export const EDITABLE_LIMITS = LIMIT_FIELDS.filter((field) => field.editable).map((field) => field.key)

/** The raw key as configs and update_mask spell it: maxOrderNotional -> max_order_notional. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => '_' + letter.toLowerCase())
}

/** The name a config file uses, for the title attribute. */
export function configKey(field: LimitField): string {
  return field.configKey ?? snakeCase(field.key)
}

/** A read-only limit's value for display: empty, 0 and [] are "no limit". */
export function limitText(value: unknown): string {
  if (Array.isArray(value)) return value.length ? value.join(', ') : 'all'
  if (value === undefined || value === null || value === '' || value === 0 || value === '0s') return 'no limit'
  return String(value)
}
