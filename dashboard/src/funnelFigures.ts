// A funnel's results as they read on screen: breakdown rows, time-to-convert bins, trend points. Pure: unit-tested
// in tests/funnelFigures.test.ts.
import type { BreakdownRow, Histogram, TrendPoint } from "./api";
import { formatGap } from "./format";

/** How a breakdown row's value reads: the other row is "Other", a session that did not say (``""``) "(none)". */
export function breakdownValueName(row: Pick<BreakdownRow, "value" | "other">): string {
  if (row.other || row.value === null) return "Other";
  return row.value === "" ? "(none)" : row.value;
}

/** A breakdown row as the results page's URL keeps it: ``other``, or ``v:`` and the value (``v:`` alone for ""). */
export function rowKey(row: Pick<BreakdownRow, "value" | "other">): string {
  return row.other || row.value === null ? "other" : `v:${row.value}`;
}

/** The step listing's parameters for the row a ``rowKey`` names; null for a key that names no row. */
export function rowParams(key: string): Record<string, string> | null {
  if (key === "other") return { breakdown_other: "true" };
  if (key.startsWith("v:")) return { breakdown_value: key.slice(2) };
  return null;
}

/** The sessions of a row that reached step ``step - 1`` (every entered session for step 1) but not ``step``. */
export function rowDropped(row: BreakdownRow, step: number): number {
  const before = step === 1 ? row.entered : row.completed[step - 2] ?? 0;
  return Math.max(0, before - (row.completed[step - 1] ?? 0));
}

/** ``part`` of ``whole`` as a ratio, null when there is nothing to divide by (formatPercent shows a dash). */
export function ratio(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

export interface Bin {
  fromMs: number;
  toMs: number;
  count: number;
  /** "1.2 s – 2.4 s: 3 sessions" */
  description: string;
}

const sessions = (n: number) => `${n.toLocaleString("en-US")} session${n === 1 ? "" : "s"}`;

/** A bound of a histogram's bins in words, as precise as its bins are narrow: bins under 0.1 s read in ms
 * ("1,200 ms"), so that two bounds never read the same. */
export function formatBound(ms: number, binMs: number): string {
  return binMs < 100 ? `${Math.round(ms).toLocaleString("en-US")} ms` : formatGap(ms);
}

/** The histogram's bins, each with its range in words; none for a histogram that counts nobody. */
export function histogramBins(histogram: Histogram | null | undefined): Bin[] {
  if (!histogram || !histogram.counts.some((n) => n > 0)) return [];
  const bound = (ms: number) => formatBound(ms, histogram.bin_ms);
  return histogram.counts.map((count, i) => {
    const fromMs = histogram.lower_ms + i * histogram.bin_ms;
    const toMs = fromMs + histogram.bin_ms;
    return { fromMs, toMs, count, description: `${bound(fromMs)} – ${bound(toMs)}: ${sessions(count)}` };
  });
}

/** A trend point in words: "2026-12-01: 40 entered, 5 completed (12.5%)"; a week reads "week of 2026-11-30". */
export function trendDescription(point: TrendPoint, period: "day" | "week"): string {
  const share = ratio(point.completed, point.entered);
  const percent = share === null ? "" : ` (${(share * 100).toFixed(1)}%)`;
  return `${period === "week" ? "week of " : ""}${point.start}: ${point.entered.toLocaleString("en-US")} entered, `
    + `${point.completed.toLocaleString("en-US")} completed${percent}`;
}
