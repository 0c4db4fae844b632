// The funnel builder's model: what the form holds, the /v1 definition it sends, and where the API's
// validation errors go back on the form. Pure: unit-tested in tests/funnelForm.test.ts.
import { secondsToMs } from "./sessionQuery";

export type StepKind = "click" | "custom";
export const MAX_STEPS = 20;

export interface StepRow {
  key: number; // stable across reordering, for the list's identity and the field ids
  kind: StepKind;
  label: string;
}

export interface FunnelForm {
  name: string;
  apps: string[];
  startDay: string;
  endDay: string;
  minSeconds: string;
  maxSeconds: string;
  hasErrors: "" | "yes" | "no";
  windowSeconds: string;
  steps: StepRow[];
}

export interface CleanFilter {
  type: "app_name" | "started" | "duration" | "errors";
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
  return { name: "", apps: [], startDay: "", endDay: "", minSeconds: "", maxSeconds: "", hasErrors: "",
           windowSeconds: "", steps: [newStep()] };
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

/** A whole number as typed becomes a number; anything else is sent as typed so the API names it. */
function typedNumber(text: string): number | string {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/** The /v1 definition, and for each filter the form field it came from (``filterFields[i]`` for
 * ``filters[i]``), so that an error about ``filters[1].start`` lands on the right input. */
export function toDefinition(form: FunnelForm): { definition: CleanDefinition; filterFields: (keyof FunnelForm)[][] } {
  const filters: CleanFilter[] = [];
  const filterFields: (keyof FunnelForm)[][] = [];
  if (form.apps.length) {
    filters.push({ type: "app_name", names: form.apps });
    filterFields.push(["apps"]);
  }
  if (form.startDay || form.endDay) {
    filters.push({ type: "started", start: form.startDay || null, end: form.endDay || null });
    filterFields.push(["startDay", "endDay"]);
  }
  if (form.minSeconds.trim() || form.maxSeconds.trim()) {
    filters.push({
      type: "duration",
      min_ms: form.minSeconds.trim() ? secondsToMs(form.minSeconds) : null,
      max_ms: form.maxSeconds.trim() ? secondsToMs(form.maxSeconds) : null,
    });
    filterFields.push(["minSeconds", "maxSeconds"]);
  }
  if (form.hasErrors) {
    filters.push({ type: "errors", has_errors: form.hasErrors === "yes" });
    filterFields.push(["hasErrors"]);
  }
  const definition: CleanDefinition = {
    name: form.name,
    filters,
    steps: form.steps.map((step) => ({ kind: step.kind, label: step.label })),
  };
  if (form.windowSeconds.trim()) definition.window_seconds = typedNumber(form.windowSeconds);
  return { definition, filterFields };
}

/** The form for a stored funnel. The form holds one filter of each type; ``partial`` says a stored funnel had
 * more than the form can show (saving it from the form keeps only what is shown). */
export function fromDefinition(definition: CleanDefinition): { form: FunnelForm; partial: boolean } {
  const form = emptyForm();
  form.name = definition.name;
  form.steps = definition.steps.map((step) => newStep(step.kind, step.label));
  form.windowSeconds = definition.window_seconds ? String(definition.window_seconds) : "";
  const seen = new Set<string>();
  let partial = false;
  for (const filter of definition.filters ?? []) {
    if (seen.has(filter.type)) { partial = true; continue; }
    seen.add(filter.type);
    if (filter.type === "app_name") form.apps = [...(filter.names as string[])];
    if (filter.type === "started") {
      form.startDay = (filter.start as string | null) ?? "";
      form.endDay = (filter.end as string | null) ?? "";
    }
    if (filter.type === "duration") {
      const min = filter.min_ms as number | null;
      const max = filter.max_ms as number | null;
      form.minSeconds = min === null || min === undefined ? "" : String(min / 1000);
      form.maxSeconds = max === null || max === undefined ? "" : String(max / 1000);
    }
    if (filter.type === "errors") form.hasErrors = filter.has_errors ? "yes" : "no";
  }
  return { form, partial };
}

/** The id of the form control an API error's ``parameter`` names ("steps[2].label" -> "step-2-label"), or
 * "funnel-form" for an error about the whole body. */
export function fieldForParameter(parameter: string | undefined, filterFields: (keyof FunnelForm)[][]): string {
  if (!parameter) return "funnel-form";
  if (parameter === "name") return "funnel-name";
  if (parameter === "window_seconds") return "funnel-window";
  const step = /^steps\[(\d+)\](?:\.(kind|label))?/.exec(parameter);
  if (step) return `step-${step[1]}-${step[2] ?? "label"}`;
  if (parameter === "steps") return "funnel-steps";
  const filter = /^filters\[(\d+)\](?:\.(\w+))?/.exec(parameter);
  if (filter) {
    const fields = filterFields[Number(filter[1])] ?? [];
    const detail = filter[2];
    const byDetail: Record<string, keyof FunnelForm> = {
      start: "startDay", end: "endDay", min_ms: "minSeconds", max_ms: "maxSeconds", names: "apps",
      has_errors: "hasErrors",
    };
    const field = (detail && byDetail[detail]) || fields[0];
    if (field) return FORM_FIELD_IDS[field];
  }
  if (parameter === "filters") return "funnel-filters";
  return "funnel-form";
}

export const FORM_FIELD_IDS: Record<keyof FunnelForm, string> = {
  name: "funnel-name", apps: "funnel-apps", startDay: "funnel-start", endDay: "funnel-end",
  minSeconds: "funnel-min", maxSeconds: "funnel-max", hasErrors: "funnel-errors", windowSeconds: "funnel-window",
  steps: "funnel-steps",
};
