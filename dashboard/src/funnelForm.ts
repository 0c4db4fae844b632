// The funnel builder's model: what the form holds, the /v1 definition it sends, and where the API's
// validation errors go back on the form. Pure: unit-tested in tests/funnelForm.test.ts.
import { EMPTY_FILTERS, SIGNALS, SIGNAL_FIELDS, filterFieldId, type FilterValues, type Signal } from "./sessionFilters";
import { secondsToMs } from "./sessionQuery";

export type StepKind = "click" | "custom" | Signal;
export const STEP_KINDS: StepKind[] = ["click", "custom", ...SIGNALS];
/** How a step reads: "Click on “Add to cart”", "Rage click on “Pay”". */
export const STEP_KIND_NAMES: Record<StepKind, string> = {
  click: "Click on", custom: "Custom event", rage_click: "Rage click on", dead_click: "Dead click on",
  error_click: "Error click on",
};
export const MAX_STEPS = 20;

export interface StepRow {
  key: number; // stable across reordering, for the list's identity and the field ids
  kind: StepKind;
  label: string;
}

/** The builder's filters are the session list's (one field of each, see sessionFilters.ts). */
export interface FunnelForm extends FilterValues {
  name: string;
  windowSeconds: string;
  steps: StepRow[];
}

export type FilterType = "app_name" | "started" | "duration" | "errors" | "browser" | "os" | "device_type"
  | "country" | "entry_path" | "pages" | "signal";

export interface CleanFilter {
  type: FilterType;
  [field: string]: unknown;
}

export interface CleanDefinition {
  name: string;
  filters: CleanFilter[];
  steps: { kind: StepKind; label: string }[];
  window_seconds?: number | string | null;
}

let nextKey = 1;
export function newStep(kind: StepKind = "click", label = ""): StepRow {
  return { key: nextKey++, kind, label };
}

export function emptyForm(): FunnelForm {
  return { ...EMPTY_FILTERS, name: "", windowSeconds: "", steps: [newStep()] };
}

export function addStep(form: FunnelForm): FunnelForm {
  if (form.steps.length >= MAX_STEPS) return form;
  return { ...form, steps: [...form.steps, newStep()] };
}

export function removeStep(form: FunnelForm, index: number): FunnelForm {
  if (form.steps.length <= 1) return form;
  return { ...form, steps: form.steps.filter((_, i) => i !== index) };
}

/** Move step ``index`` by ``delta`` places (-1 up, +1 down); a move past either end changes nothing. */
export function moveStep(form: FunnelForm, index: number, delta: number): FunnelForm {
  const target = index + delta;
  if (target < 0 || target >= form.steps.length) return form;
  const steps = [...form.steps];
  [steps[index], steps[target]] = [steps[target], steps[index]];
  return { ...form, steps };
}

export function updateStep(form: FunnelForm, index: number, change: Partial<StepRow>): FunnelForm {
  return { ...form, steps: form.steps.map((step, i) => (i === index ? { ...step, ...change } : step)) };
}

/** A whole number as typed becomes a number (a negative one too, which the API then explains is out of range);
 * anything else is sent as typed so the API names it. */
