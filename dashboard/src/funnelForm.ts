// The funnel builder's model: what the form holds, the /v1 definition it sends, and where the API's
// validation errors go back on the form. Pure: unit-tested in tests/funnelForm.test.ts.
import { EMPTY_FILTERS, SIGNALS, SIGNAL_FIELDS, filterFieldId, type FilterValues, type Signal } from "./sessionFilters";
import { secondsToMs } from "./sessionQuery";

export type StepKind = "click" | "custom" | "page" | "input" | Signal;
export const STEP_KINDS: StepKind[] = ["click", "custom", "page", "input", ...SIGNALS];
/** How a step reads: "Click on “Add to cart”", "Rage click on “Pay”". */
export const STEP_KIND_NAMES: Record<StepKind, string> = {
  click: "Click on", custom: "Custom event", page: "Page", input: "Typed in", rage_click: "Rage click on", dead_click: "Dead click on",
  error_click: "Error click on",
};
export const MAX_STEPS = 30;
export const MAX_EXCLUSIONS = 10;
export const MAX_BREAKDOWN_LIMIT = 100;
export const DEFAULT_BREAKDOWN_LIMIT = 10;

export type Order = "ordered" | "strict" | "any";
export const ORDERS: Order[] = ["ordered", "strict", "any"];
export const ORDER_NAMES: Record<Order, string> = { ordered: "In order", strict: "Strictly in order", any: "Any order" };
/** Each mode in one line (the API's meaning, see /v1/openapi.json). */
export const ORDER_HINTS: Record<Order, string> = {
  ordered: "Each step after the previous one; other events may happen in between.",
  strict: "Each step right after the previous one: no other click, custom event, page, typing or signal between.",
  any: "The steps in any order: a session reached step k when it did k of them (steps must differ).",
};

export type BreakdownProperty = "app_name" | "browser" | "os" | "device_type" | "entry_path";
export const BREAKDOWN_PROPERTIES: BreakdownProperty[] = ["app_name", "browser", "os", "device_type", "entry_path"];
export const BREAKDOWN_NAMES: Record<BreakdownProperty, string> = {
  app_name: "App", browser: "Browser", os: "Operating system", device_type: "Device type", entry_path: "Entry page",
};

export interface StepRow {
  key: number; // stable across reordering, for the list's identity and the field ids
  kind: StepKind;
  label: string;
}

/** An event that takes a session out of the funnel when done after it reached step ``fromStep`` and before it
 * reached ``toStep`` (1-based, as the API counts). */
export interface ExclusionRow {
  key: number;
  kind: StepKind;
  label: string;
  fromStep: number;
  toStep: number;
}

/** The builder's filters are the session list's (one field of each, see sessionFilters.ts). */
export interface FunnelForm extends FilterValues {
  name: string;
  windowSeconds: string;
  steps: StepRow[];
  order: Order;
  exclusions: ExclusionRow[];
  breakdownProperty: BreakdownProperty | ""; // "": no breakdown
  breakdownLimit: string; // as typed
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
  order?: Order;
  exclusions?: { kind: StepKind; label: string; from_step: number; to_step: number }[];
  breakdown?: { property: BreakdownProperty; limit?: number | string } | null;
}

let nextKey = 1;
export function newStep(kind: StepKind = "click", label = ""): StepRow {
  return { key: nextKey++, kind, label };
}

export function emptyForm(): FunnelForm {
  return { ...EMPTY_FILTERS, name: "", windowSeconds: "", steps: [newStep()], order: "ordered", exclusions: [],
           breakdownProperty: "", breakdownLimit: String(DEFAULT_BREAKDOWN_LIMIT) };
}

export function addStep(form: FunnelForm): FunnelForm {
  if (form.steps.length >= MAX_STEPS) return form;
  return { ...form, steps: [...form.steps, newStep()] };
}

/** Removing a step keeps every exclusion's steps among those left (the last one at most); the API says so if a
 * range is then empty. */
