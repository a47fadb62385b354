// Parts of the API that arrive with other services (the strategy runner): the UI offers
// their pages only when this gateway's OpenAPI document has their routes.
let paths: Promise<Set<string>> | null = null

export function apiPaths(): Promise<Set<string>> {
  paths ??= fetch('/openapi.json')
    .then((response) => response.json())
    .then((document: { paths?: Record<string, unknown> }) => new Set(Object.keys(document.paths ?? {})))
    .catch(() => new Set<string>())
  return paths
}

export async function hasRunners(): Promise<boolean> {
  return (await apiPaths()).has('/v1/runners')
}

/** ExchangeService.StreamCandles (closed candles as they close), from the strategy runner's work. */
export async function hasStreamCandles(): Promise<boolean> {
  return [...(await apiPaths())].some((path) => path.includes('/candles/') && path.endsWith(':stream'))
}
