// Fill-marker labels fitted to the chart (TimeChart, on every page with a chart: kept apart
// from markers.ts so the first page's JS does not carry the fill merging).
import type { SeriesMarker, Time } from 'lightweight-charts'

/** A marker's label cut to side and count ("B x3"), for where the full one cannot fit. */
export function shortLabel(text: string): string {
  return /^[BS]( x\d+)?/.exec(text)?.[0] ?? text
}

/** What the chart needs for every fill label to show whole: the room right of the last
 * candle (`rightOffsetPixels`), and the markers, a label shortened where even the room
 * allowed (`maxRoomPixels`) or the left edge would cut it. The library centres each
 * label on its candle; `barTimes` are the candles' times in order, `barSpacing` the
 * pixels from one candle to the next, `textWidth` a label's width in pixels. */
export function fitMarkerLabels(
  markers: SeriesMarker<Time>[],
  barTimes: number[],
  barSpacing: number,
  textWidth: (text: string) => number,
  maxRoomPixels: number,
  marginPixels = 4,
): { roomPixels: number; markers: SeriesMarker<Time>[] } {
  let roomPixels = 0
  const fitted = markers.map((marker) => {
    const index = candleIndex(barTimes, Number(marker.time))
    if (!marker.text || index < 0) return marker
    // Label half-widths past the last candle's centre and before the first one's.
    const overRight = (text: string) => textWidth(text) / 2 + marginPixels - (barTimes.length - 1 - index + 0.5) * barSpacing
    const overLeft = (text: string) => textWidth(text) / 2 + marginPixels - (index + 0.5) * barSpacing
    let text = marker.text
    if (overRight(text) > maxRoomPixels || overLeft(text) > 0) text = shortLabel(text)
    roomPixels = Math.max(roomPixels, Math.ceil(overRight(text)))
    return text === marker.text ? marker : { ...marker, text }
  })
  return { roomPixels: Math.min(roomPixels, Math.ceil(maxRoomPixels)), markers: fitted }
}

/** The index of the candle a time falls in (the last one opening at or before it); -1 before the first. */
function candleIndex(barTimes: number[], time: number): number {
  let low = 0
  let high = barTimes.length - 1
  let found = -1
  while (low <= high) {
    const middle = (low + high) >> 1
    if (barTimes[middle] <= time) {
      found = middle
      low = middle + 1
    } else high = middle - 1
  }
  return found
}