export function removeStep(form: FunnelForm, index: number): FunnelForm {
  if (form.steps.length <= 1) return form;
  const steps = form.steps.filter((_, i) => i !== index);
  const within = (n: number) => Math.min(n, steps.length);
  return { ...form, steps,
           exclusions: form.exclusions.map((e) => ({ ...e, fromStep: within(e.fromStep), toStep: within(e.toStep) })) };
}

/** A new exclusion spans the whole funnel (after step 1, before the last step). */
export function addExclusion(form: FunnelForm): FunnelForm {
  if (form.exclusions.length >= MAX_EXCLUSIONS) return form;
  const exclusion: ExclusionRow = { key: nextKey++, kind: "click", label: "", fromStep: 1,
                                    toStep: Math.max(2, form.steps.length) };
  return { ...form, exclusions: [...form.exclusions, exclusion] };
}

export function removeExclusion(form: FunnelForm, index: number): FunnelForm {
  return { ...form, exclusions: form.exclusions.filter((_, i) => i !== index) };
}

export function updateExclusion(form: FunnelForm, index: number, change: Partial<ExclusionRow>): FunnelForm {
  return { ...form, exclusions: form.exclusions.map((e, i) => (i === index ? { ...e, ...change } : e)) };
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
  // The defaults are left out, as the API reads them back.
  if (form.order !== "ordered") definition.order = form.order;
  if (form.exclusions.length) {
    definition.exclusions = form.exclusions.map((e) => ({ kind: e.kind, label: e.label, from_step: e.fromStep,
                                                          to_step: e.toStep }));
  }
  if (form.breakdownProperty) {
    definition.breakdown = { property: form.breakdownProperty };
    if (form.breakdownLimit.trim()) definition.breakdown.limit = typedNumber(form.breakdownLimit);
  }
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
  form.order = definition.order ?? "ordered";
  form.exclusions = (definition.exclusions ?? []).map((e) => ({
    key: nextKey++, kind: e.kind, label: e.label, fromStep: e.from_step, toStep: e.to_step }));
  if (definition.breakdown) {
    form.breakdownProperty = definition.breakdown.property;
    form.breakdownLimit = asText(definition.breakdown.limit ?? DEFAULT_BREAKDOWN_LIMIT);
  }
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

// The control of an exclusion's field, by the API's name for it.
const EXCLUSION_FIELDS: Record<string, string> = { kind: "kind", label: "label", from_step: "from", to_step: "to" };

/** The id of the form control an API error's ``parameter`` names ("steps[2].label" -> "step-2-label",
 * "filters[3].types[0]" -> the device types of the 4th filter sent, "exclusions[0].to_step" -> "exclusion-0-to"),
 * or "funnel-form" for an error about the whole body. */
export function fieldForParameter(parameter: string | undefined, filterFields: FilterField[][]): string {
  if (!parameter) return "funnel-form";
  if (parameter === "name") return "funnel-name";
  if (parameter === "window_seconds") return "funnel-window";
  const step = /^steps\[(\d+)\](?:\.(kind|label))?/.exec(parameter);
  if (step) return `step-${step[1]}-${step[2] ?? "label"}`;
  if (parameter === "steps") return "funnel-steps";
  if (parameter === "order") return "funnel-order";
  const exclusion = /^exclusions\[(\d+)\](?:\.(\w+))?/.exec(parameter);
  if (exclusion) return `exclusion-${exclusion[1]}-${EXCLUSION_FIELDS[exclusion[2] ?? "label"] ?? "label"}`;
  if (parameter.startsWith("exclusions")) return "funnel-exclusions";
  if (parameter === "breakdown.limit") return "funnel-breakdown-limit";
  if (parameter.startsWith("breakdown")) return "funnel-breakdown";
  const filter = /^filters\[(\d+)\](?:\.(\w+))?/.exec(parameter);
  if (filter) {
    const fields = filterFields[Number(filter[1])] ?? [];
    const field = fields.find((f) => FILTER_DETAILS[f] === filter[2]) ?? fields[0];
    if (field) return filterFieldId("funnel", field);
  }
  if (parameter.startsWith("filters")) return "funnel-filters"; // one the form did not send: the whole fieldset
  return "funnel-form";
}
