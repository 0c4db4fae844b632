// The replay: rrweb-player 1.0.0-alpha.4 (its bundled Replayer plays what bardrr 2.3.1 records) without its
// own controller, driven by Bard's controls: play/pause, speed, skip inactivity, seek, and a timeline with a
// marker for every click, custom event and console error, and below it one for every behaviour signal (rage, dead
// and error clicks), each kind in a colour of its own and named in the legend and the list of events. Events arrive streamed (see eventStream.ts); the
// player starts on the first full snapshot and takes the rest as it comes; the page keeps one copy of them,
// the player's.
import RrwebPlayer from "rrweb-player";
import "rrweb-player/dist/style.css";
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Marker } from "./api";
import { SIGNALS, SIGNAL_NAMES, type Signal } from "./sessionFilters";
import { streamEvents } from "./eventStream";
import { formatCount, formatOffset } from "./format";

export const SPEEDS = [1, 2, 4, 8];
const FULL_SNAPSHOT = 2; // rrweb's EventType.FullSnapshot
export const MARKER_NAMES: Record<Marker["kind"], string> = {
  click: "Click", custom: "Custom event", error: "Error", ...SIGNAL_NAMES,
};
const isSignal = (marker: Marker) => SIGNALS.includes(marker.kind as Signal);

interface Props {
  sessionId: string;
  markers: Marker[];
  /** Open at this moment (ms since the epoch), paused: a funnel step's moment. */
  startAtMs?: number;
  /** Shown beside the replay, above the list of events (the session's details). */
  side?: ComponentChildren;
}

