// NDJSON as the gateway frames streams (grpc-gateway's framing): one {"result": message}
// per line, {"error": status} last if the stream failed, blank lines as keep-alives.
// Chunks split anywhere, even inside a line or a multi-byte character.

export interface StreamStatus {
  code: number
  message: string
  details?: unknown[]
}

export type StreamEvent<T> = { result: T } | { error: StreamStatus }

export class NdjsonParser<T = unknown> {
  private buffer = ''
  private readonly decoder = new TextDecoder()

  /** The complete events in `chunk` (bytes or text) and what came before it. */
  push(chunk: Uint8Array | string): StreamEvent<T>[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true })
    const events: StreamEvent<T>[] = []
    let newline = this.buffer.indexOf('\n')
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline)
      this.buffer = this.buffer.slice(newline + 1)
      const event = parseLine<T>(line)
      if (event) events.push(event)
      newline = this.buffer.indexOf('\n')
    }
    return events
  }

  /** The last line if the stream ended without a newline. */
  end(): StreamEvent<T>[] {
    const rest = this.buffer + this.decoder.decode()
    this.buffer = ''
    const event = parseLine<T>(rest)
    return event ? [event] : []
  }
}

function parseLine<T>(line: string): StreamEvent<T> | null {
  const text = line.trim()
  if (!text) return null
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { error: { code: 13, message: `unreadable stream line: ${text.slice(0, 80)}` } }
  }
  if (value && typeof value === 'object') {
    if ('error' in value) return { error: (value as { error: StreamStatus }).error }
    if ('result' in value) return { result: (value as { result: T }).result }
  }
  return { error: { code: 13, message: 'stream line without result or error' } }
}
