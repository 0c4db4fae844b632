// The one way the dashboard talks to Bard: the replayer API's /v1, with the session cookie (same origin).
import type { CleanDefinition, CleanFilter, StepKind } from "./funnelForm";
import type { Signal } from "./sessionFilters";

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly parameter?: string) {
    super(message);
  }
}

let signingOut = false;

/** The person chose to sign out: a request that the cleared cookie now fails must not send them to a sign-in
 * that brings them back here (it would race the sign-out's own navigation to /login, and could win). */
export function signOutStarted(): void {
  signingOut = true;
}

/** Sign in again when the cookie has expired, and come back here afterwards. */
function toLogin(): never {
  if (!signingOut) window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  throw new ApiError(401, "signed out");
}

async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let parameter: string | undefined;
  try {
    const body = await response.json();
    // Bard's one error shape: {error: code, message, field?, dependency?}.
    if (body && typeof body.message === "string") message = body.message;
    if (body && typeof body.field === "string") parameter = body.field;
  } catch {
    // not JSON: a proxy's page; the status line says enough
  }
  if (response.status >= 500 && !message.includes("unavailable")) message = `Bard could not answer: ${message}`;
  return new ApiError(response.status, message, parameter);
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...init });
  } catch {
    throw new ApiError(0, "Bard did not answer: is `bard up` running?");
  }
  if (response.status === 401) toLogin();
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJson<T>(path: string, query?: URLSearchParams, signal?: AbortSignal): Promise<T> {
  const url = query && [...query.keys()].length ? `${path}?${query}` : path;
  return (await request(url, { signal })).json() as Promise<T>;
}

export async function sendJson<T>(method: "POST" | "PUT", path: string, body: unknown): Promise<T> {
  const response = await request(path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json() as Promise<T>;
}

export async function remove(path: string): Promise<void> {
  await request(path, { method: "DELETE" });
}

// --- the /v1 shapes the screens read ---------------------------------------------------------------------------

export interface Session {
  session_id: string;
  app_name: string;
  started_at: string;
  ended_at?: string;
  last_event_at?: string;
  duration_ms: number;
  event_count: number;
  error_count: number;
  status?: "ended" | "active";
  expires_at?: string;
  // Ended sessions only; "" and 0 for sessions recorded before Bard kept them (see hasMetadata in format.ts).
  browser?: string;
  browser_major?: number;
  os?: string;
  device_type?: "desktop" | "mobile" | "tablet" | "bot" | "";
  country?: string; // ISO 3166-1 alpha-2 of the client address's registry country; "" unknown
  viewport?: { width: number; height: number };
  entry_url?: string;
  entry_path?: string;
  exit_path?: string;
  page_count?: number;
  click_count?: number;
  rage_click_count?: number;
  dead_click_count?: number;
  error_click_count?: number;
}

/** The count of each behaviour signal in a session's row. */
export const SIGNAL_COUNTS: Record<Signal, "rage_click_count" | "dead_click_count" | "error_click_count"> = {
  rage_click: "rage_click_count", dead_click: "dead_click_count", error_click: "error_click_count",
};

export interface SessionPage {
  sessions: Session[];
  next_cursor: string | null;
  prev_cursor?: string | null;
}

export interface Marker {
  kind: "click" | "custom" | "error" | Signal;
  at: string;
  at_ms: number;
  offset_ms: number;
  label: string | null;
  x: number | null;
  y: number | null;
}

export interface Markers {
  session_id: string;
  first_event_at: string | null;
  markers: Marker[];
  truncated?: boolean;
}

export interface StoredFunnel {
  id: number;
  name: string;
  filters: CleanFilter[];
  steps: { kind: StepKind; label: string }[];
  window_seconds?: number | null;
  order?: CleanDefinition["order"]; // left out when "ordered"
  exclusions?: CleanDefinition["exclusions"]; // left out when none
  breakdown?: CleanDefinition["breakdown"]; // left out when none
  created_at: string;
  updated_at: string;
}

export interface StepResult {
  number: number;
  kind: StepKind;
  label: string;
  completed: number;
  dropped: number;
  conversion_from_start: number | null;
  conversion_from_previous: number | null;
  median_ms_from_previous: number | null;
  p90_ms_from_previous?: number | null;
  median_ms_from_start?: number | null;
  p90_ms_from_start?: number | null;
  /** Bin i counts the sessions that took [lower_ms + i * bin_ms, lower_ms + (i + 1) * bin_ms) ms from step 1. */
  time_to_convert?: Histogram | null;
}

export interface Histogram {
  lower_ms: number;
  bin_ms: number;
  counts: number[];
}

export interface TrendPoint {
  start: string; // YYYY-MM-DD, the day or the week's first day
  entered: number;
  completed: number; // reached every step
}

/** One breakdown row: a value (the other row's is null), its entered sessions and its completed per step. */
export interface BreakdownRow {
  value: string | null;
  other: boolean;
  entered: number;
  completed: number[];
}

export interface FunnelResults {
  funnel: StoredFunnel;
  entered: number; // not excluded
  excluded?: number;
  steps: StepResult[];
  trend?: { period: "day" | "week"; points: TrendPoint[] };
  breakdown?: BreakdownRow[] | null;
}

export interface StepSession {
  session_id: string;
  level: number;
  reached_at: string[];
  reached_at_ms: number[];
}

export interface StepSessions {
  session_ids: string[];
  sessions: StepSession[];
  next_after: string | null;
}
