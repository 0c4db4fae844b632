import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, sendJson, type StoredFunnel } from "../api";
import { Failure, FieldError, Loading, TextField } from "../components";
import {
  BREAKDOWN_NAMES,
  BREAKDOWN_PROPERTIES,
  MAX_BREAKDOWN_LIMIT,
  MAX_EXCLUSIONS,
  MAX_STEPS,
  ORDERS,
  ORDER_HINTS,
  ORDER_NAMES,
  STEP_KINDS,
  STEP_KIND_NAMES,
  addExclusion,
  addStep,
  emptyForm,
  fieldForParameter,
  fromDefinition,
  moveStep,
  removeExclusion,
  removeStep,
  toDefinition,
  updateExclusion,
  updateStep,
  type BreakdownProperty,
  type FunnelForm,
  type Order,
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
  click: "Button or link text", custom: "Event name", page: "Path (/checkout; /blog/* for every page under /blog/)",
  input: "Field label (its <label>, aria-label, name or placeholder)",
  rage_click: "Element text", dead_click: "Element text", error_click: "Element text",
};

export function FunnelBuilderPage({ id }: { id?: string }) {
  const [form, setForm] = useState<FunnelForm | null>(id ? null : emptyForm());
  const [partial, setPartial] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<{ field: string; message: string } | null>(null);
  const [saving, setSaving] = useState(false);
  const options = useFilterOptions();
  const labels = useLabels([...(form?.steps ?? []), ...(form?.exclusions ?? [])].map((row) => row.kind));

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
          <legend>Steps, {form.order === "any" ? "in any order" : "in order"} ({form.steps.length} of at most {MAX_STEPS})</legend>
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

        <div class="hinted">
          <label>Step order
            <select id="funnel-order" value={form.order} aria-invalid={invalid("funnel-order")}
              aria-describedby="funnel-order-hint funnel-order-error"
              onChange={(e) => set({ order: (e.currentTarget as HTMLSelectElement).value as Order })}>
              {ORDERS.map((order) => <option key={order} value={order}>{ORDER_NAMES[order]}</option>)}
            </select>
          </label>
          <span class="hint" id="funnel-order-hint">{ORDER_HINTS[form.order]}</span>
          <FieldError id="funnel-order" message={messageAt("funnel-order")} />
        </div>

        <TextField id="funnel-window" label="Conversion window (seconds from step 1; empty: no limit)"
          inputMode="numeric" size={8} value={form.windowSeconds}
          onValue={(windowSeconds) => set({ windowSeconds })} error={messageAt("funnel-window")} />

        <Exclusions form={form} setForm={setForm} messageAt={messageAt} />

        <fieldset id="funnel-breakdown-fields" class="breakdown" tabIndex={-1}>
          <legend>Breakdown: counts per value of a session property</legend>
          <label>Break down by
            <select id="funnel-breakdown" value={form.breakdownProperty} aria-invalid={invalid("funnel-breakdown")}
              aria-describedby="funnel-breakdown-error"
              onChange={(e) => set({ breakdownProperty: (e.currentTarget as HTMLSelectElement).value as
                BreakdownProperty | "" })}>
              <option value="">None</option>
              {BREAKDOWN_PROPERTIES.map((property) => (
                <option key={property} value={property}>{BREAKDOWN_NAMES[property]}</option>))}
            </select>
            <FieldError id="funnel-breakdown" message={messageAt("funnel-breakdown")} />
          </label>
          {form.breakdownProperty && (
            <TextField id="funnel-breakdown-limit" label={`Top values (1 to ${MAX_BREAKDOWN_LIMIT}; the rest in one row)`}
              inputMode="numeric" size={5} value={form.breakdownLimit}
              onValue={(breakdownLimit) => set({ breakdownLimit })} error={messageAt("funnel-breakdown-limit")} />
          )}
        </fieldset>

        <div class="actions">
          <button type="submit" class="primary" disabled={saving}>{saving ? "Saving…" : id ? "Save" : "Create funnel"}</button>
          <a href={id ? `/funnels/${id}` : "/funnels"} onClick={onLinkClick}>Cancel</a>
        </div>
      </form>
    </main>
  );
}

/** Events that take a session out of the funnel between two of its steps. */
function Exclusions({ form, setForm, messageAt }: {
  form: FunnelForm; setForm: (form: FunnelForm) => void; messageAt: (field: string) => string | undefined;
}) {
  const stepNumbers = form.steps.map((_, i) => i + 1);
  const stepSelect = (index: number, which: "from" | "to", value: number, label: string) => {
    const id = `exclusion-${index}-${which}`;
    return (
      <label>{label}
        <select id={id} value={String(value)} aria-label={`Exclusion ${index + 1}: ${label.toLowerCase()}`}
          aria-invalid={messageAt(id) ? true : undefined} aria-describedby={`${id}-error`}
          onChange={(e) => setForm(updateExclusion(form, index, {
            [which === "from" ? "fromStep" : "toStep"]: Number((e.currentTarget as HTMLSelectElement).value) }))}>
          {stepNumbers.map((n) => <option key={n} value={String(n)}>step {n}</option>)}
        </select>
        <FieldError id={id} message={messageAt(id)} />
      </label>
    );
  };
  return (
    <fieldset id="funnel-exclusions" tabIndex={-1}>
      <legend>Exclusions: a session that does one of these between two steps leaves the funnel</legend>
      <FieldError id="funnel-exclusions" message={messageAt("funnel-exclusions")} />
      {form.exclusions.length > 0 && (
        <ol class="steps exclusions">
          {form.exclusions.map((exclusion, index) => {
            const kindId = `exclusion-${index}-kind`;
            const labelId = `exclusion-${index}-label`;
            return (
              <li key={exclusion.key} class="step exclusion">
                <label>Kind
                  <select id={kindId} value={exclusion.kind} aria-label={`Exclusion ${index + 1} kind`}
                    aria-invalid={messageAt(kindId) ? true : undefined}
                    onChange={(e) => setForm(updateExclusion(form, index, {
                      kind: (e.currentTarget as HTMLSelectElement).value as StepKind }))}>
                    {STEP_KINDS.map((kind) => <option key={kind} value={kind}>{STEP_KIND_NAMES[kind]}</option>)}
                  </select>
                </label>
                <label class="grow">{LABEL_NAMES[exclusion.kind]}
                  <input id={labelId} value={exclusion.label} list={`labels-${exclusion.kind}`}
                    aria-label={`Exclusion ${index + 1} label`} aria-invalid={messageAt(labelId) ? true : undefined}
                    aria-describedby={`${labelId}-error`}
                    onInput={(e) => setForm(updateExclusion(form, index, {
                      label: (e.currentTarget as HTMLInputElement).value }))} />
                  <FieldError id={labelId} message={messageAt(labelId) ?? messageAt(kindId)} />
                </label>
                {stepSelect(index, "from", exclusion.fromStep, "After")}
                {stepSelect(index, "to", exclusion.toStep, "Before")}
                <div class="step-actions">
                  <button type="button" aria-label={`Remove exclusion ${index + 1}`}
                    onClick={() => setForm(removeExclusion(form, index))}>✕</button>
                </div>
              </li>
            );
          })}
        </ol>
      )}
      <button type="button" onClick={() => setForm(addExclusion(form))}
        disabled={form.exclusions.length >= MAX_EXCLUSIONS || form.steps.length < 2}>
        + Add an exclusion
      </button>
      {form.steps.length < 2 && <span class="hint">An exclusion lies between two steps: add a second step first.</span>}
    </fieldset>
  );
}
