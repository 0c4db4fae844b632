// The session filters that the session list and the funnel builder both show: what each field holds as typed,
// the ids of the fields, and the names of the behaviour signals. Pure: unit-tested through sessionQuery.test.ts and
// funnelForm.test.ts, which map these values to the /v1 query and to a funnel's filters.

export type YesNo = "" | "yes" | "no";

export const SIGNALS = ["rage_click", "dead_click", "error_click"] as const;
export type Signal = (typeof SIGNALS)[number];
export const SIGNAL_NAMES: Record<Signal, string> = {
  rage_click: "Rage click", dead_click: "Dead click", error_click: "Error click",
};

export interface FilterValues {
  apps: string[];
  from: string; // UTC day, inclusive ("" = open)
  to: string; // UTC day, inclusive
  minSeconds: string; // as typed; seconds
  maxSeconds: string;
  hasErrors: YesNo;
  browsers: string[]; // browser families ("Chrome"); none: any
  oses: string[];
  devices: string[]; // desktop, mobile, tablet, bot
  countries: string[]; // ISO 3166-1 alpha-2 codes ("DE") of the client address's country
  entryPath: string; // a prefix of the first page's path
  minPages: string; // as typed; whole pages
  maxPages: string;
  rageClicks: YesNo;
  deadClicks: YesNo;
  errorClicks: YesNo;
}

export const EMPTY_FILTERS: FilterValues = {
  apps: [], from: "", to: "", minSeconds: "", maxSeconds: "", hasErrors: "", browsers: [], oses: [], devices: [],
  countries: [], entryPath: "", minPages: "", maxPages: "", rageClicks: "", deadClicks: "", errorClicks: "",
};

export const FILTER_KEYS = Object.keys(EMPTY_FILTERS) as (keyof FilterValues)[];

/** The form field of each signal's yes/no choice. */
export const SIGNAL_FIELDS: Record<Signal, "rageClicks" | "deadClicks" | "errorClicks"> = {
  rage_click: "rageClicks", dead_click: "deadClicks", error_click: "errorClicks",
};

/** Only the filter fields of a larger state (a form's draft, the list's URL state). */
export function filterValues(values: FilterValues): FilterValues {
  return Object.fromEntries(FILTER_KEYS.map((key) => [key, values[key]])) as unknown as FilterValues;
}

export function yesNo(text: string | null): YesNo {
  return text === "yes" || text === "no" ? text : "";
}

const FIELD_ID_SUFFIXES: Record<keyof FilterValues, string> = {
  apps: "apps", from: "from", to: "to", minSeconds: "min", maxSeconds: "max", hasErrors: "errors",
  browsers: "browsers", oses: "os", devices: "devices", countries: "countries", entryPath: "entry", minPages: "min-pages",
  maxPages: "max-pages", rageClicks: "rage", deadClicks: "dead", errorClicks: "error-clicks",
};

/** The id of a filter field on a form ("filter" for the session list, "funnel" for the builder): an error
 * message is found at ``#<id>-error``. */
export function filterFieldId(form: string, field: keyof FilterValues): string {
  return `${form}-${FIELD_ID_SUFFIXES[field]}`;
}
