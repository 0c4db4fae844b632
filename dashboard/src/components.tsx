// Pieces every screen uses: loading, error and empty states, and a field's error message.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";

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
