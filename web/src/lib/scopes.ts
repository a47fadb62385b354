// Scopes are explicit, not a hierarchy (gateway/auth.py): an admin token that should
// trade lists both. The UI enables a control only when its RPC's scope is held.
export type Scope = 'read' | 'trade' | 'admin'

export interface WhoAmI {
  name: string
  scopes: string[]
  expires_at: string | null
}

// The scope of each control's RPC, by the gateway's rule.
export const ACTIONS = {
  submitOrder: 'trade',
  cancelOrder: 'trade',
  // A real check spends the account's order-rate budget: trade, even for the dry run.
  checkOrder: 'trade',
  setTradingState: 'admin',
  updateLimits: 'admin',
  importDataset: 'admin',
  deleteDataset: 'admin',
  submitBacktest: 'admin',
  cancelJob: 'admin',
  // StrategyService: every RPC that changes state is admin (gateway/auth.py's rule).
  manageRunners: 'admin',
} as const satisfies Record<string, Scope>

export type Action = keyof typeof ACTIONS

export function can(who: WhoAmI | null, action: Action, now: Date = new Date()): boolean {
  if (!who) return false
  if (who.expires_at && Date.parse(who.expires_at) <= now.getTime()) return false
  return who.scopes.includes(ACTIONS[action])
}

export function missingScope(who: WhoAmI | null, action: Action): string {
  return can(who, action) ? '' : `needs the ${ACTIONS[action]} scope`
}
