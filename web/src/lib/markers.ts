import type { SeriesMarker, Time } from 'lightweight-charts'
import { sumDecimals } from './decimal'

export interface FillLike {
  side: string
  quantity: string
  price: string
  time: string
}

/** The account's fills as chart markers on the candle each fell in (`timeframeSeconds`
 * buckets), buys below in green, sells above in red, time-ordered as the chart needs.
 * Fills of one candle and side make one marker ("B x3 0.6 @ 100–101": count, exact summed
 * quantity, price range): stacked arrows of a busy candle would overlap into noise. */
export function fillsToMarkers(fills: FillLike[], timeframeSeconds: number, maxLabelled = 20): SeriesMarker<Time>[] {
  const groups = new Map<string, { time: number; buy: boolean; fills: FillLike[] }>()
  for (const fill of fills) {
    const seconds = Math.floor(Date.parse(fill.time) / 1000)
    if (!Number.isFinite(seconds)) continue
    const time = seconds - (seconds % timeframeSeconds)
    const buy = fill.side === 'SIDE_BUY'
    const key = `${time}:${buy ? 'B' : 'S'}`
    const group = groups.get(key) ?? { time, buy, fills: [] }
    group.fills.push(fill)
    groups.set(key, group)
  }
  // Many labels overlap too: past `maxLabelled` markers the arrows say only side and count.
  const labelled = groups.size <= maxLabelled
  return [...groups.values()]
    .sort((a, b) => a.time - b.time || Number(b.buy) - Number(a.buy))
    .map(({ time, buy, fills: merged }) => {
      const side = buy ? 'B' : 'S'
      const count = merged.length > 1 ? ` x${merged.length}` : ''
      return {
        time: time as Time,
        position: buy ? 'belowBar' : 'aboveBar',
        color: buy ? '#26a69a' : '#ef5350',
        shape: buy ? 'arrowUp' : 'arrowDown',
        text: labelled ? `${side}${count} ${quantityOf(merged)} @ ${priceRange(merged)}` : side + count,
      } satisfies SeriesMarker<Time>
    })
}

function quantityOf(fills: FillLike[]): string {
  return fills.length === 1 ? fills[0].quantity : sumDecimals(fills.map((fill) => fill.quantity)) || '?'
}

/** One price, or the lowest and highest (ordered by value, shown as given). */
function priceRange(fills: FillLike[]): string {
  const prices = [...new Set(fills.map((fill) => fill.price))].sort((a, b) => Number(a.replace(/,/g, '')) - Number(b.replace(/,/g, '')))
  return prices.length === 1 ? prices[0] : `${prices[0]}–${prices[prices.length - 1]}`
}

export const TIMEFRAMES: Record<string, { proto: string; seconds: number }> = {
  '1m': { proto: 'TIMEFRAME_1M', seconds: 60 },
  '5m': { proto: 'TIMEFRAME_5M', seconds: 300 },
  '15m': { proto: 'TIMEFRAME_15M', seconds: 900 },
  '1h': { proto: 'TIMEFRAME_1H', seconds: 3600 },
  '4h': { proto: 'TIMEFRAME_4H', seconds: 14400 },
  '1d': { proto: 'TIMEFRAME_1D', seconds: 86400 },
}

export function timeframeSeconds(proto: string): number {
  for (const value of Object.values(TIMEFRAMES)) if (value.proto === proto) return value.seconds
  return 60
}
