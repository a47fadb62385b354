import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { configKey, EDITABLE_LIMITS, LIMIT_FIELDS, limitText, snakeCase } from '../src/lib/limits'

// The [risk.limits] keys of the shipped defaults: the names a trader matches labels to.
function configLimitKeys(): string[] {
  const text = readFileSync(new URL('../../configs/default.toml', import.meta.url), 'utf8')
  const section = text.split(/^\[risk\.limits\]$/m)[1].split(/^\[/m)[0]
  return [...section.matchAll(/^([a-z_]+)\s*=/gm)].map((match) => match[1])
}

describe('risk limit labels', () => {
  it('label every limit of configs/default.toml and name no other', () => {
    expect(LIMIT_FIELDS.map(configKey).sort()).toEqual(configLimitKeys().sort())
  })

  it('read as words with the raw key kept for the title', () => {
    const notional = LIMIT_FIELDS.find((field) => field.key === 'maxOrderNotional')
    expect(notional).toMatchObject({ label: 'Max order notional', unit: 'quote currency', editable: true })
    expect(configKey(notional!)).toBe('max_order_notional')
    for (const field of LIMIT_FIELDS) expect(field.label).toMatch(/^[A-Z][a-z]+( [A-Za-z]+)+$/)
  })

  it('edit the decimal-string limits only', () => {
    expect(EDITABLE_LIMITS).toContain('dailyLossLimit')
    expect(EDITABLE_LIMITS).not.toContain('maxOpenOrders')
    expect(snakeCase('maxOrdersPerSecond')).toBe('max_orders_per_second')
  })

  it('show an unset read-only limit as no limit', () => {
    expect([limitText(0), limitText(''), limitText([]), limitText(50), limitText(['BTC/USDT', 'ETH/USDT'])]).toEqual(['no limit', 'no limit', 'all', '50', 'BTC/USDT, ETH/USDT'])
  })
})
