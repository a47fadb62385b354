import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { changedLimits, configKey, EDITABLE_LIMITS, formText, LIMIT_FIELDS, limitText, parseLimit, snakeCase, type LimitField } from '../src/lib/limits'

// The [risk.limits] keys of the shipped defaults: the names a trader matches labels to.
function configLimitKeys(): string[] {
  const text = readFileSync(new URL('../../configs/default.toml', import.meta.url), 'utf8')
  const section = text.split(/^\[risk\.limits\]$/m)[1].split(/^\[/m)[0]
  return [...section.matchAll(/^([a-z_]+)\s*=/gm)].map((match) => match[1])
}

const field = (key: string): LimitField => LIMIT_FIELDS.find((each) => each.key === key)!

describe('risk limit labels', () => {
  it('label every limit of configs/default.toml and name no other', () => {
    expect(LIMIT_FIELDS.map(configKey).sort()).toEqual(configLimitKeys().sort())
  })

  it('read as words with the raw key kept for the title', () => {
    const notional = field('maxOrderNotional')
    expect(notional).toMatchObject({ label: 'Max order notional', unit: 'quote currency', kind: 'decimal' })
    expect(configKey(notional)).toBe('max_order_notional')
    for (const each of LIMIT_FIELDS) expect(each.label).toMatch(/^[A-Z][a-z]+( [A-Za-z]+)+$/)
  })

  it('edit every limit, counts, cooldown and symbols included', () => {
    expect(EDITABLE_LIMITS).toEqual(expect.arrayContaining(['dailyLossLimit', 'maxOpenOrders', 'maxOrdersPerSecond', 'maxOrdersPerMinute', 'lossCooldownTrades', 'lossCooldown', 'allowedSymbols']))
    expect(snakeCase('maxOrdersPerSecond')).toBe('max_orders_per_second')
  })
})

describe('a limit shown as a value', () => {
  it('reads an unset decimal as no limit and symbols as all', () => {
    expect([limitText(field('maxLeverage'), ''), limitText(field('maxLeverage'), undefined), limitText(field('maxLeverage'), '2')]).toEqual(['no limit', 'no limit', '2'])
    expect([limitText(field('allowedSymbols'), []), limitText(field('allowedSymbols'), ['BTC/USDT', 'ETH/USDT'])]).toEqual(['all', 'BTC/USDT, ETH/USDT'])
  })

  it('reads a zero cooldown as none and a zero count as off, never as no limit', () => {
    const cooldown = field('lossCooldown')
    expect([limitText(cooldown, '0s'), limitText(cooldown, undefined), limitText(cooldown, '300s'), limitText(cooldown, '5400s'), limitText(cooldown, '1.5s')]).toEqual(['none', 'none', '5m', '1h 30m', '1.5s'])
    expect([limitText(field('lossCooldownTrades'), 0), limitText(field('maxOpenOrders'), undefined), limitText(field('maxOpenOrders'), 50)]).toEqual(['off', 'off', '50'])
  })
})

describe('a limit edited in the form', () => {
  it('takes counts as whole numbers, empty as 0 (off)', () => {
    const count = field('maxOpenOrders')
    expect(parseLimit(count, ' 25 ')).toEqual({ value: 25 })
    expect(parseLimit(count, '')).toEqual({ value: 0 })
    for (const bad of ['2.5', '-1', 'ten', '99999999999']) expect(parseLimit(count, bad)).toHaveProperty('error')
  })

  it('takes the cooldown as seconds or a duration string, sent as a proto3 Duration', () => {
    const cooldown = field('lossCooldown')
    expect(['300', '300s', '5m', '1h', '1.5', '', '0'].map((text) => parseLimit(cooldown, text))).toEqual(
      ['300s', '300s', '300s', '3600s', '1.5s', '0s', '0s'].map((value) => ({ value })),
    )
    for (const bad of ['-5', 'soon', '5 days']) expect(parseLimit(cooldown, bad)).toHaveProperty('error')
    expect(formText(cooldown, '300s')).toBe('300s')
    expect(formText(cooldown, '0s')).toBe('')
  })

  it('takes symbols comma-separated and decimals as typed', () => {
    expect(parseLimit(field('allowedSymbols'), 'BTC/USDT, ETH/USDT,,')).toEqual({ value: ['BTC/USDT', 'ETH/USDT'] })
    expect(parseLimit(field('allowedSymbols'), ' ')).toEqual({ value: [] })
    expect(parseLimit(field('maxOrderNotional'), ' 2500.50 ')).toEqual({ value: '2500.50' })
    expect(parseLimit(field('maxOrderNotional'), '')).toEqual({ value: '' })
    expect(parseLimit(field('maxOrderNotional'), '1,000')).toHaveProperty('error')
  })

  it('sends only what changed (the same value spelled differently is unchanged)', () => {
    const stored = { maxLeverage: '2', maxOpenOrders: 50, lossCooldown: '0s', allowedSymbols: ['BTC/USDT', 'ETH/USDT'] }
    const edits = Object.fromEntries(LIMIT_FIELDS.map((each) => [each.key, formText(each, stored[each.key as keyof typeof stored])]))
    expect(changedLimits(stored, edits)).toEqual([])
    edits.allowedSymbols = 'BTC/USDT,ETH/USDT'
    edits.lossCooldown = '0'
    expect(changedLimits(stored, edits)).toEqual([])
    edits.maxOpenOrders = '20'
    edits.lossCooldown = '300'
    expect(changedLimits(stored, edits).map((each) => each.key)).toEqual(['maxOpenOrders', 'lossCooldown'])
  })
})
