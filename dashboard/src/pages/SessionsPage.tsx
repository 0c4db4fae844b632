import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { SIGNAL_COUNTS, getJson, type Session, type SessionPage } from "../api";
import { Empty, Failure, Loading, TextField, errorParameter, useLoad, type Loaded } from "../components";
import { countryName, formatClient, formatCount, formatDuration, formatInstant, hasMetadata } from "../format";
import { SIGNALS, SIGNAL_NAMES, filterValues } from "../sessionFilters";
import { SessionFilterFields, useFilterOptions, type FilterOptions } from "../SessionFilterFields";
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
  const options = useFilterOptions();
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
          <Filters key={search} state={state} options={options} />
          <ActiveSessions state={state} />
        </>
      ) : <Ended key="ended" state={state} search={search} options={options} />}
    </main>
  );
}

function Ended({ state, search, options }: { state: SessionListState; search: string; options: FilterOptions }) {
  const query = apiQuery(state, PAGE_SIZE);
  const page = useLoad(query.toString(), (signal) => getJson<SessionPage>("/v1/sessions", query, signal));
  const parameter = errorParameter(page.error);
  const field = parameter ? FIELD_OF_PARAMETER[parameter] : undefined;
  return (
    <>
      <Filters key={search} state={state} options={options} errorField={field}
        errorMessage={field ? (page.error as Error).message : undefined} />
      <EndedSessions state={state} page={page} search={search} />
    </>
  );
}

function Filters({ state, options, errorField, errorMessage }: {
  state: SessionListState; options: FilterOptions; errorField?: keyof SessionListState; errorMessage?: string;
}) {
  const [draft, setDraft] = useState(state);
  const submit = (event: Event) => {
    event.preventDefault();
    go(withFilters(state, { ...filterValues(draft), idPrefix: draft.idPrefix }));
  };
  const active = state.view === "active";
  const error = (field: keyof SessionListState) => (errorField === field ? errorMessage : undefined);
  return (
    <form class="filters" onSubmit={submit} aria-label="Filter sessions">
      <SessionFilterFields form="filter" values={draft} onChange={(change) => setDraft({ ...draft, ...change })}
        options={options} errorAt={error} appsOnly={active}>
        {!active && (
          <TextField id="filter-id" label="Session id starts with" size={10} spellcheck={false} value={draft.idPrefix}
            onValue={(idPrefix) => setDraft({ ...draft, idPrefix })} error={error("idPrefix")} />
        )}
        <div class="actions">
          <button type="submit" class="primary">Apply</button>
          <a href={`/sessions${active ? "?view=active" : ""}`} onClick={onLinkClick}>Clear</a>
        </div>
      </SessionFilterFields>
    </form>
  );
}

const COLUMNS: { label: string; sort?: SortName; numeric?: boolean }[] = [
  { label: "Start", sort: "start" },
  { label: "Duration", sort: "duration", numeric: true },
  { label: "App", sort: "app" },
  { label: "Client" },
  { label: "Country" },
  { label: "Entry page" },
  { label: "Pages", sort: "pages", numeric: true },
  { label: "Clicks", sort: "clicks", numeric: true },
  { label: "Events", sort: "events", numeric: true },
  { label: "Errors", sort: "errors", numeric: true },
  { label: "Signals" },
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

/** A session's rage, dead and error clicks: those it had, in words; "none" when it had none. */
function SignalCounts({ session }: { session: Session }) {
  const had = SIGNALS.filter((signal) => (session[SIGNAL_COUNTS[signal]] ?? 0) > 0);
  if (had.length === 0) return <span class="hint">none</span>;
  return (
    <span class="signals">
      {had.map((signal) => {
        const count = session[SIGNAL_COUNTS[signal]] ?? 0;
        return (
          <span key={signal} class={`signal ${signal}`}>
            {formatCount(count)} {SIGNAL_NAMES[signal].toLowerCase()}{count === 1 ? "" : "s"}
          </span>
        );
      })}
    </span>
  );
}

function SessionRow({ session, active }: { session: Session; active?: boolean }) {
  const href = `/sessions/${session.session_id}`;
  const described = hasMetadata(session);
  return (
    <tr class="clickable" onClick={(e) => {
      if ((e.target as HTMLElement).closest("a")) return;
      openSession(session.session_id);
    }}>
      <td><a href={href} onClick={onLinkClick}>{formatInstant(session.started_at)}</a></td>
      {active && <td>{formatInstant(session.last_event_at)}</td>}
      <td class="num">{formatDuration(session.duration_ms)}</td>
      <td>{session.app_name}</td>
      {!active && <>
        <td class="client">{formatClient(session).split(" · ").map((part, i) => (
          <Fragment key={part}>{i > 0 && " · "}<span>{part}</span></Fragment>))}</td>
        <td class="country" title={session.country ? countryName(session.country) : undefined}>
          {session.country || "–"}</td>
        <td class="path" title={session.entry_url || undefined}>{session.entry_path || "–"}</td>
        <td class="num">{described ? formatCount(session.page_count ?? 0) : "–"}</td>
        <td class="num">{described ? formatCount(session.click_count ?? 0) : "–"}</td>
      </>}
      <td class="num">{formatCount(session.event_count)}</td>
      <td class={`num${session.error_count ? " has-errors" : ""}`}>{formatCount(session.error_count)}</td>
      {!active && <td class="signals-cell">{described ? <SignalCounts session={session} /> : "–"}</td>}
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
      <div class="table-scroll">
        <table class="sessions">
          <thead>
            <tr>{COLUMNS.map((c) => <SortHeader key={c.label} state={state} {...c} />)}</tr>
          </thead>
          <tbody>
            {sessions.map((s) => <SessionRow key={s.session_id} session={s} />)}
          </tbody>
        </table>
      </div>
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
