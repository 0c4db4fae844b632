import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, sendJson, type StoredFunnel } from "../api";
import { Failure, FieldError, Loading, TextField } from "../components";
import {
  MAX_STEPS,
  STEP_KINDS,
  STEP_KIND_NAMES,
  addStep,
  emptyForm,
  fieldForParameter,
  fromDefinition,
  moveStep,
  removeStep,
  toDefinition,
  updateStep,
  type FunnelForm,
  type StepKind,
} from "../funnelForm";
import { navigate, onLinkClick } from "../router";
import { filterFieldId, type FilterValues } from "../sessionFilters";
import { SessionFilterFields, useFilterOptions } from "../SessionFilterFields";

/** The recorded labels of each step kind the form uses (for autocomplete), each kind asked for once. */
function useLabels(kinds: StepKind[]): Partial<Record<StepKind, string[]>> {
  const [labels, setLabels] = useState<Partial<Record<StepKind, string[]>>>({});
  const wanted = [...new Set(kinds)].filter((kind) => !(kind in labels)).sort().join(",");
  useEffect(() => {
    if (!wanted) return;
    for (const kind of wanted.split(",") as StepKind[]) {
      setLabels((known) => ({ ...known, [kind]: [] })); // asked for: not again
      getJson<{ labels: string[] }>("/v1/conversion-labels", new URLSearchParams({ kind, limit: "1000" })).then(
        (answer) => setLabels((known) => ({ ...known, [kind]: answer.labels })), () => {});
    }
  }, [wanted]);
  return labels;
}

// What a step's label is, by its kind.
const LABEL_NAMES: Record<StepKind, string> = {
  click: "Button or link text", custom: "Event name", rage_click: "Element text", dead_click: "Element text",
  error_click: "Element text",
};

