import { useEffect, useState } from "preact/hooks";
import { getJson, type Session, type SessionPage } from "../api";
import { AppChoices, Empty, Failure, HasErrorsSelect, Loading, TextField, errorParameter, useLoad, type Loaded } from "../components";
import { formatCount, formatDuration, formatInstant } from "../format";
import { navigate, onLinkClick } from "../router";
import {
  FIELD_OF_PARAMETER,
  apiQuery,
  searchFromState,
  sortBy,
  stateFromSearch,
  withFilters,
  type SessionListState,
  type SortName,
} from "../sessionQuery";

const PAGE_SIZE = 25;
const ACTIVE_REFRESH_MS = 5000;

function go(state: SessionListState) {
  navigate(`/sessions${searchFromState(state)}`);
}

export function SessionsPage({ search }: { search: string }) {
  const state = stateFromSearch(search);
  const apps = useLoad("apps", (signal) => getJson<{ apps: string[] }>("/v1/apps", undefined, signal));
  return (
    <main>
      <div class="title-row">
        <h1>Sessions</h1>
        <div class="tabs" role="group" aria-label="Which sessions">
          <button type="button" aria-pressed={state.view === "ended"}
            onClick={() => go({ ...state, view: "ended", cursor: "", before: "" })}>Ended</button>
          <button type="button" aria-pressed={state.view === "active"}
            onClick={() => go({ ...state, view: "active", cursor: "", before: "" })}>Active now</button>
        </div>
      </div>
      {state.view === "active" ? (
        <>
          <Filters key={search} state={state} apps={withUrlApps(apps.data?.apps ?? [], state)} />
          <ActiveSessions state={state} />
        </>
      ) : <Ended key="ended" state={state} search={search} apps={apps.data?.apps ?? []} />}
    </main>
  );
}

/** The apps to offer: those with ended sessions, and any the URL names (an active session's app, an old link). */
function withUrlApps(apps: string[], state: SessionListState): string[] {
  return [...new Set([...apps, ...state.apps])].sort();
}

function Ended({ state, search, apps }: { state: SessionListState; search: string; apps: string[] }) {
  const query = apiQuery(state, PAGE_SIZE);
  const page = useLoad(query.toString(), (signal) => getJson<SessionPage>("/v1/sessions", query, signal));
  const parameter = errorParameter(page.error);
  const field = parameter ? FIELD_OF_PARAMETER[parameter] : undefined;
  return (
    <>
      <Filters key={search} state={state} apps={withUrlApps(apps, state)} errorField={field}
        errorMessage={field ? (page.error as Error).message : undefined} />
      <EndedSessions state={state} page={page} search={search} />
    </>
  );
}

function Filters({ state, apps, errorField, errorMessage }: {
  state: SessionListState; apps: string[]; errorField?: string; errorMessage?: string;
}) {
  const [draft, setDraft] = useState(state);
  const set = (change: Partial<SessionListState>) => setDraft({ ...draft, ...change });
  const submit = (event: Event) => {
    event.preventDefault();
    go(withFilters(state, { apps: draft.apps, from: draft.from, to: draft.to, minSeconds: draft.minSeconds,
                            maxSeconds: draft.maxSeconds, hasErrors: draft.hasErrors, idPrefix: draft.idPrefix }));
  };
  const active = state.view === "active";
  const error = (field: keyof SessionListState) => (errorField === field ? errorMessage : undefined);
  return (
    <form class="filters" onSubmit={submit} aria-label="Filter sessions">
      <AppChoices legend="Apps" apps={apps} chosen={draft.apps} onChosen={(chosen) => set({ apps: chosen })} />
      {!active && (
        <>
          <TextField id="filter-from" label="Started from (UTC)" type="date" value={draft.from}
            onValue={(from) => set({ from })} error={error("from")} />
          <TextField id="filter-to" label="Started until (UTC, inclusive)" type="date" value={draft.to}
            onValue={(to) => set({ to })} error={error("to")} />
          <TextField id="filter-min" label="Min duration (s)" inputMode="numeric" size={6} value={draft.minSeconds}
            onValue={(minSeconds) => set({ minSeconds })} error={error("minSeconds")} />
          <TextField id="filter-max" label="Max duration (s)" inputMode="numeric" size={6} value={draft.maxSeconds}
            onValue={(maxSeconds) => set({ maxSeconds })} error={error("maxSeconds")} />
          <HasErrorsSelect id="filter-errors" value={draft.hasErrors} onValue={(hasErrors) => set({ hasErrors })} />
          <TextField id="filter-id" label="Session id starts with" size={10} spellcheck={false} value={draft.idPrefix}
            onValue={(idPrefix) => set({ idPrefix })} error={error("idPrefix")} />
        </>
      )}
      <div class="actions">
        <button type="submit" class="primary">Apply</button>
        <a href={`/sessions${active ? "?view=active" : ""}`} onClick={onLinkClick}>Clear</a>
      </div>
    </form>
  );
}

