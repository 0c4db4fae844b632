import { SIGNAL_COUNTS, getJson, type Markers, type Session } from "../api";
import { Failure, Loading, useLoad } from "../components";
import {
  formatClient, formatCount, formatCountry, formatDuration, formatInstant, formatViewport, hasMetadata,
} from "../format";
import { Player } from "../Player";
import { onLinkClick } from "../router";
import { SIGNALS, SIGNAL_NAMES } from "../sessionFilters";

/** An ended session's client, pages, clicks and behaviour signals, beside the replay. The entry URL is the
 * recorded app's, sent by its agent: shown as text, never as a link. */
function SessionDetails({ session }: { session: Session }) {
  const described = hasMetadata(session);
  const count = (n: number | undefined) => (described ? formatCount(n ?? 0) : "–");
  return (
    <section class="details" aria-label="Client and pages">
      <h2>Client and pages</h2>
      <dl>
        <div><dt>Browser</dt><dd>{formatClient({ browser: session.browser, browser_major: session.browser_major })}</dd></div>
        <div><dt>OS</dt><dd>{session.os || "–"}</dd></div>
        <div><dt>Device</dt><dd>{session.device_type || "–"}</dd></div>
        <div><dt>Country</dt><dd>{formatCountry(session.country)}</dd></div>
        <div><dt>Viewport</dt><dd>{formatViewport(session.viewport)}</dd></div>
        <div class="wide"><dt>Entry page</dt><dd class="url">{session.entry_url || session.entry_path || "–"}</dd></div>
        <div class="wide"><dt>Exit page</dt><dd class="url">{session.exit_path || "–"}</dd></div>
        <div><dt>Pages</dt><dd>{count(session.page_count)}</dd></div>
        <div><dt>Clicks</dt><dd>{count(session.click_count)}</dd></div>
        {SIGNALS.map((signal) => {
          const n = session[SIGNAL_COUNTS[signal]] ?? 0;
          return (
            <div key={signal}><dt>{SIGNAL_NAMES[signal]}s</dt>
              <dd class={described && n > 0 ? `signal-count ${signal}` : undefined}>{count(n)}</dd></div>
          );
        })}
      </dl>
      {!described && <p class="hint">This session was recorded before Bard kept client and page details.</p>}
    </section>
  );
}

export function SessionPage({ id, search }: { id: string; search: string }) {
  const session = useLoad(`session:${id}`, (signal) => getJson<Session>(`/v1/sessions/${encodeURIComponent(id)}`,
                                                                       undefined, signal));
  const markers = useLoad(`markers:${id}`, (signal) =>
    getJson<Markers>(`/v1/sessions/${encodeURIComponent(id)}/markers`, undefined, signal));
  const at = Number(new URLSearchParams(search).get("at"));
  const startAtMs = Number.isFinite(at) && at > 0 ? at : undefined;
  if (session.error) {
    return (
      <main>
        <p><a href="/sessions" onClick={onLinkClick}>← Sessions</a></p>
        <Failure error={session.error} retry={session.reload} />
      </main>
    );
  }
  const s = session.data;
  return (
    <main class="session-page">
      <p><a href="/sessions" onClick={onLinkClick}>← Sessions</a></p>
      <h1>Session <code>{id}</code></h1>
      {!s ? <Loading what="the session" /> : (
        <dl class="meta">
          <div><dt>Status</dt><dd>{s.status === "active" ? "Active now" : "Ended"}</dd></div>
          <div><dt>App</dt><dd>{s.app_name}</dd></div>
          <div><dt>Started</dt><dd>{formatInstant(s.started_at)}</dd></div>
          <div><dt>{s.status === "active" ? "Last activity" : "Ended"}</dt>
            <dd>{formatInstant(s.status === "active" ? s.last_event_at : s.ended_at)}</dd></div>
          <div><dt>Duration</dt><dd>{formatDuration(s.duration_ms)}</dd></div>
          <div><dt>Events</dt><dd>{formatCount(s.event_count)}</dd></div>
          <div><dt>Errors</dt><dd class={s.error_count ? "has-errors" : undefined}>{formatCount(s.error_count)}</dd></div>
          {markers.data && s.status === "active" && (
            <div><dt>Clicks</dt><dd>{formatCount(markers.data.markers.filter((m) => m.kind === "click").length)}</dd></div>
          )}
        </dl>
      )}
      {markers.error ? <Failure error={markers.error} retry={markers.reload} /> : null}
      {markers.data?.truncated && (
        <p class="notice">This session has more clicks, custom events, errors and signals than the first{" "}
          {formatCount(markers.data.markers.length)} shown on the timeline.</p>
      )}
      {markers.data ? <Player sessionId={id} markers={markers.data.markers} startAtMs={startAtMs}
                                side={s?.status === "ended" ? <SessionDetails session={s} /> : undefined} />
                    : !markers.error && <Loading what="the session's events" />}
    </main>
  );
}
