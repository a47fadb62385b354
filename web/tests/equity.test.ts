import { describe, expect, it } from 'vitest'
import { equityInterval, finerEquityQuery } from '../src/lib/equity'

const at = (iso: string) => Date.parse(iso) / 1000

describe('the equity history interval', () => {
  it('is a minute while the history is a few hours, hourly for a month', () => {
    expect(equityInterval(20 * 60)).toBe(60)
    expect(equityInterval(11 * 3600)).toBe(60)
    expect(equityInterval(2 * 86400)).toBe(300)
    expect(equityInterval(7 * 86400)).toBe(900)
    expect(equityInterval(30 * 86400)).toBe(3600)
  })

  it('asks a young stack again by the minute, from the start of its first hour', () => {
    const hourly = [{ time: '2026-11-30T18:59:00Z' }]
    expect(finerEquityQuery(hourly, at('2026-11-30T19:10:00Z'))).toEqual({ startSeconds: at('2026-11-30T18:00:00Z'), interval: 60 })
  })

  it('keeps hourly points for a long history and asks nothing for none', () => {
    expect(finerEquityQuery([{ time: '2026-10-31T18:59:00Z' }], at('2026-11-30T19:10:00Z'))).toBeNull()
    expect(finerEquityQuery([], at('2026-11-30T19:10:00Z'))).toBeNull()
  })
})
