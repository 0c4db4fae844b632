import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, sendJson, type StoredFunnel } from "../api";
import { AppChoices, Failure, FieldError, HasErrorsSelect, Loading, TextField } from "../components";
import {
  FORM_FIELD_IDS,
  MAX_STEPS,
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

function useLabels(kind: StepKind): string[] {
  const [labels, setLabels] = useState<string[]>([]);
  useEffect(() => {
    const controller = new AbortController();
    getJson<{ labels: string[] }>("/v1/conversion-labels", new URLSearchParams({ kind, limit: "1000" }),
      controller.signal).then((answer) => setLabels(answer.labels), () => setLabels([]));
    return () => controller.abort();
  }, [kind]);
  return labels;
}

export function FunnelBuilderPage({ id }: { id?: string }) {
  const [form, setForm] = useState<FunnelForm | null>(id ? null : emptyForm());
  const [partial, setPartial] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<{ field: string; message: string } | null>(null);
  const [saving, setSaving] = useState(false);
  const [apps, setApps] = useState<string[]>([]);
  const clickLabels = useLabels("click");
  const customLabels = useLabels("custom");

  useEffect(() => {
    getJson<{ apps: string[] }>("/v1/apps").then((answer) => setApps(answer.apps), () => setApps([]));
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
  const allApps = [...new Set([...apps, ...form.apps])].sort();

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
          <AppChoices id={FORM_FIELD_IDS.apps} legend="Apps (none ticked: every app)" apps={allApps}
            chosen={form.apps} onChosen={(apps) => set({ apps })} error={messageAt(FORM_FIELD_IDS.apps)} />
          <TextField id="funnel-start" label="Started from (UTC day)" type="date" value={form.startDay}
            onValue={(startDay) => set({ startDay })} error={messageAt("funnel-start")} />
          <TextField id="funnel-end" label="Started until (UTC day, inclusive)" type="date" value={form.endDay}
            onValue={(endDay) => set({ endDay })} error={messageAt("funnel-end")} />
          <TextField id="funnel-min" label="Min duration (s)" inputMode="numeric" size={6} value={form.minSeconds}
            onValue={(minSeconds) => set({ minSeconds })} error={messageAt("funnel-min")} />
          <TextField id="funnel-max" label="Max duration (s)" inputMode="numeric" size={6} value={form.maxSeconds}
            onValue={(maxSeconds) => set({ maxSeconds })} error={messageAt("funnel-max")} />
          <HasErrorsSelect id="funnel-errors" value={form.hasErrors} onValue={(hasErrors) => set({ hasErrors })} />
        </fieldset>

        <fieldset id="funnel-steps" tabIndex={-1}>
          <legend>Steps, in order ({form.steps.length} of at most {MAX_STEPS})</legend>
          <FieldError id="funnel-steps" message={messageAt("funnel-steps")} />
          <datalist id="labels-click">{clickLabels.map((l) => <option key={l} value={l} />)}</datalist>
          <datalist id="labels-custom">{customLabels.map((l) => <option key={l} value={l} />)}</datalist>
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
                      <option value="click">Click on</option>
                      <option value="custom">Custom event</option>
                    </select>
                  </label>
                  <label class="grow">{step.kind === "click" ? "Button or link text" : "Event name"}
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