const COLUMNS: { label: string; sort?: SortName; numeric?: boolean }[] = [
  { label: "Start", sort: "start" },
  { label: "Duration", sort: "duration", numeric: true },
  { label: "App", sort: "app" },
  { label: "Events", sort: "events", numeric: true },
  { label: "Errors", sort: "errors", numeric: true },
  { label: "Session" },
];

function SortHeader({ state, label, sort, numeric }: {
  state: SessionListState; label: string; sort?: SortName; numeric?: boolean;
}) {
  if (!sort) return <th scope="col">{label}</th>;
  const current = state.sort === sort;
  const ariaSort = current ? (state.order === "asc" ? "ascending" : "descending") : undefined;
  return (
    <th scope="col" aria-sort={ariaSort} class={numeric ? "num" : undefined}>
      <button type="button" class="sort" onClick={() => go(sortBy(state, sort))}
        aria-label={`Sort by ${label.toLowerCase()}${current ? `, now ${ariaSort}` : ""}`}>
        {label} <span aria-hidden="true">{current ? (state.order === "asc" ? "▲" : "▼") : "↕"}</span>
      </button>
    </th>
  );
}

function openSession(id: string) {
  navigate(`/sessions/${id}`);
}

function SessionRow({ session, active }: { session: Session; active?: boolean }) {
  const href = `/sessions/${session.session_id}`;
  return (
    <tr class="clickable" onClick={(e) => {
      if ((e.target as HTMLElement).closest("a")) return;
      openSession(session.session_id);
    }}>
      <td><a href={href} onClick={onLinkClick}>{formatInstant(session.started_at)}</a></td>
      {active && <td>{formatInstant(session.last_event_at)}</td>}
      <td class="num">{formatDuration(session.duration_ms)}</td>
      <td>{session.app_name}</td>
      <td class="num">{formatCount(session.event_count)}</td>
      <td class={`num${session.error_count ? " has-errors" : ""}`}>{formatCount(session.error_count)}</td>
      <td><code class="id">{session.session_id.slice(0, 8)}</code></td>
    </tr>
  );
}

