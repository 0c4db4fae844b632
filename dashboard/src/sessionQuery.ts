// The session list's whole state lives in the page's URL, so a link can be shared and the back button works.
// This module turns that URL into the /v1 request and back. Unit-tested in tests/sessionQuery.test.ts.

export type SortName = "start" | "duration" | "app" | "events" | "errors";
export type Order = "asc" | "desc";
export type HasErrors = "" | "yes" | "no";

export interface SessionListState {
  view: "ended" | "active";
  apps: string[];
  from: string; // UTC day, inclusive ("" = open)
  to: string; // UTC day, inclusive
  minSeconds: string; // as typed; whole seconds
  maxSeconds: string;
  hasErrors: HasErrors;
  idPrefix: string;
  sort: SortName;
  order: Order;
  cursor: string; // keyset: the page after this cursor ...
  before: string; // ... or the page before this one
}

export const SORTS: SortName[] = ["start", "duration", "app", "events", "errors"];
export const DEFAULT_STATE: SessionListState = {
  view: "ended", apps: [], from: "", to: "", minSeconds: "", maxSeconds: "", hasErrors: "", idPrefix: "",
  sort: "start", order: "desc", cursor: "", before: "",
};

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function stateFromSearch(search: string): SessionListState {
  const params = new URLSearchParams(search);
  const sort = params.get("sort") as SortName;
  const order = params.get("order") as Order;
  const hasErrors = params.get("errors");
  return {
    view: params.get("view") === "active" ? "active" : "ended",
    apps: params.getAll("app").filter(Boolean),
    from: DAY.test(params.get("from") ?? "") ? params.get("from")! : "",
    to: DAY.test(params.get("to") ?? "") ? params.get("to")! : "",
    minSeconds: params.get("min") ?? "",
    maxSeconds: params.get("max") ?? "",
    hasErrors: hasErrors === "yes" || hasErrors === "no" ? hasErrors : "",
    idPrefix: params.get("id") ?? "",
    sort: SORTS.includes(sort) ? sort : "start",
    order: order === "asc" ? "asc" : "desc",
    cursor: params.get("cursor") ?? "",
    before: params.get("before") ?? "",
  };
}

/** The page's query string for a state; defaults are left out so links stay short. */
export function searchFromState(state: SessionListState): string {
  const params = new URLSearchParams();
  if (state.view === "active") params.set("view", "active");
  for (const app of state.apps) params.append("app", app);
  if (state.from) params.set("from", state.from);
  if (state.to) params.set("to", state.to);
  if (state.minSeconds) params.set("min", state.minSeconds);
  if (state.maxSeconds) params.set("max", state.maxSeconds);
  if (state.hasErrors) params.set("errors", state.hasErrors);
  if (state.idPrefix) params.set("id", state.idPrefix);
  if (state.sort !== "start") params.set("sort", state.sort);
  if (state.order !== "desc") params.set("order", state.order);
  if (state.cursor) params.set("cursor", state.cursor);
  else if (state.before) params.set("before", state.before);
  const text = params.toString();
  return text ? `?${text}` : "";
}

function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

/** Seconds as typed to milliseconds: "90" -> "90000", "1.5" -> "1500"; anything that is not a number is passed
 * on as typed, so that the API's message about it reaches the field. */
export function secondsToMs(text: string): number | string {
  const trimmed = text.trim();
  return /^\d+(\.\d*)?$|^\.\d+$/.test(trimmed) ? Math.round(Number(trimmed) * 1000) : trimmed;
}

/** The /v1/sessions query for a state. Days are UTC; "to" is inclusive, so it becomes the next day's start. */
export function apiQuery(state: SessionListState, limit: number): URLSearchParams {
  const params = new URLSearchParams();
  for (const app of state.apps) params.append("app", app);
  if (state.from) params.set("started_after", `${state.from}T00:00:00Z`);
  if (state.to) params.set("started_before", `${nextDay(state.to)}T00:00:00Z`);
  if (state.minSeconds.trim()) params.set("min_duration_ms", String(secondsToMs(state.minSeconds)));
  if (state.maxSeconds.trim()) params.set("max_duration_ms", String(secondsToMs(state.maxSeconds)));
  if (state.hasErrors) params.set("has_errors", state.hasErrors === "yes" ? "true" : "false");
  if (state.idPrefix.trim()) params.set("id_prefix", state.idPrefix.trim());
  params.set("sort", state.sort);
  params.set("order", state.order);
  params.set("limit", String(limit));
  if (state.cursor) params.set("cursor", state.cursor);
  else if (state.before) params.set("before", state.before);
  return params;
}

/** Which form field an API error's `parameter` belongs to. */
export const FIELD_OF_PARAMETER: Record<string, keyof SessionListState> = {
  started_after: "from",
  started_before: "to",
  min_duration_ms: "minSeconds",
  max_duration_ms: "maxSeconds",
  id_prefix: "idPrefix",
};
// Any other refused parameter (a stale or edited cursor, say) has no field: the page says so, with a way back.

/** Clicking a column header: the same column flips its order; a new column starts at its natural order
 * (newest, longest, A-Z, most errors first). Paging starts over. */
export function sortBy(state: SessionListState, sort: SortName): SessionListState {
  const order: Order = state.sort === sort ? (state.order === "asc" ? "desc" : "asc") : sort === "app" ? "asc" : "desc";
  return { ...state, sort, order, cursor: "", before: "" };
}

/** A filter change starts paging over. */
export function withFilters(state: SessionListState, filters: Partial<SessionListState>): SessionListState {
  return { ...state, ...filters, cursor: "", before: "" };
}
