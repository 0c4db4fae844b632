import { describe, expect, it } from "vitest";
import { DEFAULT_STATE, apiQuery, searchFromState, sortBy, stateFromSearch, withFilters } from "../src/sessionQuery";

describe("the session list's URL state", () => {
  it("round-trips every field", () => {
    const state = { ...DEFAULT_STATE, view: "ended" as const, apps: ["shop", "blog"], from: "2026-01-01", to: "2026-01-31",
                    minSeconds: "10", maxSeconds: "600", hasErrors: "yes" as const, idPrefix: "ab12", sort: "duration" as const,
                    order: "asc" as const, cursor: "CUR" };
    expect(stateFromSearch(searchFromState(state))).toEqual(state);
  });
  it("leaves defaults out of the URL", () => expect(searchFromState(DEFAULT_STATE)).toBe(""));
  it("ignores values it does not know", () => {
    const state = stateFromSearch("?sort=length&order=up&errors=maybe&from=yesterday&view=other");
    expect(state).toEqual(DEFAULT_STATE);
  });
  it("keeps one of cursor and before", () => {
    expect(searchFromState({ ...DEFAULT_STATE, cursor: "A", before: "B" })).toBe("?cursor=A");
    expect(searchFromState({ ...DEFAULT_STATE, before: "B" })).toBe("?before=B");
  });
});

describe("the /v1 query", () => {
  it("turns days and seconds into the API's instants and milliseconds", () => {
    const query = apiQuery({ ...DEFAULT_STATE, apps: ["shop"], from: "2026-01-01", to: "2026-01-31", minSeconds: "10",
                             maxSeconds: " 600 ", hasErrors: "no", idPrefix: " AB " }, 25);
    expect(Object.fromEntries(query)).toEqual({
      app: "shop", started_after: "2026-01-01T00:00:00Z", started_before: "2026-02-01T00:00:00Z",
      min_duration_ms: "10000", max_duration_ms: "600000", has_errors: "false", id_prefix: "AB",
      sort: "start", order: "desc", limit: "25",
    });
  });
  it("crosses a year's end for an inclusive last day", () => {
    expect(apiQuery({ ...DEFAULT_STATE, to: "2026-12-31" }, 5).get("started_before")).toBe("2027-01-01T00:00:00Z");
  });
  it("takes fractions of a second, and passes what is not a number as typed, so the API can name it", () => {
    expect(apiQuery({ ...DEFAULT_STATE, minSeconds: "1.5" }, 5).get("min_duration_ms")).toBe("1500");
    expect(apiQuery({ ...DEFAULT_STATE, minSeconds: ".25" }, 5).get("min_duration_ms")).toBe("250");
    expect(apiQuery({ ...DEFAULT_STATE, minSeconds: "soon" }, 5).get("min_duration_ms")).toBe("soon");
    expect(apiQuery({ ...DEFAULT_STATE, minSeconds: "-3" }, 5).get("min_duration_ms")).toBe("-3");
  });
  it("sends the page's cursor", () => {
    expect(apiQuery({ ...DEFAULT_STATE, before: "B" }, 5).get("before")).toBe("B");
  });
});

describe("sorting and filtering", () => {
  it("flips the order of the same column and starts a new one at its natural order", () => {
    const byDuration = sortBy({ ...DEFAULT_STATE, cursor: "X" }, "duration");
    expect([byDuration.sort, byDuration.order, byDuration.cursor]).toEqual(["duration", "desc", ""]);
    expect(sortBy(byDuration, "duration").order).toBe("asc");
    expect(sortBy(byDuration, "app").order).toBe("asc");
  });
  it("starts paging over on a filter change", () => {
    expect(withFilters({ ...DEFAULT_STATE, before: "B" }, { apps: ["x"] })).toEqual({ ...DEFAULT_STATE, apps: ["x"] });
  });
});
