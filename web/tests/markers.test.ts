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
