// Where a funnel's listed session opens in the player: the moment that matters. Unit-tested.
import type { StepSession } from "./api";

export interface ReplayMoment {
  atMs?: number; // ms since the epoch; undefined: the session's start
  description: string;
}

/** Completed at step k: when step k was reached. Dropped at step k: when the session reached its last step
 * (k-1), or its start when it never reached step 1. */
export function replayMoment(session: StepSession, step: number, outcome: "completed" | "dropped"): ReplayMoment {
  const moments = session.reached_at_ms ?? [];
  if (outcome === "completed") {
    const at = moments[step - 1];
    return at !== undefined ? { atMs: at, description: `reached step ${step}` } : { description: "from the start" };
  }
  if (session.level > 0 && moments[session.level - 1] !== undefined) {
    return { atMs: moments[session.level - 1], description: `last reached step ${session.level}` };
  }
  return { description: "never reached step 1: from the start" };
}