function EndedSessions({ state, page, search }: { state: SessionListState; page: Loaded<SessionPage>; search: string }) {
  if (page.error && errorParameter(page.error) && FIELD_OF_PARAMETER[errorParameter(page.error)!]) {
    return <div class="state failure"><p>Bard refused this filter; the message is at its field above.</p></div>;
  }
  if (page.error && (state.cursor || state.before)) {
    return (
      <div class="state failure" role="alert">
        <p>{(page.error as Error).message}</p>
        <p><a href={`/sessions${searchFromState({ ...state, cursor: "", before: "" })}`} onClick={onLinkClick}>
          Go to the first page</a></p>
      </div>
    );
  }
  if (page.error) return <Failure error={page.error} retry={page.reload} />;
  if (!page.data) return <Loading what="sessions" />;
  const { sessions, next_cursor, prev_cursor } = page.data;
  const filtered = searchFromState({ ...state, sort: "start", order: "desc", cursor: "", before: "" }) !== "";
  const firstPage = `/sessions${searchFromState({ ...state, cursor: "", before: "" })}`;
  if (sessions.length === 0 && (state.cursor || state.before)) {
    return (
      <Empty>
        <p>No sessions on this page any more (the list has changed since this link was made).{" "}
          <a href={firstPage} onClick={onLinkClick}>Go to the first page</a>.</p>
      </Empty>
    );
  }
  if (sessions.length === 0 && !state.cursor && !state.before) {
    return (
      <Empty>
        {filtered
          ? <p>No ended session matches these filters. <a href="/sessions" onClick={onLinkClick}>Clear them</a>.</p>
          : <p>No ended sessions yet. A session appears here once its app has been idle for its
              <code> MAX_IDLE_TIME</code> (see <em>Active now</em> for sessions still going).</p>}
      </Empty>
    );
  }
  return (
    // data-search: the URL state this table shows (for tests and scripts that wait for a page to be current).
    <section aria-label="Ended sessions" aria-busy={page.loading} data-search={search}>
      <table class="sessions">
        <thead>
          <tr>{COLUMNS.map((c) => <SortHeader key={c.label} state={state} {...c} />)}</tr>
        </thead>
        <tbody>
          {sessions.map((s) => <SessionRow key={s.session_id} session={s} />)}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={!prev_cursor}
          onClick={() => go({ ...state, cursor: "", before: prev_cursor ?? "" })}>← Previous page</button>
        <button type="button" disabled={!next_cursor}
          onClick={() => go({ ...state, cursor: next_cursor ?? "", before: "" })}>Next page →</button>
      </nav>
    </section>
  );
}

function ActiveSessions({ state }: { state: SessionListState }) {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), ACTIVE_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const query = new URLSearchParams();
  state.apps.forEach((app) => query.append("app", app));
  query.set("limit", "100");
  const [updated, setUpdated] = useState<Date | null>(null);
  const page = useLoad(`${query}#${tick}`, async (signal) => {
    const result = await getJson<SessionPage>("/v1/active-sessions", query, signal);
    setUpdated(new Date());
    return result;
  });
  const [last, setLast] = useState<SessionPage | undefined>(undefined);
  useEffect(() => { if (page.data) setLast(page.data); }, [page.data]);
  const shown = page.data ?? last;
  if (page.error && !shown) return <Failure error={page.error} retry={page.reload} />;
  if (!shown) return <Loading what="active sessions" />;
  return (
    <section aria-label="Active sessions">
      <p class="hint" aria-live="polite">
        Refreshes every {ACTIVE_REFRESH_MS / 1000} s{updated ? `; updated ${formatInstant(updated.toISOString())}` : ""}.
        {page.error ? " The last refresh failed; showing the previous answer." : ""}
      </p>
      {shown.sessions.length === 0 ? (
        <Empty><p>No session is active right now. Sessions appear here as soon as an app's agent sends its
          first batch.</p></Empty>
      ) : (
        <table class="sessions">
          <thead>
            <tr>
              <th scope="col">Start</th><th scope="col">Last activity</th><th scope="col" class="num">Duration</th>
              <th scope="col">App</th><th scope="col" class="num">Events</th><th scope="col" class="num">Errors</th>
              <th scope="col">Session</th>
            </tr>
          </thead>
          <tbody>{shown.sessions.map((s) => <SessionRow key={s.session_id} session={s} active />)}</tbody>
        </table>
      )}
      {shown.next_cursor && (
        <p class="hint">Showing the {shown.sessions.length} most recently active sessions; more are active.</p>
      )}
    </section>
  );
}
