import { useState } from "preact/hooks";
import {
  getJson, type BreakdownRow, type FunnelResults, type StepResult, type StepSession, type StepSessions,
  type TrendPoint,
} from "../api";
import { Empty, Failure, Loading, TextField, errorParameter, useLoad } from "../components";
import { formatCount, formatGap, formatInstant, formatPercent } from "../format";
import { navigate, onLinkClick } from "../router";
import { replayMoment } from "../funnelMoments";
import { BREAKDOWN_NAMES, STEP_KIND_NAMES } from "../funnelForm";
import {
  breakdownValueName, formatBound, histogramBins, ratio, rowDropped, rowKey, rowParams, trendDescription,
} from "../funnelFigures";

const LIST_PAGE = 10;

function rangeFrom(search: string): { start: string; end: string } {
  const params = new URLSearchParams(search);
  return { start: params.get("start") ?? "", end: params.get("end") ?? "" };
}

/** Which step's list is open (of every session, or of one breakdown row: its ``rowKey``), and its pages so far
 * (the cursors that led there), kept in the URL so that the back button from the player returns to the same list
 * and page. */
interface OpenList {
  step: number;
  outcome: "completed" | "dropped";
  afters: string[];
  row?: string;
}

function openListFrom(search: string): OpenList | null {
  const params = new URLSearchParams(search);
  const found = /^(\d+)-(completed|dropped)$/.exec(params.get("list") ?? "");
  if (!found) return null;
  const afters = (params.get("pages") ?? "").split(",").filter(Boolean);
  const row = params.get("row");
  return { step: Number(found[1]), outcome: found[2] as OpenList["outcome"], afters,
           ...(row !== null && rowParams(row) ? { row } : {}) };
}

