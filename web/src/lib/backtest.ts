export interface ParameterSpec {
  name: string
  type: string
  description: string
  defaultValue: number
  minValue: number
  maxValue: number
}

export interface Strategy {
  name: string
  description: string
  engine: string
  parameters?: ParameterSpec[]
}

export interface Metrics {
  totalReturn: number
  cagr: number
  sharpeRatio: number
  sortinoRatio: number
  calmarRatio: number
  maxDrawdown: number
  winRate: number
  profitFactor: number
  trades: string
  finalEquity: number
  buyAndHoldReturn: number
}

export interface Job {
  jobId: string
  state: string
  progress: number
  message: string
  strategy: string
  datasetId: string
  runsTotal: number
  runsDone: number
  error: string
  submitTime?: string
}

export interface TradeRow {
  side: string
  entryTime: string
  exitTime: string
  quantity: number
  entryPrice: number
  exitPrice: number
  pnl: number
  returnFraction: number
  exitReason: string
}

export interface RunSummary {
  runIndex: number
  parameters: Record<string, number>
  metrics: Metrics
}

export interface Result {
  jobId: string
  runIndex: number
  strategy: string
  parameters: Record<string, number>
  metrics: Metrics
  trades?: TradeRow[]
  equityCurve?: { time: string; equity: number }[]
  ranking?: RunSummary[]
}

export const FINISHED = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED']

/** A sweep grid from the form's text: "5, 10, 20" → [5, 10, 20]; a single value is no grid. */
export function parseValues(text: string): number[] {
  return text
    .split(/[,\s]+/)
    .filter(Boolean)
    .map(Number)
    .filter((value) => Number.isFinite(value))
}

/** Heatmap cells of a two-parameter sweep: the metric at each (x, y), null where no run. */
export function heatmap(ranking: RunSummary[], x: string, y: string, metric: keyof Metrics) {
  const xs = [...new Set(ranking.map((run) => run.parameters[x]))].sort((a, b) => a - b)
  const ys = [...new Set(ranking.map((run) => run.parameters[y]))].sort((a, b) => a - b)
  const cells = new Map<string, number>()
  for (const run of ranking) cells.set(`${run.parameters[x]}|${run.parameters[y]}`, Number(run.metrics?.[metric] ?? NaN))
  const values = [...cells.values()].filter(Number.isFinite)
  const min = Math.min(...values)
  const max = Math.max(...values)
  return {
    xs,
    ys,
    value: (a: number, b: number) => cells.get(`${a}|${b}`) ?? null,
    // 0..1 of the range, for the cell's colour.
    scale: (value: number | null) => (value === null || max === min ? 0.5 : (value - min) / (max - min)),
  }
}
