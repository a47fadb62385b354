import { reactive } from 'vue'
import type { TradingStateInfo } from './store'

export interface Violation {
  reason: string
  message: string
  limit: string
  actual: string
}

export interface RiskEvent {
  type: string
  time: string
  message: string
  violations?: Violation[]
  orderId?: string
  clientOrderId?: string
  tradingState?: TradingStateInfo
  accountId?: string
}

const KEEP = 200

/** Risk events seen since the page loaded (the shell keeps one stream open). */
export const feed = reactive({ riskEvents: [] as RiskEvent[], since: new Date().toISOString() })

export function pushRiskEvent(event: RiskEvent): void {
  feed.riskEvents.unshift(event)
  if (feed.riskEvents.length > KEEP) feed.riskEvents.length = KEEP
}
