// Every call goes to the gateway on this origin with `Authorization: Bearer <token>`;
// the token is never put in a URL. Kept in sessionStorage, or localStorage when the
// user asks to be remembered on this device.
import { NdjsonParser, type StreamStatus } from './ndjson'

const KEY = 'edgequant.token'

export function storedToken(): string {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY) ?? ''
}

export function storeToken(token: string, remember: boolean): void {
  forgetToken()
  ;(remember ? localStorage : sessionStorage).setItem(KEY, token)
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY)
  localStorage.removeItem(KEY)
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string = '',
    readonly violations: { field: string; description: string }[] = [],
  ) {
    super(message)
  }
}

/** A failed call as a page shows it: the message, then each field violation; the stable
 * reason first where the page names it. */
export function failureText(failure: unknown, withReason = false): string {
  if (failure instanceof ApiError) {
    const fields = failure.violations.map((violation) => `${violation.field}: ${violation.description}`).join('; ')
    return [withReason ? failure.reason : '', failure.message, fields].filter(Boolean).join(' — ')
  }
  return failure instanceof Error ? failure.message : String(failure)
}

type Query = Record<string, string | number | boolean | string[] | undefined | null>

export function withQuery(path: string, query?: Query): string {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue
    if (Array.isArray(value)) value.forEach((each) => params.append(key, each))
    else params.append(key, String(value))
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

let onUnauthorized: () => void = () => {}
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler
}

function headers(extra?: Record<string, string>): Record<string, string> {
  const token = storedToken()
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra }
}

export function errorOf(status: number, body: unknown): ApiError {
  const statusBody = (body ?? {}) as StreamStatus & { details?: Record<string, unknown>[] }
  let reason = ''
  let violations: { field: string; description: string }[] = []
  for (const detail of statusBody.details ?? []) {
    const info = detail as { reason?: string; fieldViolations?: { field: string; description: string }[] }
    if (info.reason) reason = info.reason
    if (info.fieldViolations) violations = info.fieldViolations
  }
  return new ApiError(status, statusBody.message || `HTTP ${status}`, reason, violations)
}

export async function call<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const response = await fetch(withQuery(path, query), {
    method,
    headers: headers(body === undefined ? undefined : { 'Content-Type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  let parsed: unknown = null
  try {
    parsed = text ? JSON.parse(text) : {}
  } catch {
    parsed = { message: text }
  }
  if (!response.ok) {
    if (response.status === 401) onUnauthorized()
    throw errorOf(response.status, parsed)
  }
  return parsed as T
}

export const api = {
  get: <T>(path: string, query?: Query) => call<T>('GET', path, undefined, query),
  post: <T>(path: string, body: unknown = {}, query?: Query) => call<T>('POST', path, body, query),
  put: <T>(path: string, body: unknown) => call<T>('PUT', path, body),
  patch: <T>(path: string, body: unknown, query?: Query) => call<T>('PATCH', path, body, query),
  delete: <T>(path: string) => call<T>('DELETE', path),
}

export interface StreamHandle {
  stop(): void
}

export interface StreamOptions {
  /** Called on each (re)connection, before the first message. */
  onOpen?: () => void
  onError?: (message: string) => void
  /** The path of the next connection (a resumable stream passes its cursor). */
  nextPath?: () => string
}

/** A jittered exponential backoff: 0.5 s doubling to 30 s, each 50-100 % of it. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** attempt)
  return base / 2 + (random() * base) / 2
}

/** A server stream over NDJSON, reconnected with jittered backoff until `stop()`. */
export function stream<T>(path: string, onMessage: (message: T) => void, options: StreamOptions = {}): StreamHandle {
  let stopped = false
  let controller: AbortController | null = null
  let attempt = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const connect = async () => {
    if (stopped) return
    controller = new AbortController()
    const url = options.nextPath ? options.nextPath() : path
    try {
      const response = await fetch(url, {
        headers: headers({ Accept: 'application/x-ndjson' }),
        signal: controller.signal,
      })
      if (!response.ok || !response.body) {
        let body: unknown = null
        try {
          body = await response.json()
        } catch {
          body = null
        }
        if (response.status === 401) onUnauthorized()
        throw errorOf(response.status, body)
      }
      options.onOpen?.()
      const reader = response.body.getReader()
      const parser = new NdjsonParser<T>()
      for (;;) {
        const { done, value } = await reader.read()
        const events = done ? parser.end() : parser.push(value)
        for (const event of events) {
          if ('result' in event) {
            attempt = 0
            onMessage(event.result)
          } else {
            throw new Error(event.error.message)
          }
        }
        if (done) break
      }
    } catch (error) {
      if (stopped) return
      options.onError?.(error instanceof Error ? error.message : String(error))
    }
    if (stopped) return
    timer = setTimeout(connect, backoffDelay(attempt))
    attempt = Math.min(attempt + 1, 6)
  }
  void connect()
  return {
    stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      controller?.abort()
    },
  }
}

/** Every page of a paged list, up to `limit` items. */
export async function allPages<T>(
  path: string,
  field: string,
  query: Query = {},
  limit = 1000,
): Promise<T[]> {
  const items: T[] = []
  let token = ''
  do {
    const page = await api.get<Record<string, unknown>>(path, { ...query, page_size: 200, page_token: token })
    items.push(...((page[field] as T[]) ?? []))
    token = (page.nextPageToken as string) ?? ''
  } while (token && items.length < limit)
  return items
}
