// The kill switch's current state as the Overview shows it on load. The risk API keeps no
// past events (StreamRiskEvents starts "from now on"), so a halt set before the page opened
// is known from GetTradingState: the global switch and each venue account's own.
import type { RiskEvent } from './feed'
import type { TradingStateInfo } from './store'

const ACTIVE = 'TRADING_STATE_ACTIVE'

/** The global switch (when known), then each account that is not ACTIVE, halted first. */
export function statesToShow(global: TradingStateInfo | null, accounts: TradingStateInfo[]): TradingStateInfo[] {
  const rank = (state: TradingStateInfo) => (state.state === 'TRADING_STATE_HALTED' ? 0 : 1)
  const restricted = accounts
    .filter((state) => state.accountId && state.state !== ACTIVE)
    .sort((a, b) => rank(a) - rank(b) || a.accountId.localeCompare(b.accountId))
  return global ? [global, ...restricted] : restricted
}

/** Whether every account trades normally: nothing to warn of. */
export function allActive(states: TradingStateInfo[]): boolean {
  return states.every((state) => state.state === ACTIVE)
}

/** The accounts' states after a state-change event for one of them (others are unchanged). */
export function withStateChange(accounts: TradingStateInfo[], event: RiskEvent): TradingStateInfo[] {
  const changed = event.tradingState
  if (event.type !== 'RISK_EVENT_TYPE_TRADING_STATE_CHANGED' || !changed?.accountId) return accounts
  const others = accounts.filter((state) => state.accountId !== changed.accountId)
  return [...others, changed]
}

/** "HALTED" for TRADING_STATE_HALTED (the badge's text and class). */
export function stateName(state: TradingStateInfo): string {
  return state.state.replace(/^TRADING_STATE_/, '')
}

/** The state the kill switch dialog offers first for a scope now in `current`: HALTED
 * while it trades normally, else back to ACTIVE. */
export function proposedState(current: string | undefined): string {
  return !current || current === ACTIVE ? 'TRADING_STATE_HALTED' : ACTIVE
}

/** The confirm button's words: what it does, and where. */
export function switchAction(state: string, accountId: string): string {
  const where = accountId ? `on ${accountId}` : 'on every account'
  if (state === 'TRADING_STATE_HALTED') return accountId ? `Halt ${accountId}` : 'Halt trading'
  if (state === 'TRADING_STATE_REDUCING') return `Reduce only ${where}`
  return accountId ? `Resume ${accountId}` : 'Resume trading'
}

/** What the chosen state does, for the dialog's question. */
export function switchConsequence(state: string, accountId: string): string {
  if (state === 'TRADING_STATE_HALTED') {
    return accountId ? `Halt ${accountId}: its open orders are cancelled and new ones denied.` : 'Halt every account: all open orders are cancelled and new ones denied.'
  }
  if (state === 'TRADING_STATE_REDUCING') return `Reduce only on ${accountId || 'every account'}: only orders that shrink a position pass.`
  return accountId ? `Resume ${accountId} (the global switch still applies).` : "Resume trading (each account's own switch still applies)."
}
