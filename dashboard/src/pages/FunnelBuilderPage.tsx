import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, sendJson, type StoredFunnel } from "../api";
import { Failure, FieldError, Loading } from "../components";
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
        <label class="wide">Name
          <input id="funnel-name" value={form.name} required aria-invalid={invalid("funnel-name")}
            aria-describedby="funnel-name-error"
            onInput={(e) => set({ name: (e.currentTarget as HTMLInputElement).value })} />
          <FieldError id="funnel-name" message={messageAt("funnel-name")} />
        </label>

        <fieldset id="funnel-filters" tabIndex={-1}>
          <legend>Which sessions</legend>
          <FieldError id="funnel-filters" message={messageAt("funnel-filters")} />
          <fieldset id={FORM_FIELD_IDS.apps} class="apps" tabIndex={-1} aria-describedby="funnel-apps-error">
            <legend>Apps (none ticked: every app)</legend>
            {allApps.length === 0 && <span class="hint">No ended sessions yet</span>}
            {allApps.map((app) => (
              <label key={app} class="check">
                <input type="checkbox" checked={form.apps.includes(app)}
                  onChange={(e) => set({ apps: (e.currentTarget as HTMLInputElement).checked
                    ? [...form.apps, app] : form.apps.filter((a) => a !== app) })} />
                {app}
              </label>
            ))}
            <FieldError id="funnel-apps" message={messageAt("funnel-apps")} />
          </fieldset>
          <label>Started from (UTC day)
            <input id="funnel-start" type="date" value={form.startDay} aria-invalid={invalid("funnel-start")}
              aria-describedby="funnel-start-error"
              onInput={(e) => set({ startDay: (e.currentTarget as HTMLInputElement).value })} />
            <FieldError id="funnel-start" message={messageAt("funnel-start")} />
          </label>
          <label>Started until (UTC day, inclusive)
            <input id="funnel-end" type="date" value={form.endDay} aria-invalid={invalid("funnel-end")}
              aria-describedby="funnel-end-error"
              onInput={(e) => set({ endDay: (e.currentTarget as HTMLInputElement).value })} />
            <FieldError id="funnel-end" message={messageAt("funnel-end")} />
          </label>
          <label>Min duration (s)
            <input id="funnel-min" inputMode="numeric" size={6} value={form.minSeconds}
              aria-invalid={invalid("funnel-min")} aria-describedby="funnel-min-error"
              onInput={(e) => set({ minSeconds: (e.currentTarget as HTMLInputElement).value })} />
            <FieldError id="funnel-min" message={messageAt("funnel-min")} />
          </label>
          <label>Max duration (s)
            <input id="funnel-max" inputMode="numeric" size={6} value={form.maxSeconds}
              aria-invalid={invalid("funnel-max")} aria-describedby="funnel-max-error"
              onInput={(e) => set({ maxSeconds: (e.currentTarget as HTMLInputElement).value })} />
            <FieldError id="funnel-max" message={messageAt("funnel-max")} />
          </label>
          <label>Errors
            <select id="funnel-errors" value={form.hasErrors}
              onChange={(e) => set({ hasErrors: (e.currentTarget as HTMLSelectElement).value as FunnelForm["hasErrors"] })}>
              <option value="">Any</option>
              <option value="yes">With errors</option>
              <option value="no">Without errors</option>
            </select>
          </label>
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

        <label>Conversion window (seconds from step 1; empty: no limit)
          <input id="funnel-window" inputMode="numeric" size={8} value={form.windowSeconds}
            aria-invalid={invalid("funnel-window")} aria-describedby="funnel-window-error"
            onInput={(e) => set({ windowSeconds: (e.currentTarget as HTMLInputElement).value })} />
          <FieldError id="funnel-window" message={messageAt("funnel-window")} />
        </label>

        <div class="actions">
          <button type="submit" class="primary" disabled={saving}>{saving ? "Saving…" : id ? "Save" : "Create funnel"}</button>
          <a href={id ? `/funnels/${id}` : "/funnels"} onClick={onLinkClick}>Cancel</a>
        </div>
      </form>
    </main>
  );
}
