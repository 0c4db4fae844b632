import { describe, expect, it } from "vitest";
import {
  countryName, formatClient, formatCountry, formatDuration, formatGap, formatInstant, formatOffset, formatPercent,
  formatViewport, hasMetadata,
} from "../src/format";

describe("formatDuration", () => {
  it.each([
    [0, "0:00:00"], [999, "0:00:00"], [1000, "0:00:01"], [61_000, "0:01:01"], [3_600_000, "1:00:00"],
    [30 * 3_600_000 + 5_000, "30:00:05"], [-5, "0:00:00"], [Number.NaN, "0:00:00"],
  ])("%d ms is %s", (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe("formatOffset", () => {
  it.each([[0, "0:00"], [9_000, "0:09"], [75_000, "1:15"], [600_000, "10:00"], [3_725_000, "1:02:05"]])(
    "%d ms is %s", (ms, text) => expect(formatOffset(ms)).toBe(text));
});

describe("formatInstant", () => {
  it("writes UTC to the second", () => expect(formatInstant("2026-01-31T14:05:09.123Z")).toBe("2026-01-31 14:05:09 UTC"));
  it("dashes a missing value", () => expect(formatInstant(null)).toBe("–"));
  it("keeps what it cannot read", () => expect(formatInstant("soon")).toBe("soon"));
});

describe("formatPercent and formatGap", () => {
  it.each([[0.5, "50.0%"], [1, "100.0%"], [0.12345, "12.3%"], [null, "–"]])("%s is %s",
    (ratio, text) => expect(formatPercent(ratio)).toBe(text));
  it.each([[850, "850 ms"], [12_500, "12.5 s"], [2_000, "2 s"], [200_000, "3 min 20 s"], [180_000, "3 min"],
           [7_500_000, "2 h 5 min"], [null, "–"]])("%s ms reads %s", (ms, text) => expect(formatGap(ms)).toBe(text));
});

describe("a session's client and page details", () => {
  const old = { browser: "", browser_major: 0, os: "", device_type: "", entry_path: "", page_count: 0 };
  it.each([
    [{ browser: "Chrome", browser_major: 120, os: "Windows", device_type: "desktop" }, "Chrome 120 · Windows · desktop"],
    [{ browser: "Firefox", browser_major: 0, os: "", device_type: "mobile" }, "Firefox · mobile"],
    [{ browser: "", browser_major: 0, os: "iOS", device_type: "" }, "iOS"],
    [old, "–"], [{}, "–"],
  ])("%o reads %s", (session, text) => expect(formatClient(session)).toBe(text));
  it("tells a session recorded before the details were kept", () => {
    expect(hasMetadata(old)).toBe(false);
    expect(hasMetadata({})).toBe(false);
    expect(hasMetadata({ ...old, entry_path: "/" })).toBe(true);
    expect(hasMetadata({ ...old, page_count: 1 })).toBe(true);
  });
  it("names a country by its code, and shows an unknown one as a dash", () => {
    expect([countryName("DE"), countryName("JP"), countryName("US")]).toEqual(["Germany", "Japan", "United States"]);
    expect(formatCountry("BR")).toBe("Brazil (BR)");
    expect(formatCountry("")).toBe("–");
    expect(formatCountry(undefined)).toBe("–");
    expect(countryName("not a code")).toBe("not a code");
    expect(hasMetadata({ ...old, country: "DE" })).toBe(true);
  });
  it("reads a viewport, and an unknown one as a dash", () => {
    expect(formatViewport({ width: 1280, height: 720 })).toBe("1280 × 720");
    expect(formatViewport({ width: 0, height: 0 })).toBe("–");
    expect(formatViewport(undefined)).toBe("–");
  });
});
