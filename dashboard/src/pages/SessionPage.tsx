import { getJson, type Markers, type Session } from "../api";
import { Failure, Loading, useLoad } from "../components";
import { formatCount, formatDuration, formatInstant } from "../format";
import { Player } from "../Player";
import { onLinkClick } from "../router";

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
          {markers.data && (
            <div><dt>Clicks</dt><dd>{formatCount(markers.data.markers.filter((m) => m.kind === "click").length)}</dd></div>
          )}
        </dl>
      )}
      {markers.error ? <Failure error={markers.error} retry={markers.reload} /> : null}
      {markers.data?.truncated && (
        <p class="notice">This session has more clicks, custom events and errors than the first{" "}
          {formatCount(markers.data.markers.length)} shown on the timeline.</p>
      )}
      {markers.data ? <Player sessionId={id} markers={markers.data.markers} startAtMs={startAtMs} />
                    : !markers.error && <Loading what="the session's events" />}
    </main>
  );
}
