import { describe, expect, it } from 'vitest'
import { allActive, proposedState, statesToShow, switchAction, switchConsequence, withStateChange } from '../src/lib/tradingStates'

const state = (accountId: string, name: string, reason = '') => ({ accountId, state: `TRADING_STATE_${name}`, reason, updatedBy: 'risk', updateTime: '2026-01-01T00:00:00Z' })

describe('the trading state shown on load', () => {
  it('shows the global switch and every account that is not active, halted first', () => {
    const global = state('', 'ACTIVE')
    const accounts = [state('okx', 'REDUCING', 'closing out'), state('paper', 'ACTIVE'), state('binance', 'HALTED', 'daily loss limit reached')]
    expect(statesToShow(global, accounts).map((each) => `${each.accountId}:${each.state}`)).toEqual([
      ':TRADING_STATE_ACTIVE',
      'binance:TRADING_STATE_HALTED',
      'okx:TRADING_STATE_REDUCING',
    ])
    expect(allActive(statesToShow(global, accounts))).toBe(false)
  })

  it('has nothing to warn of when every switch is active', () => {
    const shown = statesToShow(state('', 'ACTIVE'), [state('paper', 'ACTIVE')])
    expect(shown).toHaveLength(1)
    expect(allActive(shown)).toBe(true)
    expect(allActive(statesToShow(state('', 'HALTED', 'venue incident'), []))).toBe(false)
  })

  it("follows an account's state change from the live events", () => {
    const accounts = [state('paper', 'ACTIVE'), state('okx', 'ACTIVE')]
    const halted = state('paper', 'HALTED', 'drawdown')
    const event = { type: 'RISK_EVENT_TYPE_TRADING_STATE_CHANGED', time: '2026-01-01T00:01:00Z', message: '', tradingState: halted, accountId: 'paper' }
    expect(statesToShow(null, withStateChange(accounts, event))).toEqual([halted])
    // The global switch's changes are the shell's (store.trading); a denial changes nothing.
    expect(withStateChange(accounts, { ...event, tradingState: state('', 'HALTED'), accountId: '' })).toBe(accounts)
    expect(withStateChange(accounts, { ...event, type: 'RISK_EVENT_TYPE_ORDER_DENIED' })).toBe(accounts)
  })
})

describe('the kill switch dialog', () => {
  it('offers to halt a scope that trades and to resume one that does not', () => {
    expect(proposedState('TRADING_STATE_ACTIVE')).toBe('TRADING_STATE_HALTED')
    expect(proposedState(undefined)).toBe('TRADING_STATE_HALTED')
    expect(proposedState('TRADING_STATE_HALTED')).toBe('TRADING_STATE_ACTIVE')
    expect(proposedState('TRADING_STATE_REDUCING')).toBe('TRADING_STATE_ACTIVE')
  })

  it('says what it does and where', () => {
    expect(switchAction('TRADING_STATE_HALTED', '')).toBe('Halt trading')
    expect(switchAction('TRADING_STATE_REDUCING', 'paper')).toBe('Reduce only on paper')
    expect(switchAction('TRADING_STATE_ACTIVE', 'paper')).toBe('Resume paper')
    expect(switchConsequence('TRADING_STATE_HALTED', 'okx')).toContain('okx: its open orders are cancelled')
    expect(switchConsequence('TRADING_STATE_REDUCING', '')).toContain('every account: only orders that shrink a position')
  })
})
