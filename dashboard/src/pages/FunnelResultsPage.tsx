import { useState } from "preact/hooks";
import { getJson, type FunnelResults, type StepResult, type StepSession, type StepSessions } from "../api";
import { Empty, Failure, Loading, TextField, errorParameter, useLoad } from "../components";
import { formatCount, formatGap, formatInstant, formatPercent } from "../format";
import { navigate, onLinkClick } from "../router";
import { replayMoment } from "../funnelMoments";
import { STEP_KIND_NAMES } from "../funnelForm";

const LIST_PAGE = 10;

function rangeFrom(search: string): { start: string; end: string } {
  const params = new URLSearchParams(search);
  return { start: params.get("start") ?? "", end: params.get("end") ?? "" };
}

/** Which step's list is open, and its pages so far (the cursors that led there), kept in the URL so that the
 * back button from the player returns to the same list and page. */
interface OpenList {
  step: number;
  outcome: "completed" | "dropped";
  afters: string[];
}

function openListFrom(search: string): OpenList | null {
  const params = new URLSearchParams(search);
  const found = /^(\d+)-(completed|dropped)$/.exec(params.get("list") ?? "");
  if (!found) return null;
  const afters = (params.get("pages") ?? "").split(",").filter(Boolean);
  return { step: Number(found[1]), outcome: found[2] as OpenList["outcome"], afters };
}

function resultsUrl(id: string, range: { start: string; end: string }, list: OpenList | null): string {
  const query = rangeQuery(range);
  if (list) {
    query.set("list", `${list.step}-${list.outcome}`);
    if (list.afters.length) query.set("pages", list.afters.join(","));
  }
  const text = query.toString();
  return `/funnels/${id}${text ? `?${text}` : ""}`;
}

function rangeQuery(range: { start: string; end: string }): URLSearchParams {
  const query = new URLSearchParams();
  if (range.start) query.set("start", range.start);
  if (range.end) query.set("end", range.end);
  return query;
}

export function FunnelResultsPage({ id, search }: { id: string; search: string }) {
  const range = rangeFrom(search);
  const query = rangeQuery(range);
  query.set("ids_limit", "0");
  const results = useLoad(`${id}?${query}`, (signal) =>
    getJson<FunnelResults>(`/v1/funnels/${encodeURIComponent(id)}/results`, query, signal));
  const parameter = errorParameter(results.error);
  const rangeError = parameter === "start" || parameter === "end" ? (results.error as Error).message : undefined;
  const data = results.data;
  return (
    <main>
      <p><a href="/funnels" onClick={onLinkClick}>← Funnels</a></p>
      <div class="title-row">
        <h1>{data ? data.funnel.name : "Funnel"}</h1>
        {data && <a class="button" href={`/funnels/${id}/edit`} onClick={onLinkClick}>Edit funnel</a>}
      </div>
      <RangeForm key={search} id={id} range={range} parameter={parameter} message={rangeError} />
      {results.error && !rangeError ? <Failure error={results.error} retry={results.reload} />
        : !data ? (results.error ? null : <Loading what="the funnel's results" />)
        : <Results id={id} results={data} range={range} list={openListFrom(search)} />}
    </main>
  );
}

function RangeForm({ id, range, parameter, message }: {
  id: string; range: { start: string; end: string }; parameter?: string; message?: string;
}) {
  const [draft, setDraft] = useState(range);
  const apply = (event: Event) => {
    event.preventDefault();
    navigate(resultsUrl(id, draft, null));
  };
  return (
    <form class="filters" onSubmit={apply} aria-label="Date range">
      <TextField id="range-start" label="Sessions started from (UTC day)" type="date" value={draft.start}
        onValue={(start) => setDraft({ ...draft, start })} error={parameter === "start" ? message : undefined} />
      <TextField id="range-end" label="until (inclusive)" type="date" value={draft.end}
        onValue={(end) => setDraft({ ...draft, end })} error={parameter === "end" ? message : undefined} />
      <div class="actions">
        <button type="submit" class="primary">Apply</button>
        <a href={`/funnels/${id}`} onClick={onLinkClick}>All dates</a>
      </div>
    </form>
  );
}

function Results({ id, results, range, list }: {
  id: string; results: FunnelResults; range: { start: string; end: string }; list: OpenList | null;
}) {
  if (results.entered === 0) {
    return <Empty><p>No ended session matches this funnel's filters{range.start || range.end ? " in this date range" : ""}.</p></Empty>;
  }
  return (
    <section aria-label="Results">
      <p class="summary"><strong>{formatCount(results.entered)}</strong> sessions entered the funnel
        {results.funnel.window_seconds ? `; each had ${formatGap(results.funnel.window_seconds * 1000)} from step 1` : ""}.</p>
      <ol class="funnel-steps">
        {results.steps.map((step) => (
          <Step key={step.number} id={id} step={step} entered={results.entered} range={range}
            list={list && list.step === step.number ? list : null} />
        ))}
      </ol>
    </section>
  );
}

