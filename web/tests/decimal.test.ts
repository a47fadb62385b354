import { describe, expect, it } from 'vitest'
import { formatDecimal, formatNumber, fractionDigits, signOf, sumDecimals } from '../src/lib/decimal'
import { orderBody, toCsv } from '../src/lib/orders'

describe('formatDecimal', () => {
  it('rounds on the digits of the string, never through a float', () => {
    expect(formatDecimal('0.1000000000000000055511151231257827', 20)).toBe('0.10000000000000000555')
    expect(formatDecimal('12345678901234567890.123456789', 4)).toBe('12,345,678,901,234,567,890.1235')
    expect(formatDecimal('9.9999', 2)).toBe('10')
    expect(formatDecimal('-0.004', 2)).toBe('0')
    expect(formatDecimal('-1234.5', 2)).toBe('-1,234.5')
    expect(formatDecimal('0.00125')).toBe('0.00125')
  })

  it('expands exponents and leaves non-numbers as they are', () => {
    expect(formatDecimal('1e-8', 10)).toBe('0.00000001')
    expect(formatDecimal('1.5E3')).toBe('1,500')
    expect(formatDecimal('')).toBe('')
    expect(formatDecimal('NaN')).toBe('NaN')
  })

  it('gives the sign of a decimal string', () => {
    expect(signOf('-0.0001')).toBe('neg')
    expect(signOf('-0.000')).toBe('')
    expect(signOf('3')).toBe('pos')
  })
})

describe('orderBody', () => {
  it('sends exactly what the user typed', () => {
    const body = orderBody(
      { venue: 'paper', symbol: 'BTC/USDT', side: 'SIDE_BUY', type: 'ORDER_TYPE_LIMIT', quantity: '0.00100000', price: '25000.10', postOnly: true, reduceOnly: false },
      'ui-1',
    )
    expect(body.quantity).toBe('0.00100000')
    expect(body.price).toBe('25000.10')
    expect(body.post_only).toBe(true)
  })

  it('leaves price and post-only out of a market order', () => {
    const body = orderBody(
      { venue: 'paper', symbol: 'BTC/USDT', side: 'SIDE_SELL', type: 'ORDER_TYPE_MARKET', quantity: '1', price: '5', postOnly: true, reduceOnly: true },
      'ui-2',
    )
    expect(body).not.toHaveProperty('price')
    expect(body).not.toHaveProperty('post_only')
    expect(body.reduce_only).toBe(true)
  })
})

describe('toCsv', () => {
  it('quotes what needs quoting and keeps decimal strings as they are', () => {
    const csv = toCsv([{ symbol: 'BTC/USDT', price: '25000.10', note: 'a "b", c' }, { symbol: 'ETH/USDT' }], ['symbol', 'price', 'note'])
    expect(csv).toBe('symbol,price,note\r\nBTC/USDT,25000.10,"a ""b"", c"\r\nETH/USDT,,\r\n')
  })

  it('writes a list, such as the reject reasons of an order, as one space-separated cell', () => {
    const csv = toCsv([{ status: 'ORDER_STATUS_REJECTED', rejectReasons: ['RISK_MAX_NOTIONAL', 'INSUFFICIENT_FUNDS'] }], ['status', 'rejectReasons'])
    expect(csv).toBe('status,rejectReasons\r\nORDER_STATUS_REJECTED,RISK_MAX_NOTIONAL INSUFFICIENT_FUNDS\r\n')
  })
})

describe('sumDecimals', () => {
  it('adds on the digits, never through a float', () => {
    expect(sumDecimals(['0.1', '0.2'])).toBe('0.3')
    expect(sumDecimals(['12345678901234567890.1', '0.00000000000000000001'])).toBe('12345678901234567890.10000000000000000001')
    expect(sumDecimals(['1.50', '2.50'])).toBe('4')
    expect(sumDecimals(['-0.5', '0.2'])).toBe('-0.3')
    expect(sumDecimals(['1,000.5', '1e-3'])).toBe('1000.501')
    expect(sumDecimals(['.5', '7'])).toBe('7.5')
  })

  it('gives nothing for a value that is not a number', () => {
    expect(sumDecimals(['1', 'abc'])).toBe('')
    expect(sumDecimals(['1', ''])).toBe('')
  })
})

describe('fractionDigits', () => {
  it('reads a market precision off its prices, trailing zeros not counted', () => {
    expect(fractionDigits(['0.09312', '0.0931', '0.1'])).toBe(5)
    expect(fractionDigits(['61829.81', '61830.00', '61830'])).toBe(2)
    expect(fractionDigits(['1.000000001'], 8)).toBe(8)
    expect(fractionDigits([])).toBe(0)
  })
})

describe('formatNumber', () => {
  it('pads a column of prices to one width when asked', () => {
    expect(formatNumber(0.0888, 8, 8)).toBe('0.08880000')
    expect(formatNumber(0.08871131, 8, 8)).toBe('0.08871131')
    expect(formatNumber(1234.5)).toBe('1,234.5')
  })
})
