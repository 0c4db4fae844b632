// A session's events, read as they arrive: /v1/sessions/{id}/events as NDJSON (one event per line), parsed
// line by line, so the player can start on the first chunk (the full snapshot comes first) and no second copy
// of the session (the whole body as text) is ever held.
import { request } from "./api";

/** Split a stream of text into lines; ``onLines`` gets each chunk's complete lines. */
export class LineSplitter {
  private rest = "";
  constructor(private readonly onLines: (lines: string[]) => void) {}

  push(text: string): void {
    const parts = (this.rest + text).split("\n");
    this.rest = parts.pop() ?? "";
    const lines = parts.filter((line) => line.trim() !== "");
    if (lines.length) this.onLines(lines);
  }

  end(): void {
    if (this.rest.trim()) this.onLines([this.rest]);
    this.rest = "";
  }
}

export async function streamEvents(
  sessionId: string,
  onEvents: (events: unknown[]) => void,
  signal: AbortSignal,
): Promise<number> {
  const response = await request(`/v1/sessions/${encodeURIComponent(sessionId)}/events`, {
    headers: { Accept: "application/x-ndjson" },
    signal,
  });
  let count = 0;
  const splitter = new LineSplitter((lines) => {
    const events = lines.map((line) => JSON.parse(line) as unknown);
    count += events.length;
    onEvents(events);
  });
  if (!response.body) {
    splitter.push(await response.text());
    splitter.end();
    return count;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    splitter.push(value);
  }
  splitter.end();
  return count;
}