function Step({ id, step, entered, range, list }: {
  id: string; step: StepResult; entered: number; range: { start: string; end: string }; list: OpenList | null;
}) {
  const open = list?.outcome ?? null;
  const setOpen = (outcome: "completed" | "dropped" | null) =>
    navigate(resultsUrl(id, range, outcome ? { step: step.number, outcome, afters: [] } : null), { replace: true });
  const width = entered ? (step.completed / entered) * 100 : 0;
  const kind = STEP_KIND_NAMES[step.kind] ?? step.kind;
  return (
    <li class="funnel-step" data-step={step.number}>
      <h2><span class="step-number">{step.number}</span> {kind} “{step.label}”</h2>
      <div class="bar" role="img" aria-label={`${formatPercent(step.conversion_from_start)} of entered sessions`}>
        <div class="bar-fill" style={{ width: `${width}%` }} />
      </div>
      <dl class="step-figures">
        <div><dt>Completed</dt><dd>{formatCount(step.completed)}</dd></div>
        <div><dt>of entered</dt><dd>{formatPercent(step.conversion_from_start)}</dd></div>
        <div><dt>of previous step</dt><dd>{formatPercent(step.conversion_from_previous)}</dd></div>
        <div><dt>Median time from previous</dt><dd>{step.number === 1 ? "–" : formatGap(step.median_ms_from_previous)}</dd></div>
        <div><dt>Dropped here</dt><dd>{formatCount(step.dropped)}</dd></div>
      </dl>
      <div class="step-lists" role="group" aria-label={`Sessions of step ${step.number}`}>
        <button type="button" aria-expanded={open === "completed"} disabled={step.completed === 0}
          onClick={() => setOpen(open === "completed" ? null : "completed")}>
          Completed sessions ({formatCount(step.completed)})
        </button>
        <button type="button" aria-expanded={open === "dropped"} disabled={step.dropped === 0}
          onClick={() => setOpen(open === "dropped" ? null : "dropped")}>
          Dropped sessions ({formatCount(step.dropped)})
        </button>
      </div>
      {list && <StepSessionList id={id} list={list} range={range} />}
    </li>
  );
}

function StepSessionList({ id, list, range }: { id: string; list: OpenList; range: { start: string; end: string } }) {
  const { step, outcome, afters } = list;
  const setAfters = (pages: string[]) => navigate(resultsUrl(id, range, { ...list, afters: pages }), { replace: true });
  const after = afters[afters.length - 1] ?? "";
  const query = rangeQuery(range);
  query.set("limit", String(LIST_PAGE));
  if (after) query.set("after", after);
  const page = useLoad(`${id}/${step}/${outcome}?${query}`, (signal) =>
    getJson<StepSessions>(`/v1/funnels/${encodeURIComponent(id)}/steps/${step}/${outcome}`, query, signal));
  if (page.error) return <Failure error={page.error} retry={page.reload} />;
  if (!page.data) return <Loading what="sessions" />;
  return (
    <div class="step-sessions" aria-label={`${outcome === "completed" ? "Completed" : "Dropped"} at step ${step}`}>
      <ul>
        {page.data.sessions.map((session) => <StepSessionLink key={session.session_id} session={session}
                                                               step={step} outcome={outcome} />)}
      </ul>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={afters.length === 0} onClick={() => setAfters(afters.slice(0, -1))}>
          ← Previous
        </button>
        <button type="button" disabled={!page.data.next_after}
          onClick={() => setAfters([...afters, page.data!.next_after!])}>Next →</button>
      </nav>
    </div>
  );
}

function StepSessionLink({ session, step, outcome }: { session: StepSession; step: number; outcome: "completed" | "dropped" }) {
  const moment = replayMoment(session, step, outcome);
  const href = `/sessions/${session.session_id}${moment.atMs !== undefined ? `?at=${moment.atMs}` : ""}`;
  return (
    <li>
      <a href={href} onClick={onLinkClick}>
        <code>{session.session_id.slice(0, 8)}</code> {moment.description}
        {moment.atMs !== undefined ? ` (${formatInstant(new Date(moment.atMs).toISOString())})` : ""}
      </a>
    </li>
  );
}
