// The equity history's resolution on the Overview: the portfolio snapshots every account
// once a minute, and GetEquityHistory keeps the last snapshot of each `interval`. Hourly
// points suit a month; a young stack asks again at a finer interval, so its first hour is a
// line rather than one point.

/** The intervals asked for, finest first (seconds). */
export const EQUITY_INTERVALS = [60, 300, 900, 3600] as const

/** The finest interval that keeps the span within `maxPoints` points (hourly at most). */
export function equityInterval(spanSeconds: number, maxPoints = 720): number {
  return EQUITY_INTERVALS.find((interval) => spanSeconds / interval <= maxPoints) ?? EQUITY_INTERVALS[EQUITY_INTERVALS.length - 1]
}

/** From hourly points (oldest first): where the history starts and the interval to ask
 * for; null when hourly is already the right one (or there is no history). */
export function finerEquityQuery(hourly: readonly { time: string }[], nowSeconds: number): { startSeconds: number; interval: number } | null {
  if (!hourly.length) return null
  const first = Math.floor(Date.parse(hourly[0].time) / 1000)
  // An hourly point is the last snapshot of its hour: the history may begin at the hour's start.
  const startSeconds = first - (first % 3600)
  const interval = equityInterval(nowSeconds - startSeconds)
  return interval < 3600 ? { startSeconds, interval } : null
}
