// The session list's whole state lives in the page's URL, so a link can be shared and the back button works.
// This module turns that URL into the /v1 request and back. Unit-tested in tests/sessionQuery.test.ts.
import { EMPTY_FILTERS, SIGNALS, SIGNAL_FIELDS, yesNo, type FilterValues, type Signal } from "./sessionFilters";

export type SortName = "start" | "duration" | "app" | "events" | "errors" | "pages" | "clicks";
export type Order = "asc" | "desc";

export interface SessionListState extends FilterValues {
  view: "ended" | "active";
  idPrefix: string;
  sort: SortName;
  order: Order;
  cursor: string; // keyset: the page after this cursor ...
  before: string; // ... or the page before this one
}

export const SORTS: SortName[] = ["start", "duration", "app", "events", "errors", "pages", "clicks"];
export const DEFAULT_STATE: SessionListState = {
  ...EMPTY_FILTERS, view: "ended", idPrefix: "", sort: "start", order: "desc", cursor: "", before: "",
};

const DAY = /^\d{4}-\d{2}-\d{2}$/;

// Each field's name in the page's query string; a list repeats its name (?browser=Chrome&browser=Firefox).
const URL_NAMES = {
  apps: "app", from: "from", to: "to", minSeconds: "min", maxSeconds: "max", hasErrors: "errors", browsers: "browser",
  oses: "os", devices: "device", countries: "country", entryPath: "entry", minPages: "min_pages", maxPages: "max_pages", rageClicks: "rage",
  deadClicks: "dead", errorClicks: "error_clicks", idPrefix: "id",
} satisfies Partial<Record<keyof SessionListState, string>>;

export function stateFromSearch(search: string): SessionListState {
  const params = new URLSearchParams(search);
  const list = (field: keyof typeof URL_NAMES) => params.getAll(URL_NAMES[field]).filter(Boolean);
  const text = (field: keyof typeof URL_NAMES) => params.get(URL_NAMES[field]) ?? "";
  const day = (field: "from" | "to") => (DAY.test(text(field)) ? text(field) : "");
  const choice = (field: keyof typeof URL_NAMES) => yesNo(params.get(URL_NAMES[field]));
  const sort = params.get("sort") as SortName;
  return {
    view: params.get("view") === "active" ? "active" : "ended",
    apps: list("apps"), from: day("from"), to: day("to"), minSeconds: text("minSeconds"),
    maxSeconds: text("maxSeconds"), hasErrors: choice("hasErrors"), browsers: list("browsers"), oses: list("oses"),
    devices: list("devices"), countries: list("countries"), entryPath: text("entryPath"), minPages: text("minPages"), maxPages: text("maxPages"),
    rageClicks: choice("rageClicks"), deadClicks: choice("deadClicks"), errorClicks: choice("errorClicks"),
    idPrefix: text("idPrefix"),
    sort: SORTS.includes(sort) ? sort : "start",
    order: params.get("order") === "asc" ? "asc" : "desc",
    cursor: params.get("cursor") ?? "",
    before: params.get("before") ?? "",
  };
}

/** The page's query string for a state; defaults are left out so links stay short. */
export function searchFromState(state: SessionListState): string {
  const params = new URLSearchParams();
  if (state.view === "active") params.set("view", "active");
  for (const [field, name] of Object.entries(URL_NAMES)) {
    const value = state[field as keyof typeof URL_NAMES];
    for (const one of Array.isArray(value) ? value : [value]) if (one) params.append(name, one);
  }
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
  for (const browser of state.browsers) params.append("browser", browser);
  for (const os of state.oses) params.append("os", os);
  for (const device of state.devices) params.append("device_type", device);
  for (const country of state.countries) params.append("country", country);
  if (state.entryPath.trim()) params.set("entry_path", state.entryPath.trim());
  if (state.minPages.trim()) params.set("min_pages", state.minPages.trim());
  if (state.maxPages.trim()) params.set("max_pages", state.maxPages.trim());
  for (const signal of SIGNALS) {
    const choice = state[SIGNAL_FIELDS[signal]];
    if (choice) params.set(SIGNAL_PARAMETERS[signal], choice === "yes" ? "true" : "false");
  }
  if (state.idPrefix.trim()) params.set("id_prefix", state.idPrefix.trim());
  params.set("sort", state.sort);
  params.set("order", state.order);
  params.set("limit", String(limit));
  if (state.cursor) params.set("cursor", state.cursor);
  else if (state.before) params.set("before", state.before);
  return params;
}

const SIGNAL_PARAMETERS: Record<Signal, string> = {
  rage_click: "has_rage_clicks", dead_click: "has_dead_clicks", error_click: "has_error_clicks",
};

/** Which form field an API error's `parameter` belongs to. */
export const FIELD_OF_PARAMETER: Record<string, keyof SessionListState> = {
  app: "apps",
  started_after: "from",
  started_before: "to",
  min_duration_ms: "minSeconds",
  max_duration_ms: "maxSeconds",
  has_errors: "hasErrors",
  browser: "browsers",
  os: "oses",
  device_type: "devices",
  country: "countries",
  entry_path: "entryPath",
  min_pages: "minPages",
  max_pages: "maxPages",
  has_rage_clicks: "rageClicks",
  has_dead_clicks: "deadClicks",
  has_error_clicks: "errorClicks",
  id_prefix: "idPrefix",
};
// Any other refused parameter (a stale or edited cursor, say) has no field: the page says so, with a way back.

/** Clicking a column header: the same column flips its order; a new column starts at its natural order
 * (newest, longest, A-Z, most errors, pages or clicks first). Paging starts over. */
export function sortBy(state: SessionListState, sort: SortName): SessionListState {
  const order: Order = state.sort === sort ? (state.order === "asc" ? "desc" : "asc") : sort === "app" ? "asc" : "desc";
  return { ...state, sort, order, cursor: "", before: "" };
}

/** A filter change starts paging over. */
export function withFilters(state: SessionListState, filters: Partial<SessionListState>): SessionListState {
  return { ...state, ...filters, cursor: "", before: "" };
}
