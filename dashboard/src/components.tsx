// Pieces every screen uses: loading, error and empty states, a field's error message, and the forms' fields.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";
import type { YesNo } from "./sessionFilters";

export function Loading({ what }: { what: string }) {
  return <p class="state loading" role="status">Loading {what}…</p>;
}

export function Failure({ error, retry }: { error: unknown; retry?: () => void }) {
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="state failure" role="alert">
      <p>{message}</p>
      {retry && <button type="button" onClick={retry}>Try again</button>}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

export function FieldError({ id, message }: { id: string; message?: string }) {
  if (!message) return null;
  return <p class="field-error" id={`${id}-error`} role="alert">{message}</p>;
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Load once per ``key``; a newer key cancels the older request, so a slow answer never overwrites a new one. */
export function useLoad<T>(key: string, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: unknown; loading: boolean }>({
    key, loading: true,
  });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((previous) => ({ key, data: previous.key === key ? previous.data : undefined, loading: true }));
    load(controller.signal).then(
      (data) => { if (!controller.signal.aborted) setState({ key, data, loading: false }); },
      (error) => {
        if (controller.signal.aborted || (error instanceof DOMException && error.name === "AbortError")) return;
        setState({ key, error, loading: false });
      },
    );
    return () => controller.abort();
  }, [key, attempt]);
  const current = state.key === key;
  return { data: current ? state.data : undefined, error: current ? state.error : undefined,
           loading: !current || state.loading, reload: () => setAttempt((n) => n + 1) };
}

export function errorParameter(error: unknown): string | undefined {
  return error instanceof ApiError ? error.parameter : undefined;
}

/** A labelled text-like input with its error message under it (``aria-describedby`` points at the message).
 * The forms' fields are all this one shape, so each form says only what differs. */
export function TextField({ id, label, value, onValue, error, type = "text", size, inputMode, spellcheck,
                            className, list }: {
  id: string; label: string; value: string; onValue: (value: string) => void; error?: string;
  type?: "text" | "date"; size?: number; inputMode?: "numeric"; spellcheck?: boolean; className?: string;
  list?: string;
}) {
  return (
    <label class={className}>{label}
      <input id={id} type={type} value={value} size={size} inputMode={inputMode} spellcheck={spellcheck} list={list}
        aria-invalid={error ? true : undefined} aria-describedby={`${id}-error`}
        onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)} />
      <FieldError id={id} message={error} />
    </label>
  );
}

/** Any / with / without: a filter on something a session has or has not (errors, rage clicks...). */
export function YesNoSelect({ id, label, value, onValue, yes, no, error }: {
  id: string; label: string; value: YesNo; onValue: (value: YesNo) => void; yes: string; no: string; error?: string;
}) {
  return (
    <label>{label}
      <select id={id} value={value} aria-invalid={error ? true : undefined} aria-describedby={`${id}-error`}
        onChange={(e) => onValue((e.currentTarget as HTMLSelectElement).value as YesNo)}>
        <option value="">Any</option>
        <option value="yes">{yes}</option>
        <option value="no">{no}</option>
      </select>
      <FieldError id={id} message={error} />
    </label>
  );
}

/** One checkbox per value (an app, a browser...), shown as ``label`` makes it (the value itself by default);
 * none ticked means any. */
export function Choices({ id, legend, values, chosen, onChosen, error, none, label }: {
  id: string; legend: string; values: string[]; chosen: string[]; onChosen: (values: string[]) => void;
  error?: string; none: string; label?: (value: string) => string;
}) {
  return (
    <fieldset id={id} class="choices" tabIndex={-1} aria-describedby={`${id}-error`}>
      <legend>{legend}</legend>
      {values.length === 0 && <span class="hint">{none}</span>}
      {values.map((value) => (
        <label key={value} class="check">
          <input type="checkbox" value={value} checked={chosen.includes(value)}
            onChange={(e) => onChosen((e.currentTarget as HTMLInputElement).checked
              ? [...chosen, value] : chosen.filter((v) => v !== value))} />
          {label ? label(value) : value}
        </label>
      ))}
      <FieldError id={id} message={error} />
    </fieldset>
  );
}
