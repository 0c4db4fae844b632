// The session filters' fields, one component for the session list's filter bar and the funnel builder's "Which
// sessions": apps, client (browser, OS, device), country, start days, duration, entry page, pages, errors and the behaviour
// signals. Choices come from /v1/options; each field shows the API's message when a refusal names it.
import { Fragment, type ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api";
import { Choices, TextField, YesNoSelect } from "./components";
import { countryName } from "./format";
import { SIGNALS, SIGNAL_FIELDS, SIGNAL_NAMES, filterFieldId, type FilterValues, type YesNo } from "./sessionFilters";

export type OptionProperty = "app" | "browser" | "os" | "device_type" | "country" | "entry_path";
/** The values offered for each choice; a list not loaded yet is missing. */
export type FilterOptions = Partial<Record<Exclude<OptionProperty, "entry_path">, string[]>>;
interface OptionValue { value: string; sessions: number }

const CHOICE_LIMIT = 100;
const ENTRY_PATH_SUGGESTIONS = 20;

function optionValues(property: OptionProperty, prefix: string, limit: number,
                      signal: AbortSignal): Promise<OptionValue[]> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (prefix) query.set("prefix", prefix);
  return getJson<{ values: OptionValue[] }>(`/v1/options/${property}`, query, signal).then((answer) => answer.values);
}

/** The values recorded for each choice (most common first), loaded once per page. A list that fails to load
 * offers nothing; the field still shows what the URL or a stored funnel chose. */
export function useFilterOptions(): FilterOptions {
  const [options, setOptions] = useState<FilterOptions>({});
  useEffect(() => {
    const controller = new AbortController();
    for (const property of ["app", "browser", "os", "device_type", "country"] as const) {
      optionValues(property, "", CHOICE_LIMIT, controller.signal).then(
        (values) => setOptions((shown) => ({ ...shown, [property]: values.map((v) => v.value) })),
        () => setOptions((shown) => ({ ...shown, [property]: [] })));
    }
    return () => controller.abort();
  }, []);
  return options;
}

/** Entry paths starting with what is typed, asked again as the typing pauses. */
function useEntryPaths(prefix: string, enabled: boolean): OptionValue[] {
  const [paths, setPaths] = useState<OptionValue[]>([]);
  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    const timer = setTimeout(() => {
      optionValues("entry_path", prefix.trim(), ENTRY_PATH_SUGGESTIONS, controller.signal).then(setPaths, () => {});
    }, 150);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [prefix, enabled]);
  return paths;
}

const NUMBER = { inputMode: "numeric", size: 6 } as const;

type ListField = "apps" | "browsers" | "oses" | "devices" | "countries";
type TextFieldName = "from" | "to" | "minSeconds" | "maxSeconds" | "entryPath" | "minPages" | "maxPages";

export function SessionFilterFields({ form, values, onChange, options, errorAt, appsOnly, children }: {
  form: "filter" | "funnel";
  values: FilterValues;
  onChange: (change: Partial<FilterValues>) => void;
  options: FilterOptions;
  errorAt: (field: keyof FilterValues) => string | undefined;
  /** Active sessions have no client or page details yet: only their app can be chosen. */
  appsOnly?: boolean;
  /** More fields and the form's buttons, at the end of the last row. */
  children?: ComponentChildren;
}) {
  const id = (field: keyof FilterValues) => filterFieldId(form, field);
  const entryPaths = useEntryPaths(values.entryPath, !appsOnly);
  const choices = (field: ListField, legend: string, offered: string[] | undefined,
                   label?: (value: string) => string) => (
    <Choices id={id(field)} legend={legend} values={[...new Set([...offered ?? [], ...values[field]])]}
      chosen={values[field]} onChosen={(chosen) => onChange({ [field]: chosen })} error={errorAt(field)}
      none={offered ? "None recorded yet" : "Loading…"} label={label} />
  );
  const text = (field: TextFieldName, label: string, more: Partial<Parameters<typeof TextField>[0]> = NUMBER) => (
    <TextField id={id(field)} label={label} value={values[field]} onValue={(value) => onChange({ [field]: value })}
      error={errorAt(field)} {...more} />
  );
  const yesNo = (field: "hasErrors" | (typeof SIGNAL_FIELDS)[keyof typeof SIGNAL_FIELDS], label: string,
                 what: string) => (
    <YesNoSelect id={id(field)} label={label} value={values[field]} error={errorAt(field)}
      onValue={(value: YesNo) => onChange({ [field]: value })} yes={`With ${what}`} no={`Without ${what}`} />
  );
  if (appsOnly) return <div class="filter-row">{choices("apps", "Apps", options.app)}{children}</div>;
  return (
    <>
      <div class="filter-row">
        {choices("apps", "Apps", options.app)}
        {choices("browsers", "Browsers", options.browser)}
        {choices("oses", "Operating systems", options.os)}
        {choices("devices", "Devices", options.device_type)}
        {choices("countries", "Countries", options.country, (code) => `${countryName(code)} (${code})`)}
      </div>
      <div class="filter-row">
        {text("from", "Started from (UTC day)", { type: "date" })}
        {text("to", "Started until (UTC day, inclusive)", { type: "date" })}
        {text("minSeconds", "Min duration (s)")}
        {text("maxSeconds", "Max duration (s)")}
        {text("entryPath", "Entry page starts with", { size: 16, spellcheck: false, list: `${id("entryPath")}-paths` })}
        <datalist id={`${id("entryPath")}-paths`}>
          {entryPaths.map((path) => <option key={path.value} value={path.value}>{path.sessions} sessions</option>)}
        </datalist>
        {text("minPages", "Min pages", { ...NUMBER, size: 4 })}
        {text("maxPages", "Max pages", { ...NUMBER, size: 4 })}
      </div>
      <div class="filter-row">
        {yesNo("hasErrors", "Errors", "errors")}
        {SIGNALS.map((signal) => (
          <Fragment key={signal}>
            {yesNo(SIGNAL_FIELDS[signal], `${SIGNAL_NAMES[signal]}s`, `${SIGNAL_NAMES[signal].toLowerCase()}s`)}
          </Fragment>
        ))}
        {children}
      </div>
    </>
  );
}