function resultsUrl(id: string, range: { start: string; end: string }, list: OpenList | null): string {
  const query = rangeQuery(range);
  if (list) {
    query.set("list", `${list.step}-${list.outcome}`);
    if (list.row !== undefined) query.set("row", list.row);
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

type Range = { start: string; end: string };

function Results({ id, results, range, list }: {
  id: string; results: FunnelResults; range: Range; list: OpenList | null;
}) {
  const excluded = results.excluded ?? 0;
  const funnel = results.funnel;
  if (results.entered === 0) {
    return (
      <Empty>
        <p>{excluded > 0
          ? `Every session that matches this funnel's filters (${formatCount(excluded)}) was taken out by an exclusion.`
          : `No ended session matches this funnel's filters${range.start || range.end ? " in this date range" : ""}.`}</p>
      </Empty>
    );
  }
  const last = results.steps[results.steps.length - 1];
  const stepList = list && list.row === undefined ? list : null;
  return (
    <section aria-label="Results">
      <p class="summary"><strong>{formatCount(results.entered)}</strong> sessions entered the funnel
        {funnel.window_seconds ? `; each had ${formatGap(funnel.window_seconds * 1000)} from step 1` : ""}
        {last ? `; ${formatPercent(last.conversion_from_start)} completed every step` : ""}.
        {funnel.order === "strict" ? " Steps: strictly in order (nothing else between two steps)." : ""}
        {funnel.order === "any" ? " Steps: any order (step k counts the sessions that did k of the steps)." : ""}</p>
      {funnel.exclusions?.length ? (
        <p class="excluded" data-testid="excluded"><strong>{formatCount(excluded)}</strong>{" "}
          {excluded === 1 ? "session was" : "sessions were"} taken out by {funnel.exclusions.length === 1
            ? "the exclusion" : `one of the ${funnel.exclusions.length} exclusions`}:{" "}
          {funnel.exclusions.map((e) => `${STEP_KIND_NAMES[e.kind] ?? e.kind} “${e.label}” between steps ${e.from_step}`
            + ` and ${e.to_step}`).join("; ")}.</p>
      ) : null}
      <ol class="funnel-steps">
        {results.steps.map((step) => (
          <Step key={step.number} id={id} step={step} entered={results.entered} range={range}
            list={stepList && stepList.step === step.number ? stepList : null} />
        ))}
      </ol>
      {results.breakdown && funnel.breakdown && (
        <Breakdown id={id} results={results} rows={results.breakdown} range={range}
          list={list && list.row !== undefined ? list : null} />
      )}
      {results.trend && results.trend.points.length > 0 && (
        <Trend period={results.trend.period} points={results.trend.points} />
      )}
    </section>
  );
}

/** A median and a p90 in one figure: "1.2 s (p90 3 s)". */
function Times({ median, p90 }: { median?: number | null; p90?: number | null }) {
  return <>{formatGap(median)}{p90 !== null && p90 !== undefined ? <span class="p90"> · p90 {formatGap(p90)}</span> : null}</>;
}

function Step({ id, step, entered, range, list }: {
  id: string; step: StepResult; entered: number; range: Range; list: OpenList | null;
}) {
  const open = list?.outcome ?? null;
  const setOpen = (outcome: "completed" | "dropped" | null) =>
    navigate(resultsUrl(id, range, outcome ? { step: step.number, outcome, afters: [] } : null), { replace: true });
  const width = entered ? (step.completed / entered) * 100 : 0;
  const kind = STEP_KIND_NAMES[step.kind] ?? step.kind;
  const first = step.number === 1;
  return (
    <li class="funnel-step" data-step={step.number}>
      <h2><span class="step-number">{step.number}</span> {kind} “{step.label}”</h2>
      <div class="bar" role="img" aria-label={`${formatPercent(step.conversion_from_start)} of entered sessions`}>
        <div class="bar-fill" style={{ width: `${width}%` }} />
      </div>
      <div class="step-body">
        <dl class="step-figures">
          <div><dt>Completed</dt><dd>{formatCount(step.completed)}</dd></div>
          <div><dt>of entered</dt><dd>{formatPercent(step.conversion_from_start)}</dd></div>
          <div><dt>of previous step</dt><dd>{formatPercent(step.conversion_from_previous)}</dd></div>
          <div><dt>Median time from previous</dt>
            <dd>{first ? "–" : <Times median={step.median_ms_from_previous} p90={step.p90_ms_from_previous} />}</dd></div>
          <div><dt>Median time from step 1</dt>
            <dd>{first ? "–" : <Times median={step.median_ms_from_start} p90={step.p90_ms_from_start} />}</dd></div>
          <div><dt>Dropped here</dt><dd>{formatCount(step.dropped)}</dd></div>
        </dl>
        {!first && <TimeToConvert step={step} />}
      </div>
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

/** The time from step 1 to this step, as labelled bars: each bar's range and count are its text. */
function TimeToConvert({ step }: { step: StepResult }) {
  const bins = histogramBins(step.time_to_convert);
  if (!bins.length) return null;
  const most = Math.max(...bins.map((bin) => bin.count));
  const binMs = bins[0].toMs - bins[0].fromMs;
  const captionId = `ttc-${step.number}`;
  return (
    <figure class="histogram" aria-labelledby={captionId}>
      <figcaption id={captionId}>Time to convert from step 1</figcaption>
      <ol>
        {bins.map((bin) => (
          <li key={bin.fromMs} title={bin.description}>
            <span class="histogram-count" aria-hidden="true">{bin.count ? formatCount(bin.count) : ""}</span>
            <span class="histogram-bar" style={{ height: `${(bin.count / most) * 100}%` }} />
            <span class="visually-hidden">{bin.description}</span>
          </li>
        ))}
      </ol>
      <div class="histogram-axis" aria-hidden="true">
        <span>{formatBound(bins[0].fromMs, binMs)}</span><span>{formatBound(bins[bins.length - 1].toMs, binMs)}</span>
      </div>
    </figure>
  );
}

/** Per breakdown value: entered, and per step completed (with its share of the row's entered) and dropped; each
 * count lists that row's sessions of the step. */
function Breakdown({ id, results, rows, range, list }: {
  id: string; results: FunnelResults; rows: BreakdownRow[]; range: Range; list: OpenList | null;
}) {
  const breakdown = results.funnel.breakdown!;
  const name = BREAKDOWN_NAMES[breakdown.property] ?? breakdown.property;
  const openRow = list ? rows.find((row) => rowKey(row) === list.row) : undefined;
  const choose = (row: BreakdownRow, step: number, outcome: "completed" | "dropped") => {
    const same = list && list.row === rowKey(row) && list.step === step && list.outcome === outcome;
    navigate(resultsUrl(id, range, same ? null : { step, outcome, afters: [], row: rowKey(row) }), { replace: true });
  };
  return (
    <section class="breakdown" aria-labelledby="breakdown-heading">
      <h2 id="breakdown-heading">By {name.toLowerCase()}</h2>
      <p class="hint">The {breakdown.limit ?? 10} values with the most entered sessions, then every other value in one
        row. A count lists its sessions.</p>
      <div class="table-scroll">
        <table class="breakdown-table">
          <thead>
            <tr>
              <th scope="col">{name}</th>
              <th scope="col">Entered</th>
              {results.steps.map((step) => (
                <th key={step.number} scope="col" title={`${STEP_KIND_NAMES[step.kind] ?? step.kind} “${step.label}”`}>
                  Step {step.number}<span class="hint"> {step.label}</span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => {
              const value = breakdownValueName(row);
              const key = rowKey(row);
              return (
                <tr key={key} data-row={key} class={row.other ? "other" : undefined}>
                  <th scope="row">{row.value === "" || row.other ? <em>{value}</em> : value}</th>
                  <td>{formatCount(row.entered)}</td>
                  {results.steps.map((step) => {
                    const completed = row.completed[step.number - 1] ?? 0;
                    const dropped = rowDropped(row, step.number);
                    const pressed = (outcome: string) =>
                      list?.row === key && list.step === step.number && list.outcome === outcome;
                    return (
                      <td key={step.number} class="breakdown-cell">
                        <button type="button" class="link" aria-pressed={pressed("completed")} disabled={!completed}
                          aria-label={`${value}: ${formatCount(completed)} completed step ${step.number}`}
                          onClick={() => choose(row, step.number, "completed")}>{formatCount(completed)}</button>
                        <span class="hint"> {formatPercent(ratio(completed, row.entered))}</span>
                        <br />
                        <button type="button" class="link dropped" aria-pressed={pressed("dropped")} disabled={!dropped}
                          aria-label={`${value}: ${formatCount(dropped)} dropped at step ${step.number}`}
                          onClick={() => choose(row, step.number, "dropped")}>{formatCount(dropped)} dropped</button>
                      </td>
                    );
                  })}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {list && openRow && (
        <div class="breakdown-sessions">
          <h3>{name} {breakdownValueName(openRow)}: {list.outcome === "completed" ? "completed" : "dropped at"} step {list.step}
            {" "}<button type="button" class="link" onClick={() => navigate(resultsUrl(id, range, null), { replace: true })}>
              Close</button></h3>
          <StepSessionList id={id} list={list} range={range} />
        </div>
      )}
    </section>
  );
}

/** Entered and completed (every step) per day or week, as bars with the figures in a table under them. */
function Trend({ period, points }: { period: "day" | "week"; points: TrendPoint[] }) {
  const most = Math.max(1, ...points.map((point) => point.entered));
  const slot = 10;
  const height = 60;
  const chartWidth = Math.min(Math.max(points.length * 36, 240), 900);
  return (
    <section class="trend" aria-labelledby="trend-heading">
      <h2 id="trend-heading">Conversion by {period}</h2>
      <svg class="trend-chart" viewBox={`0 0 ${points.length * slot} ${height}`} preserveAspectRatio="none"
        style={{ width: `${chartWidth}px` }} role="img"
        aria-label={`Entered and completed sessions per ${period}, ${points[0].start} to ${points[points.length - 1].start}`}>
        {points.map((point, i) => {
          const entered = (point.entered / most) * height;
          const completed = (point.completed / most) * height;
          return (
            <g key={point.start}>
              <title>{trendDescription(point, period)}</title>
              <rect class="entered" x={i * slot + 1} y={height - entered} width={slot - 2} height={entered} />
              <rect class="completed" x={i * slot + 1} y={height - completed} width={slot - 2} height={completed} />
            </g>
          );
        })}
      </svg>
      <div class="trend-axis" aria-hidden="true" style={{ width: `${chartWidth}px` }}>
        <span>{points[0].start}</span>{points.length > 1 && <span>{points[points.length - 1].start}</span>}
      </div>
      <ul class="legend">
        <li><span class="swatch entered" /> entered</li>
        <li><span class="swatch completed" /> completed every step</li>
      </ul>
      <details>
        <summary>As a table</summary>
        <table class="trend-table">
          <thead><tr><th scope="col">{period === "week" ? "Week of" : "Day"}</th><th scope="col">Entered</th>
            <th scope="col">Completed</th><th scope="col">Conversion</th></tr></thead>
          <tbody>
            {points.map((point) => (
              <tr key={point.start}><td>{point.start}</td><td>{formatCount(point.entered)}</td>
                <td>{formatCount(point.completed)}</td><td>{formatPercent(ratio(point.completed, point.entered))}</td></tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  );
}

function StepSessionList({ id, list, range }: { id: string; list: OpenList; range: Range }) {
  const { step, outcome, afters } = list;
  const setAfters = (pages: string[]) => navigate(resultsUrl(id, range, { ...list, afters: pages }), { replace: true });
  const after = afters[afters.length - 1] ?? "";
  const query = rangeQuery(range);
  query.set("limit", String(LIST_PAGE));
  if (after) query.set("after", after);
  for (const [name, value] of Object.entries(list.row !== undefined ? rowParams(list.row) ?? {} : {})) {
    query.set(name, value);
  }
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
