import { describe, expect, it } from "vitest";
import {
  breakdownValueName, formatBound, histogramBins, ratio, rowDropped, rowKey, rowParams, trendDescription,
} from "../src/funnelFigures";

describe("a breakdown row", () => {
  const row = { value: "Chrome", other: false, entered: 10, completed: [8, 5, 5] };
  it("reads its value, the other row as Other and an empty value as (none)", () => {
    expect(breakdownValueName(row)).toBe("Chrome");
    expect(breakdownValueName({ value: null, other: true })).toBe("Other");
    expect(breakdownValueName({ value: "", other: false })).toBe("(none)");
  });
  it("is kept in the URL and listed with the API's parameters, an empty value too", () => {
    expect(rowParams(rowKey(row))).toEqual({ breakdown_value: "Chrome" });
    expect(rowParams(rowKey({ value: "", other: false }))).toEqual({ breakdown_value: "" });
    expect(rowParams(rowKey({ value: null, other: true }))).toEqual({ breakdown_other: "true" });
    expect(rowParams(rowKey({ value: "v:x", other: false }))).toEqual({ breakdown_value: "v:x" });
    expect(rowParams("nonsense")).toBeNull();
  });
  it("drops at each step the sessions that reached the previous one and not this one", () => {
    expect([1, 2, 3].map((step) => rowDropped(row, step))).toEqual([2, 3, 0]);
  });
  it("divides by nothing as null", () => {
    expect(ratio(1, 4)).toBe(0.25);
    expect(ratio(0, 0)).toBeNull();
  });
});

describe("the time-to-convert histogram", () => {
  it("names each bin's range and count", () => {
    const bins = histogramBins({ lower_ms: 1000, bin_ms: 500, counts: [1, 0, 2, 0, 0, 0, 0, 0, 0, 3] });
    expect(bins).toHaveLength(10);
    expect(bins[0]).toEqual({ fromMs: 1000, toMs: 1500, count: 1, description: "1 s – 1.5 s: 1 session" });
    expect(bins[9].description).toBe("5.5 s – 6 s: 3 sessions");
  });
  it("has no bins when it counts nobody", () => {
    expect(histogramBins(null)).toEqual([]);
    expect(histogramBins({ lower_ms: 0, bin_ms: 1, counts: Array(10).fill(0) })).toEqual([]);
  });
});

describe("a trend point", () => {
  it("reads as a day or a week with its conversion", () => {
    expect(trendDescription({ start: "2026-12-01", entered: 40, completed: 5 }, "day")).toBe(
      "2026-12-01: 40 entered, 5 completed (12.5%)");
    expect(trendDescription({ start: "2026-11-30", entered: 0, completed: 0 }, "week")).toBe(
      "week of 2026-11-30: 0 entered, 0 completed");
  });
});

describe("a histogram's bounds", () => {
  it("read in ms when the bins are narrower than 0.1 s, so that no two read the same", () => {
    const bins = histogramBins({ lower_ms: 1200, bin_ms: 1, counts: [5, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
    expect(bins[0].description).toBe("1,200 ms – 1,201 ms: 5 sessions");
    expect(formatBound(90_000, 5_000)).toBe("1 min 30 s");
  });
});
