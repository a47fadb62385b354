import { afterEach, describe, expect, it, vi } from 'vitest'
import { chartTime, formatTime, unixSeconds } from '../src/lib/time'

afterEach(() => vi.unstubAllEnvs())

describe('time zones', () => {
  it('shows a timestamp in UTC whatever the browser zone', () => {
    expect(formatTime('2026-03-29T00:30:00Z', 'utc')).toBe('2026-03-29 00:30:00')
  })

  it('shows it in the browser zone, across a DST change', () => {
    // Node reads TZ again when it changes.
    vi.stubEnv('TZ', 'Europe/Berlin')
    expect(formatTime('2026-03-29T00:30:00Z', 'local')).toBe('2026-03-29 01:30:00')
    expect(formatTime('2026-03-29T01:30:00Z', 'local')).toBe('2026-03-29 03:30:00')
    const seconds = unixSeconds('2026-03-29T01:30:00Z')
    expect(chartTime(seconds, 'local') - seconds).toBe(7200)
    expect(chartTime(seconds, 'utc')).toBe(seconds)
  })

  it('gives nothing for no time', () => {
    expect(formatTime(undefined, 'utc')).toBe('')
    expect(formatTime('garbage', 'local')).toBe('')
  })
})
