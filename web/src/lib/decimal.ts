// Decimal strings stay strings: these only format them for display (a Number is made
// for grouping and rounding the shown text, never sent back).

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

export function isDecimal(text: string): boolean {
  return DECIMAL.test(text.trim())
}

/** `value` with at most `maxFraction` fraction digits (rounded half away from zero,
 * on the string's digits), thousands grouped; '' for empty, the text itself if not a number. */
export function formatDecimal(value: string | undefined | null, maxFraction = 8): string {
  if (value === undefined || value === null || value === '') return ''
  const text = value.trim()
  if (!/^[+-]?\d*\.?\d*$/.test(text) || !/\d/.test(text)) {
    if (isDecimal(text)) return formatDecimal(expand(text), maxFraction)
    return text
  }
  const negative = text.startsWith('-')
  const unsigned = text.replace(/^[+-]/, '')
  let [whole, fraction = ''] = unsigned.split('.')
  whole = whole.replace(/^0+(?=\d)/, '') || '0'
  if (fraction.length > maxFraction) {
    const roundUp = fraction.charCodeAt(maxFraction) >= 53 // '5'
    fraction = fraction.slice(0, maxFraction)
    if (roundUp) {
      const digits = (whole + fraction).split('').map(Number)
      let index = digits.length - 1
      while (index >= 0) {
        if (digits[index] === 9) {
          digits[index] = 0
          index -= 1
        } else {
          digits[index] += 1
          break
        }
      }
      let joined = digits.join('')
      if (index < 0) joined = '1' + joined
      whole = joined.slice(0, joined.length - fraction.length)
      fraction = joined.slice(joined.length - fraction.length)
    }
  }
  fraction = fraction.replace(/0+$/, '')
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  const zero = /^0*$/.test(whole + fraction)
  return (negative && !zero ? '-' : '') + grouped + (fraction ? '.' + fraction : '')
}

function expand(text: string): string {
  // Exponent form ("1e-8") into plain digits, without going through a float.
  const match = /^([+-]?)(\d*)\.?(\d*)[eE]([+-]?\d+)$/.exec(text.trim())
  if (!match) return text
  const [, sign, whole, fraction, exponentText] = match
  const exponent = Number(exponentText)
  let digits = whole + fraction
  let point = whole.length + exponent
  if (point < 0) {
    digits = '0'.repeat(-point) + digits
    point = 0
  }
  if (point > digits.length) digits = digits + '0'.repeat(point - digits.length)
  return `${sign}${digits.slice(0, point) || '0'}.${digits.slice(point)}`
}

/** 'pos', 'neg' or '' by the sign of a decimal string (for colouring). */
export function signOf(value: string | undefined | null): 'pos' | 'neg' | '' {
  if (!value) return ''
  const text = value.trim()
  if (text.startsWith('-') && /[1-9]/.test(text)) return 'neg'
  if (/[1-9]/.test(text)) return 'pos'
  return ''
}

/** A fraction (0.1234) as a percentage for display. */
export function formatPercent(value: number | undefined | null, digits = 2): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–'
  return `${(value * 100).toFixed(digits)}%`
}

/** The most fraction digits among decimal strings, trailing zeros not counted, at most
 * `max` (a market's price precision read off its candles: "0.09312" has 5). */
export function fractionDigits(values: string[], max = 8): number {
  let most = 0
  for (const value of values) {
    const fraction = value.trim().split('.')[1]?.replace(/0+$/, '') ?? ''
    if (/^\d*$/.test(fraction)) most = Math.max(most, fraction.length)
  }
  return Math.min(most, max)
}

/** A float for display (analytics arrays: backtests, VaR); `minDigits` pads a column of
 * prices to one width. */
export function formatNumber(value: number | undefined | null, digits = 2, minDigits = 0): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–'
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: Math.min(minDigits, digits) })
}

/** The exact sum of decimal strings ("0.1" + "0.2" is "0.3", never 0.30000000000000004),
 * grouping commas and exponents accepted; '' if any of them is not a number. */
export function sumDecimals(values: string[]): string {
  let total = 0n
  let scale = 0
  for (const value of values) {
    const text = value.trim().replace(/,/g, '')
    const plain = /[eE]/.test(text) ? expand(text) : text
    const match = /^([+-]?)(\d*)\.?(\d*)$/.exec(plain)
    if (!match || !/\d/.test(plain)) return ''
    const [, sign, whole, fraction] = match
    if (fraction.length > scale) {
      total *= 10n ** BigInt(fraction.length - scale)
      scale = fraction.length
    }
    const units = BigInt((whole || '0') + fraction.padEnd(scale, '0'))
    total += sign === '-' ? -units : units
  }
  const negative = total < 0n
  const digits = (negative ? -total : total).toString().padStart(scale + 1, '0')
  const whole = digits.slice(0, digits.length - scale)
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '')
  return (negative ? '-' : '') + whole + (fraction ? '.' + fraction : '')
}