function typedNumber(text: string): number | string {
  const trimmed = text.trim();
  return /^-?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

type FilterField = keyof FilterValues;

/** The /v1 definition, and for each filter the form fields it came from (``filterFields[i]`` for
 * ``filters[i]``), so that an error about ``filters[1].start`` lands on the right input. */
export function toDefinition(form: FunnelForm): { definition: CleanDefinition; filterFields: FilterField[][] } {
  const filters: CleanFilter[] = [];
  const filterFields: FilterField[][] = [];
  const add = (filter: CleanFilter, ...fields: FilterField[]) => {
    filters.push(filter);
    filterFields.push(fields);
  };
  const bound = (text: string, read: (typed: string) => number | string) => (text.trim() ? read(text) : null);
  if (form.apps.length) add({ type: "app_name", names: form.apps }, "apps");
  if (form.from || form.to) add({ type: "started", start: form.from || null, end: form.to || null }, "from", "to");
  if (form.minSeconds.trim() || form.maxSeconds.trim()) {
    add({ type: "duration", min_ms: bound(form.minSeconds, secondsToMs), max_ms: bound(form.maxSeconds, secondsToMs) },
        "minSeconds", "maxSeconds");
  }
  if (form.hasErrors) add({ type: "errors", has_errors: form.hasErrors === "yes" }, "hasErrors");
  if (form.browsers.length) add({ type: "browser", names: form.browsers }, "browsers");
  if (form.oses.length) add({ type: "os", names: form.oses }, "oses");
  if (form.devices.length) add({ type: "device_type", types: form.devices }, "devices");
  if (form.countries.length) add({ type: "country", codes: form.countries }, "countries");
  if (form.entryPath.trim()) add({ type: "entry_path", prefix: form.entryPath.trim() }, "entryPath");
  if (form.minPages.trim() || form.maxPages.trim()) {
    add({ type: "pages", min_pages: bound(form.minPages, typedNumber), max_pages: bound(form.maxPages, typedNumber) },
        "minPages", "maxPages");
  }
  for (const signal of SIGNALS) {
    const choice = form[SIGNAL_FIELDS[signal]];
    if (choice) add({ type: "signal", signal, present: choice === "yes" }, SIGNAL_FIELDS[signal]);
  }
  const definition: CleanDefinition = {
    name: form.name,
    filters,
    steps: form.steps.map((step) => ({ kind: step.kind, label: step.label })),
  };
  if (form.windowSeconds.trim()) definition.window_seconds = typedNumber(form.windowSeconds);
  return { definition, filterFields };
}

const asText = (value: unknown) => (value === null || value === undefined ? "" : String(value));

/** The form for a stored funnel. The form holds one filter of each type (and of each signal); ``partial`` says a
 * stored funnel had more than the form can show (saving it from the form keeps only what is shown). */
export function fromDefinition(definition: CleanDefinition): { form: FunnelForm; partial: boolean } {
  const form = emptyForm();
  form.name = definition.name;
  form.steps = definition.steps.map((step) => newStep(step.kind, step.label));
  form.windowSeconds = definition.window_seconds ? String(definition.window_seconds) : "";
  const seen = new Set<string>();
  let partial = false;
  for (const filter of definition.filters ?? []) {
    const which = filter.type === "signal" ? `signal:${filter.signal}` : filter.type;
    if (seen.has(which)) { partial = true; continue; }
    seen.add(which);
    if (filter.type === "app_name") form.apps = [...(filter.names as string[])];
    if (filter.type === "started") {
      form.from = asText(filter.start);
      form.to = asText(filter.end);
    }
    if (filter.type === "duration") {
      const seconds = (ms: unknown) => (typeof ms === "number" ? String(ms / 1000) : asText(ms));
      form.minSeconds = seconds(filter.min_ms);
      form.maxSeconds = seconds(filter.max_ms);
    }
    if (filter.type === "errors") form.hasErrors = filter.has_errors ? "yes" : "no";
    if (filter.type === "browser") form.browsers = [...(filter.names as string[])];
    if (filter.type === "os") form.oses = [...(filter.names as string[])];
    if (filter.type === "device_type") form.devices = [...(filter.types as string[])];
    if (filter.type === "country") form.countries = [...(filter.codes as string[])];
    if (filter.type === "entry_path") form.entryPath = asText(filter.prefix);
    if (filter.type === "pages") {
      form.minPages = asText(filter.min_pages);
      form.maxPages = asText(filter.max_pages);
    }
    if (filter.type === "signal" && SIGNALS.includes(filter.signal as Signal)) {
      form[SIGNAL_FIELDS[filter.signal as Signal]] = filter.present === false ? "no" : "yes";
    }
  }
  return { form, partial };
}

// The field of a filter that an error's detail names, where a filter has two ("filters[1].end": the end day).
const FILTER_DETAILS: Partial<Record<FilterField, string>> = {
  from: "start", to: "end", minSeconds: "min_ms", maxSeconds: "max_ms", minPages: "min_pages", maxPages: "max_pages",
};

/** The id of the form control an API error's ``parameter`` names ("steps[2].label" -> "step-2-label",
 * "filters[3].types[0]" -> the device types of the 4th filter sent), or "funnel-form" for an error about the
 * whole body. */
export function fieldForParameter(parameter: string | undefined, filterFields: FilterField[][]): string {
  if (!parameter) return "funnel-form";
  if (parameter === "name") return "funnel-name";
  if (parameter === "window_seconds") return "funnel-window";
  const step = /^steps\[(\d+)\](?:\.(kind|label))?/.exec(parameter);
  if (step) return `step-${step[1]}-${step[2] ?? "label"}`;
  if (parameter === "steps") return "funnel-steps";
  const filter = /^filters\[(\d+)\](?:\.(\w+))?/.exec(parameter);
  if (filter) {
    const fields = filterFields[Number(filter[1])] ?? [];
    const field = fields.find((f) => FILTER_DETAILS[f] === filter[2]) ?? fields[0];
    if (field) return filterFieldId("funnel", field);
  }
  if (parameter.startsWith("filters")) return "funnel-filters"; // one the form did not send: the whole fieldset
  return "funnel-form";
}
