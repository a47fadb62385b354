import { describe, expect, it } from 'vitest'
import { newestFill, violationFigures } from '../src/lib/orders'

describe('the newest fill', () => {
  const fill = (time: string, sequence: string) => ({ time, sequence })

  it('is the latest by time, whatever order the list is in (ListFills: newest first)', () => {
    const newestFirst = [fill('2026-11-30T18:05:00Z', '3'), fill('2026-11-30T18:01:00Z', '2'), fill('2026-11-30T17:00:00Z', '1')]
    expect(newestFill(newestFirst)?.sequence).toBe('3')
    expect(newestFill([...newestFirst].reverse())?.sequence).toBe('3')
  })

  it('breaks a tie in time by the sequence, and is nothing for no fills', () => {
    expect(newestFill([fill('2026-11-30T18:05:00Z', '7'), fill('2026-11-30T18:05:00Z', '9')])?.sequence).toBe('9')
    expect(newestFill([])).toBeUndefined()
  })
})

describe('a risk denial', () => {
  it('shows its limit and the value the order would reach', () => {
    expect(violationFigures({ reason: 'RISK_MAX_NOTIONAL', message: 'order value reaches the maximum', limit: '5000', actual: '3000000' })).toBe('limit 5,000; the order would reach 3,000,000')
  })

  it('shows nothing more when the violation has no figures', () => {
    expect(violationFigures({ reason: 'RISK_TRADING_HALTED', message: 'trading is halted' })).toBe('')
  })
})