export function FunnelBuilderPage({ id }: { id?: string }) {
  const [form, setForm] = useState<FunnelForm | null>(id ? null : emptyForm());
  const [partial, setPartial] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<{ field: string; message: string } | null>(null);
  const [saving, setSaving] = useState(false);
  const options = useFilterOptions();
  const labels = useLabels(form?.steps.map((step) => step.kind) ?? []);

  useEffect(() => {
    if (!id) return;
    getJson<StoredFunnel>(`/v1/funnels/${encodeURIComponent(id)}`).then((funnel) => {
      const loaded = fromDefinition(funnel);
      setForm(loaded.form);
      setPartial(loaded.partial);
    }, setLoadError);
  }, [id]);

  useEffect(() => {
    if (error) document.getElementById(error.field)?.focus();
  }, [error]);

  if (loadError) return <main><Failure error={loadError} /></main>;
  if (!form) return <main><Loading what="the funnel" /></main>;

  const set = (change: Partial<FunnelForm>) => setForm({ ...form, ...change });
  const messageAt = (field: string) => (error?.field === field ? error.message : undefined);
  const invalid = (field: string) => (error?.field === field ? true : undefined);

  const submit = async (event: Event) => {
    event.preventDefault();
    const { definition, filterFields } = toDefinition(form);
    setSaving(true);
    try {
      const saved = id
        ? await sendJson<StoredFunnel>("PUT", `/v1/funnels/${encodeURIComponent(id)}`, definition)
        : await sendJson<StoredFunnel>("POST", "/v1/funnels", definition);
      navigate(`/funnels/${saved.id}`);
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 400) {
        setError({ field: fieldForParameter(failure.parameter, filterFields), message: failure.message });
      } else {
        setError({ field: "funnel-form", message: failure instanceof Error ? failure.message : String(failure) });
      }
    } finally {
      setSaving(false);
    }
  };

  return (
    <main>
      <p><a href={id ? `/funnels/${id}` : "/funnels"} onClick={onLinkClick}>← {id ? "Results" : "Funnels"}</a></p>
      <h1>{id ? "Edit funnel" : "New funnel"}</h1>
      {partial && (
        <p class="notice">This funnel has more than one filter of a kind; the builder shows the first of each, and
          saving keeps only what is shown.</p>
      )}
      <form id="funnel-form" class="builder" onSubmit={submit} noValidate tabIndex={-1}
        aria-describedby="funnel-form-error"
        // An edit answers the message: it stays until the next save says otherwise.
        onInput={() => error && setError(null)} onChange={() => error && setError(null)}>
        <FieldError id="funnel-form" message={messageAt("funnel-form")} />
        <TextField id="funnel-name" label="Name" className="wide" value={form.name}
          onValue={(name) => set({ name })} error={messageAt("funnel-name")} />

        <fieldset id="funnel-filters" tabIndex={-1}>
          <legend>Which sessions</legend>
          <FieldError id="funnel-filters" message={messageAt("funnel-filters")} />
          <SessionFilterFields form="funnel" values={form} onChange={set} options={options}
            errorAt={(field: keyof FilterValues) => messageAt(filterFieldId("funnel", field))} />
        </fieldset>

        <fieldset id="funnel-steps" tabIndex={-1}>
          <legend>Steps, in order ({form.steps.length} of at most {MAX_STEPS})</legend>
          <FieldError id="funnel-steps" message={messageAt("funnel-steps")} />
          {STEP_KINDS.map((kind) => (
            <datalist key={kind} id={`labels-${kind}`}>
              {(labels[kind] ?? []).map((label) => <option key={label} value={label} />)}
            </datalist>
          ))}
          <ol class="steps">
            {form.steps.map((step, index) => {
              const kindId = `step-${index}-kind`;
              const labelId = `step-${index}-label`;
              return (
                <li key={step.key} class="step">
                  <span class="step-number" aria-hidden="true">{index + 1}</span>
                  <label>Kind
                    <select id={kindId} value={step.kind} aria-label={`Step ${index + 1} kind`}
                      aria-invalid={invalid(kindId)}
                      onChange={(e) => setForm(updateStep(form, index, {
                        kind: (e.currentTarget as HTMLSelectElement).value as StepKind })) }>
                      {STEP_KINDS.map((kind) => <option key={kind} value={kind}>{STEP_KIND_NAMES[kind]}</option>)}
                    </select>
                  </label>
                  <label class="grow">{LABEL_NAMES[step.kind]}
                    <input id={labelId} value={step.label} list={`labels-${step.kind}`}
                      aria-label={`Step ${index + 1} label`} aria-invalid={invalid(labelId)}
                      aria-describedby={`${labelId}-error`}
                      onInput={(e) => setForm(updateStep(form, index, {
                        label: (e.currentTarget as HTMLInputElement).value })) } />
                    <FieldError id={labelId} message={messageAt(labelId) ?? messageAt(kindId)} />
                  </label>
                  <div class="step-actions">
                    <button type="button" aria-label={`Move step ${index + 1} up`} disabled={index === 0}
                      onClick={() => setForm(moveStep(form, index, -1))}>↑</button>
                    <button type="button" aria-label={`Move step ${index + 1} down`}
                      disabled={index === form.steps.length - 1}
                      onClick={() => setForm(moveStep(form, index, 1))}>↓</button>
                    <button type="button" aria-label={`Remove step ${index + 1}`} disabled={form.steps.length === 1}
                      onClick={() => setForm(removeStep(form, index))}>✕</button>
                  </div>
                </li>
              );
            })}
          </ol>
          <button type="button" onClick={() => setForm(addStep(form))} disabled={form.steps.length >= MAX_STEPS}>
            + Add a step
          </button>
        </fieldset>

        <TextField id="funnel-window" label="Conversion window (seconds from step 1; empty: no limit)"
          inputMode="numeric" size={8} value={form.windowSeconds}
          onValue={(windowSeconds) => set({ windowSeconds })} error={messageAt("funnel-window")} />

        <div class="actions">
          <button type="submit" class="primary" disabled={saving}>{saving ? "Saving…" : id ? "Save" : "Create funnel"}</button>
          <a href={id ? `/funnels/${id}` : "/funnels"} onClick={onLinkClick}>Cancel</a>
        </div>
      </form>
    </main>
  );
}