export function Player({ sessionId, markers, startAtMs, side }: Props) {
  const frame = useRef<HTMLDivElement>(null);
  const player = useRef<RrwebPlayer | null>(null);
  const [received, setReceived] = useState(0);
  // loading: nothing to show yet; playable: the player runs while the rest of the session arrives; ready: all in.
  const [status, setStatus] = useState<"loading" | "playable" | "ready" | "empty" | "failed">("loading");
  const [problem, setProblem] = useState("");
  const [playing, setPlaying] = useState(false);
  const [time, setTime] = useState(0);
  const [total, setTotal] = useState(0);
  const [startTime, setStartTime] = useState(0);
  const [speed, setSpeed] = useState(1);
  const [skipInactive, setSkipInactive] = useState(true);

  useEffect(() => {
    const controller = new AbortController();
    let pending: unknown[] = []; // events received before the player exists
    let instance: RrwebPlayer | null = null;
    let count = 0;
    setStatus("loading");

    // The player starts as soon as the page's first full snapshot is in: the first frame does not wait for a
    // long session's last event. Later events go to its Replayer as they arrive; the last one of each chunk
    // through the player itself, which also updates its idea of the session's length.
    const start = () => {
      if (!frame.current) return;
      const width = Math.max(320, frame.current.clientWidth);
      instance = new RrwebPlayer({
        target: frame.current,
        props: { events: pending, width, height: Math.round(width * 9 / 16), autoPlay: false,
                 showController: false, skipInactive: true, mouseTail: false, speed: 1 },
      });
      pending = []; // the player holds them now
      player.current = instance;
      const meta = instance.getMetaData();
      setStartTime(meta.startTime);
      setTotal(meta.totalTime);
      instance.addEventListener("ui-update-current-time", (e: { payload: number }) => setTime(e.payload));
      instance.addEventListener("ui-update-player-state", (e: { payload: string }) =>
        setPlaying(e.payload === "playing"));
      instance.goto(0, false);
      setStatus("playable");
    };
    const add = (chunk: unknown[]) => {
      const replayer = instance!.getReplayer();
      for (let i = 0; i < chunk.length - 1; i++) replayer.addEvent(chunk[i]);
      instance!.addEvent(chunk[chunk.length - 1]);
      // The Replayer takes added events in microtasks of its own; read its length after them.
      const current = instance!;
      void Promise.resolve().then(() => setTotal(current.getMetaData().totalTime));
    };

    streamEvents(sessionId, (chunk) => {
      if (controller.signal.aborted) return;
      count += chunk.length;
      setReceived(count);
      if (instance) {
        add(chunk);
        return;
      }
      for (const event of chunk) pending.push(event);
      if (pending.length >= 2 && pending.some((event) => (event as { type?: number }).type === FULL_SNAPSHOT)) {
        start();
      }
    }, controller.signal).then(() => {
      if (controller.signal.aborted) return;
      if (!instance && pending.length >= 2) start(); // a session without a full snapshot: play what there is
      setStatus(instance ? "ready" : "empty");
    }, (error: unknown) => {
      if (controller.signal.aborted) return;
      setProblem(error instanceof Error ? error.message : String(error));
      setStatus("failed");
    });
    return () => {
      controller.abort();
      player.current?.pause();
      player.current?.$destroy();
      player.current = null;
    };
  }, [sessionId]);

  // Open at the moment asked for (a funnel step's), paused; a new moment on the same session only seeks.
  useEffect(() => {
    const instance = player.current;
    // Once every event is in, so the moment is in the Replayer's hands; without one the player stays at the start.
    if (status !== "ready" || !instance || startAtMs === undefined) return;
    const meta = instance.getMetaData();
    const offset = Math.min(Math.max(0, startAtMs - meta.startTime), meta.totalTime);
    instance.goto(offset, false);
    setTime(offset);
  }, [status, startAtMs]);

  const seek = (offset: number) => {
    const target = Math.min(Math.max(0, offset), total);
    player.current?.goto(target, playing);
    setTime(target);
  };
  const togglePlay = () => {
    if (!player.current) return;
    if (playing) player.current.pause();
    else if (time >= total) player.current.goto(0, true);
    else player.current.play();
  };
  const changeSpeed = (value: number) => {
    setSpeed(value);
    player.current?.setSpeed(value);
  };
  const changeSkip = () => {
    setSkipInactive(!skipInactive);
    player.current?.toggleSkipInactive();
  };
  const ready = status === "playable" || status === "ready";
  const offsetOf = (marker: Marker) => marker.at_ms - startTime;
  const ticks = (shown: Marker[], row: string) => (
    <div class={`ticks ${row}`} aria-hidden="true">
      {ready && shown.map((marker, i) => (
        <span key={i} class={`tick ${marker.kind}`} title={`${MARKER_NAMES[marker.kind]}: ${marker.label ?? ""}`}
          style={{ left: `${(Math.min(Math.max(offsetOf(marker), 0), total) / Math.max(total, 1)) * 100}%` }} />
      ))}
    </div>
  );

  return (
    <div class="player">
      <div class="replay-area">
        <div class="replay-frame" ref={frame} data-testid="replay-frame" />
        {status === "loading" && (
          <p class="state loading" role="status">Loading the replay… {formatCount(received)} events received</p>
        )}
        {status === "playable" && (
          <p class="hint" role="status">Still receiving events: {formatCount(received)} so far</p>
        )}
        {status === "empty" && <p class="state empty">This session has too few events to replay.</p>}
        {status === "failed" && <p class="state failure" role="alert">The replay could not load: {problem}</p>}
        <div class="controls" aria-label="Player controls" role="group">
          <button type="button" class="play" onClick={togglePlay} disabled={!ready}
            aria-label={playing ? "Pause" : "Play"}>{playing ? "❚❚" : "▶"}</button>
          <span class="clock" aria-live="off">{formatOffset(time)} / {formatOffset(total)}</span>
          <div class="timeline">
            <input type="range" min={0} max={Math.max(total, 1)} step={100} value={time} disabled={!ready}
              aria-label="Seek" aria-valuetext={formatOffset(time)}
              onInput={(e) => seek(Number((e.currentTarget as HTMLInputElement).value))} />
            {ticks(markers.filter((marker) => !isSignal(marker)), "events")}
            {ticks(markers.filter(isSignal), "signals")}
          </div>
          <label>Speed
            <select value={speed} disabled={!ready}
              onChange={(e) => changeSpeed(Number((e.currentTarget as HTMLSelectElement).value))}>
              {SPEEDS.map((s) => <option key={s} value={s}>{s}×</option>)}
            </select>
          </label>
          <label class="check">
            <input type="checkbox" checked={skipInactive} disabled={!ready} onChange={changeSkip} />
            Skip inactivity
          </label>
        </div>
        <ul class="legend" aria-label="Legend">
          {(Object.keys(MARKER_NAMES) as Marker["kind"][]).map((kind) => (
            <li key={kind}><span class={`swatch ${kind}`} aria-hidden="true" />{MARKER_NAMES[kind]}</li>
          ))}
        </ul>
      </div>
      <div class="side">
        {side}
        <aside class="markers" aria-label="Events in this session">
          <h2>Events <span class="hint">({formatCount(markers.length)})</span></h2>
          {markers.length === 0 ? <p class="hint">No clicks, custom events, errors or signals.</p> : (
            <ol>
              {markers.map((marker, i) => (
                <li key={i}>
                  <button type="button" class={`marker ${marker.kind}`} disabled={!ready}
                    aria-current={ready && Math.abs(offsetOf(marker) - time) < 500 ? "true" : undefined}
                    onClick={() => seek(offsetOf(marker))}>
                    <span class={`swatch ${marker.kind}`} aria-hidden="true" />
                    <span class="when">{formatOffset(Math.max(0, marker.offset_ms))}</span>
                    <span class="what">{MARKER_NAMES[marker.kind]}</span>
                    <span class="label">{marker.label || (marker.kind === "custom" || marker.kind === "error"
                      ? "" : "(unlabelled element)")}</span>
                  </button>
                </li>
              ))}
            </ol>
          )}
        </aside>
      </div>
    </div>
  );
}
