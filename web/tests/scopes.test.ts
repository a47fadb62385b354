import { describe, expect, it } from 'vitest'
import { can, missingScope } from '../src/lib/scopes'
import { backoffDelay } from '../src/lib/api'

describe('scope gating', () => {
  const reader = { name: 'r', scopes: ['read'], expires_at: null }
  const trader = { name: 't', scopes: ['read', 'trade'], expires_at: null }
  const admin = { name: 'a', scopes: ['admin'], expires_at: null }

  it('enables a control only with its RPC scope; scopes are not a hierarchy', () => {
    expect(can(reader, 'checkOrder')).toBe(false)
    expect(can(trader, 'checkOrder')).toBe(true)
    expect(can(reader, 'submitOrder')).toBe(false)
    expect(can(trader, 'submitOrder')).toBe(true)
    expect(can(trader, 'setTradingState')).toBe(false)
    expect(can(admin, 'setTradingState')).toBe(true)
    expect(can(admin, 'submitOrder')).toBe(false)
    expect(missingScope(reader, 'cancelOrder')).toBe('needs the trade scope')
  })

  it('disables everything for no token or an expired one', () => {
    expect(can(null, 'checkOrder')).toBe(false)
    const expired = { ...trader, expires_at: '2026-01-01T00:00:00Z' }
    expect(can(expired, 'submitOrder', new Date('2026-01-02T00:00:00Z'))).toBe(false)
    expect(can(expired, 'submitOrder', new Date('2025-12-31T00:00:00Z'))).toBe(true)
  })
})

describe('reconnect backoff', () => {
  it('grows, is capped at 30 s and jitters between half and all of it', () => {
    expect(backoffDelay(0, () => 0)).toBe(250)
    expect(backoffDelay(0, () => 1)).toBe(500)
    expect(backoffDelay(20, () => 1)).toBe(30_000)
    expect(backoffDelay(20, () => 0)).toBe(15_000)
  })
})
