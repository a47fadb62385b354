import type { SeriesMarker, Time } from 'lightweight-charts'

export interface FillLike {
  side: string
  quantity: string
  price: string
  time: string
}

/** The account's fills as chart markers on the candle each fell in (`timeframeSeconds`
 * buckets), buys below in green, sells above in red, time-ordered as the chart needs. */
export function fillsToMarkers(fills: FillLike[], timeframeSeconds: number, maxLabelled = 20): SeriesMarker<Time>[] {
  // Many labels overlap into noise: past `maxLabelled` fills the arrows say only B or S.
  const labelled = fills.length <= maxLabelled
  return fills
    .map((fill) => ({ fill, seconds: Math.floor(Date.parse(fill.time) / 1000) }))
    .filter(({ seconds }) => Number.isFinite(seconds))
    .sort((a, b) => a.seconds - b.seconds)
    .map(({ fill, seconds }) => {
      const buy = fill.side === 'SIDE_BUY'
      return {
        time: (seconds - (seconds % timeframeSeconds)) as Time,
        position: buy ? 'belowBar' : 'aboveBar',
        color: buy ? '#26a69a' : '#ef5350',
        shape: buy ? 'arrowUp' : 'arrowDown',
        text: labelled ? `${buy ? 'B' : 'S'} ${fill.quantity} @ ${fill.price}` : buy ? 'B' : 'S',
      } satisfies SeriesMarker<Time>
    })
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
