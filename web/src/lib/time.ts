export type Zone = 'utc' | 'local'

/** Seconds since the epoch of an RFC 3339 timestamp (the JSON of google.protobuf.Timestamp). */
export function unixSeconds(timestamp: string): number {
  return Math.floor(Date.parse(timestamp) / 1000)
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0')
}

/** "2026-11-30 03:54:50" in UTC or the browser's zone; '' for no time. */
export function formatTime(timestamp: string | undefined | null, zone: Zone): string {
  if (!timestamp) return ''
  const date = new Date(timestamp)
  if (Number.isNaN(date.getTime())) return ''
  const utc = zone === 'utc'
  const parts = utc
    ? [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()]
    : [date.getFullYear(), date.getMonth() + 1, date.getDate(), date.getHours(), date.getMinutes(), date.getSeconds()]
  const [y, mo, d, h, mi, s] = parts
  return `${y}-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)}:${pad(s)}`
}

/** The chart's time axis is in UTC seconds; shifted by the zone's offset for local display. */
export function chartTime(seconds: number, zone: Zone): number {
  if (zone === 'utc') return seconds
  return seconds - new Date(seconds * 1000).getTimezoneOffset() * 60
}

/** RFC 3339 of a date: for start_time/end_time query parameters. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
