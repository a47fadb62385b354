import { describe, expect, it } from 'vitest'
import { fillsToMarkers } from '../src/lib/markers'

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
