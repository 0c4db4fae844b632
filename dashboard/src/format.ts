// How numbers and moments read on screen. Pure functions: unit-tested in tests/format.test.ts.

/** Milliseconds as h:mm:ss (hours are not capped: a 30-hour session reads 30:00:00). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

/** A player offset as m:ss (or h:mm:ss past an hour). */
export function formatOffset(ms: number): string {
  const text = formatDuration(ms);
  return text.startsWith("0:") ? text.slice(2).replace(/^0(\d:)/, "$1") : text;
}

/** An ISO instant as "2026-01-31 14:05:09 UTC": one time zone for everyone who shares a link. */
export function formatInstant(iso: string | null | undefined): string {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** A ratio 0..1 as a percentage with one decimal; null (nothing to divide by) as a dash. */
export function formatPercent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  return `${(ratio * 100).toFixed(1)}%`;
}

/** A time gap in words: 850 ms, 12.5 s, 3 min 20 s, 2 h 5 min. */
export function formatGap(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, "")} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) {
    const seconds = Math.round((ms % 60_000) / 1000);
    return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

interface Described {
  browser?: string; browser_major?: number; os?: string; device_type?: string; entry_path?: string;
  page_count?: number; country?: string;
}

/** Whether a session row carries Bard's client and page details: sessions recorded before Bard kept them read ""
 * and 0 everywhere, and show a dash rather than counts of 0. */
export function hasMetadata(session: Described): boolean {
  return Boolean(session.browser || session.os || session.device_type || session.entry_path || session.page_count
                 || session.country);
}

/** The client in a few words: "Chrome 120 · Windows · desktop"; what is unknown is left out, all unknown is a dash. */
export function formatClient(session: Described): string {
  const browser = session.browser ? `${session.browser}${session.browser_major ? ` ${session.browser_major}` : ""}` : "";
  return [browser, session.os, session.device_type].filter(Boolean).join(" · ") || "–";
}

// The browser's own list of region names (no table in the bundle); a browser without it shows the codes.
const REGIONS = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

/** A country's English name from its ISO 3166-1 alpha-2 code ("DE" -> "Germany"); the code when none is known. */
export function countryName(code: string): string {
  try {
    return REGIONS?.of(code) ?? code;
  } catch {
    return code; // not a well-formed region code
  }
}

/** A session's country as "Germany (DE)"; unknown ("") as a dash. */
export function formatCountry(code: string | undefined): string {
  if (!code) return "–";
  const name = countryName(code);
  return name === code ? code : `${name} (${code})`;
}

/** A viewport as "1280 × 720"; unknown (0) as a dash. */
export function formatViewport(viewport: { width: number; height: number } | undefined): string {
  return viewport && viewport.width && viewport.height ? `${viewport.width} × ${viewport.height}` : "–";
}
