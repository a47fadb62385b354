import { describe, expect, it } from 'vitest'
import type { Time } from 'lightweight-charts'
import { fillsToMarkers } from '../src/lib/markers'
import { fitMarkerLabels, shortLabel } from '../src/lib/labels'

describe('fillsToMarkers', () => {
  it('puts each fill on the open time of its candle, in time order, buys below and sells above', () => {
    const markers = fillsToMarkers(
      [
        { side: 'SIDE_SELL', quantity: '0.5', price: '101', time: '2026-01-01T00:03:10Z' },
        { side: 'SIDE_BUY', quantity: '1', price: '100', time: '2026-01-01T00:01:59.500Z' },
      ],
      60,
    )
    const minute = Date.parse('2026-01-01T00:00:00Z') / 1000
    expect(markers.map((marker) => marker.time)).toEqual([minute + 60, minute + 180])
    expect(markers[0]).toMatchObject({ position: 'belowBar', shape: 'arrowUp', text: 'B 1 @ 100' })
    expect(markers[1]).toMatchObject({ position: 'aboveBar', shape: 'arrowDown', text: 'S 0.5 @ 101' })
  })

  it('skips fills without a time', () => {
    expect(fillsToMarkers([{ side: 'SIDE_BUY', quantity: '1', price: '1', time: '' }], 60)).toEqual([])
  })
})

describe('fillsToMarkers with many fills', () => {
  it('labels only side once there are more fills than it labels', () => {
    const fills = Array.from({ length: 3 }, (_, index) => ({ side: 'SIDE_BUY', quantity: '1', price: '2', time: `2026-01-01T00:0${index}:00Z` }))
    expect(fillsToMarkers(fills, 60, 2).map((marker) => marker.text)).toEqual(['B', 'B', 'B'])
    expect(fillsToMarkers(fills, 60, 3)[0].text).toBe('B 1 @ 2')
  })
})

describe('fillsToMarkers merging one candle', () => {
  const minute = Date.parse('2026-01-01T00:05:00Z') / 1000
  const fills = [
    { side: 'SIDE_BUY', quantity: '0.1', price: '100.5', time: '2026-01-01T00:05:01Z' },
    { side: 'SIDE_SELL', quantity: '1', price: '102', time: '2026-01-01T00:05:30Z' },
    { side: 'SIDE_BUY', quantity: '0.2', price: '99', time: '2026-01-01T00:05:59.999Z' },
    { side: 'SIDE_BUY', quantity: '0.3', price: '100.5', time: '2026-01-01T00:05:20Z' },
    { side: 'SIDE_BUY', quantity: '5', price: '98', time: '2026-01-01T00:06:00Z' },
  ]

  it('makes one marker per candle and side, with the count, the exact summed quantity and the price range', () => {
    const markers = fillsToMarkers(fills, 60)
    expect(markers).toHaveLength(3)
    expect(markers[0]).toMatchObject({ time: minute, position: 'belowBar', text: 'B x3 0.6 @ 99–100.5' })
    expect(markers[1]).toMatchObject({ time: minute, position: 'aboveBar', text: 'S 1 @ 102' })
    expect(markers[2]).toMatchObject({ time: minute + 60, position: 'belowBar', text: 'B 5 @ 98' })
  })

  it('shows one price when the merged fills share it', () => {
    const same = fills.filter((fill) => fill.price === '100.5')
    expect(fillsToMarkers(same, 60).map((marker) => marker.text)).toEqual(['B x2 0.4 @ 100.5'])
  })

  it('merges by the candle of the chart timeframe', () => {
    expect(fillsToMarkers(fills, 3600).map((marker) => marker.text)).toEqual(['B x4 5.6 @ 98–100.5', 'S 1 @ 102'])
  })

  it('counts merged markers, not fills, against the label limit, and keeps the count when unlabelled', () => {
    expect(fillsToMarkers(fills, 60, 3)[0].text).toBe('B x3 0.6 @ 99–100.5')
    expect(fillsToMarkers(fills, 60, 2).map((marker) => marker.text)).toEqual(['B x3', 'S', 'B'])
  })
})

describe('fitMarkerLabels', () => {
  // 7 px a character, candles 10 px apart, one a minute from 00:00.
  const width = (text: string) => text.length * 7
  const start = Date.parse('2026-01-01T00:00:00Z') / 1000
  const bars = Array.from({ length: 50 }, (_, index) => start + index * 60)
  const marker = (bar: number, text: string) => ({ time: (start + bar * 60) as Time, position: 'belowBar' as const, color: '#26a69a', shape: 'arrowUp' as const, text })

  it('keeps room right of the last candle for its whole label, no more', () => {
    const label = 'B x3 0.6 @ 99–100.5'
    const fit = fitMarkerLabels([marker(49, label)], bars, 10, width, 300)
    // Half of 133 px, 4 px of margin, less the half candle right of the last centre.
    expect(fit.roomPixels).toBe(66)
    expect(fit.markers[0].text).toBe(label)
    // Past the 60 px the chart kept before: the label was cut by the price scale.
    expect(fit.roomPixels).toBeGreaterThan(60)
  })

  it('keeps no room when the labels end before the last candle', () => {
    expect(fitMarkerLabels([marker(30, 'B 1 @ 100')], bars, 10, width, 300).roomPixels).toBe(0)
    expect(fitMarkerLabels([], bars, 10, width, 300).roomPixels).toBe(0)
    // Two candles back, the label needs only what its candles do not cover.
    expect(fitMarkerLabels([marker(47, 'S 1 @ 102')], bars, 10, width, 300).roomPixels).toBe(11)
  })

  it('shortens a label that needs more room than allowed to side and count', () => {
    const fit = fitMarkerLabels([marker(49, 'B x12 0.123456 @ 64123.45–64200.12')], bars, 10, width, 60)
    expect(fit.markers[0].text).toBe('B x12')
    expect(fit.roomPixels).toBeLessThanOrEqual(60)
    expect(shortLabel('S 1 @ 102')).toBe('S')
  })

  it('shortens a label the left edge would cut', () => {
    const fit = fitMarkerLabels([marker(0, 'B x2 0.4 @ 100.5'), marker(20, 'S 1 @ 102')], bars, 10, width, 300)
    expect(fit.markers.map((each) => each.text)).toEqual(['B x2', 'S 1 @ 102'])
  })

  it('leaves a marker before the first candle alone', () => {
    const early = { ...marker(0, 'B 1 @ 1'), time: (start - 3600) as Time }
    expect(fitMarkerLabels([early], bars, 10, width, 300)).toEqual({ roomPixels: 0, markers: [early] })
  })
})
