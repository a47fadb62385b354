import { describe, expect, it } from 'vitest'
import { documentTitle } from '../src/lib/title'

describe('page titles', () => {
  it('name the page before the app, so tabs tell apart', () => {
    expect(documentTitle('Orders & fills')).toBe('Orders & fills · EdgeQuant')
    expect(documentTitle('Risk')).toBe('Risk · EdgeQuant')
  })

  it('fall back to the app name for a route without a title', () => {
    expect(documentTitle(undefined)).toBe('EdgeQuant')
    expect(documentTitle('')).toBe('EdgeQuant')
  })
})
