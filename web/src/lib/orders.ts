import { formatDecimal } from './decimal'

export interface Order {
  orderId: string
  clientOrderId: string
  venue: string
  symbol: string
  side: string
  type: string
  quantity: string
  price: string
  postOnly: boolean
  reduceOnly: boolean
  status: string
  filledQuantity: string
  averageFillPrice: string
  fee: string
  feeCurrency: string
  rejectReasons?: string[]
  rejectMessage?: string
  createTime?: string
  updateTime?: string
}

export interface Fill {
  accountId: string
  venue: string
  tradeId: string
  orderId: string
  symbol: string
  side: string
  quantity: string
  price: string
  fee: string
  feeCurrency: string
  liquidity: string
  time: string
  sequence: string
}

/** The newest fill, whatever order the list is in (ListFills gives newest first; time,
 * then the venue's sequence, decides). */
export function newestFill<T extends Pick<Fill, 'time' | 'sequence'>>(fills: readonly T[]): T | undefined {
  let newest: T | undefined
  for (const fill of fills) {
    if (!newest) {
      newest = fill
      continue
    }
    const byTime = Date.parse(fill.time) - Date.parse(newest.time)
    const bySequence = Number(fill.sequence || 0) - Number(newest.sequence || 0)
    if (byTime > 0 || (byTime === 0 && bySequence > 0)) newest = fill
  }
  return newest
}

/** A risk violation as CheckOrder and SubmitOrder give it: limit and actual are decimal strings. */
export interface Violation {
  reason: string
  message: string
  limit?: string
  actual?: string
}

/** "limit 5,000; the order would reach 3,000,000": the numbers behind a denial ('' when it
 * has none; `actual` is what the order would bring the limited value to). */
export function violationFigures(violation: Violation): string {
  const parts = [
    violation.limit ? `limit ${formatDecimal(violation.limit)}` : '',
    violation.actual ? `the order would reach ${formatDecimal(violation.actual)}` : '',
  ]
  return parts.filter(Boolean).join('; ')
}

export const OPEN_STATUSES = ['ORDER_STATUS_PENDING_NEW', 'ORDER_STATUS_OPEN', 'ORDER_STATUS_PARTIALLY_FILLED', 'ORDER_STATUS_PENDING_CANCEL']

export function isOpen(order: Order): boolean {
  return OPEN_STATUSES.includes(order.status)
}

export function short(enumName: string | undefined): string {
  return (enumName ?? '').replace(/^(ORDER_STATUS|SIDE|ORDER_TYPE|LIQUIDITY|JOB_STATE|TRADING_STATE|RISK_EVENT_TYPE|DECISION)_/, '')
}

export interface Ticket {
  venue: string
  symbol: string
  side: 'SIDE_BUY' | 'SIDE_SELL'
  type: 'ORDER_TYPE_MARKET' | 'ORDER_TYPE_LIMIT'
  quantity: string
  price: string
  postOnly: boolean
  reduceOnly: boolean
}

/** The SubmitOrder body: exactly what the user typed (decimal strings untouched). */
export function orderBody(ticket: Ticket, clientOrderId: string): Record<string, unknown> {
  const limit = ticket.type === 'ORDER_TYPE_LIMIT'
  return {
    venue: ticket.venue,
    symbol: ticket.symbol,
    side: ticket.side,
    type: ticket.type,
    quantity: ticket.quantity,
    ...(limit ? { price: ticket.price, time_in_force: 'TIME_IN_FORCE_GTC', post_only: ticket.postOnly } : {}),
    reduce_only: ticket.reduceOnly,
    client_order_id: clientOrderId,
  }
}

/** The CheckOrder body of the same order, as a pre-check without side effects. */
export function checkBody(ticket: Ticket): Record<string, unknown> {
  return {
    venue: ticket.venue,
    symbol: ticket.symbol,
    side: ticket.side,
    type: ticket.type,
    quantity: ticket.quantity,
    ...(ticket.type === 'ORDER_TYPE_LIMIT' ? { price: ticket.price } : {}),
    reduce_only: ticket.reduceOnly,
    dry_run: true,
  }
}

export function newClientOrderId(): string {
  const bytes = new Uint8Array(8)
  crypto.getRandomValues(bytes)
  return 'ui-' + [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('')
}

export function toCsv(rows: Record<string, unknown>[], columns: string[]): string {
  const escape = (value: unknown) => {
    // A list (an order's reject reasons) is one cell, its items space-separated.
    const text = value === undefined || value === null ? '' : Array.isArray(value) ? value.join(' ') : String(value)
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
  }
  return [columns.join(','), ...rows.map((row) => columns.map((column) => escape(row[column])).join(','))].join('\r\n') + '\r\n'
}
