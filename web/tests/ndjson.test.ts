import { describe, expect, it } from 'vitest'
import { NdjsonParser } from '../src/lib/ndjson'

describe('NdjsonParser', () => {
  it('joins a message split across chunks, even inside a multi-byte character', () => {
    const parser = new NdjsonParser<{ price: string }>()
    const bytes = new TextEncoder().encode('{"result":{"price":"1.5","note":"é"}}\n')
    const cut = bytes.indexOf(0xc3) + 1 // between the two bytes of "é"
    expect(parser.push(bytes.slice(0, 5))).toEqual([])
    expect(parser.push(bytes.slice(5, cut))).toEqual([])
    expect(parser.push(bytes.slice(cut))).toEqual([{ result: { price: '1.5', note: 'é' } }])
  })

  it('gives several messages of one chunk in order and skips keep-alive blank lines', () => {
    const parser = new NdjsonParser()
    expect(parser.push('{"result":1}\n\n{"result":2}\n{"res')).toEqual([{ result: 1 }, { result: 2 }])
    expect(parser.push('ult":3}\n')).toEqual([{ result: 3 }])
  })

  it('reports the error line the gateway ends a failed stream with', () => {
    const parser = new NdjsonParser()
    const events = parser.push('{"result":{"a":1}}\n{"error":{"code":14,"message":"the gateway is stopping; reconnect"}}\n')
    expect(events[1]).toEqual({ error: { code: 14, message: 'the gateway is stopping; reconnect' } })
  })

  it('turns an unreadable line into an error, and reads a last line without newline at the end', () => {
    const parser = new NdjsonParser()
    expect(parser.push('not json\n')[0]).toHaveProperty('error')
    expect(parser.push('{"result":"x"}')).toEqual([])
    expect(parser.end()).toEqual([{ result: 'x' }])
  })
})
