import { describe, expect, it } from "vitest";
import {
  DEFAULT_STATE, FIELD_OF_PARAMETER, apiQuery, searchFromState, sortBy, stateFromSearch, withFilters,
} from "../src/sessionQuery";
import { FILTER_KEYS } from "../src/sessionFilters";

describe("the session list's URL state", () => {
  it("round-trips every field", () => {
    const state = { ...DEFAULT_STATE, view: "ended" as const, apps: ["shop", "blog"], from: "2026-01-01", to: "2026-01-31",
                    minSeconds: "10", maxSeconds: "600", hasErrors: "yes" as const, idPrefix: "ab12", sort: "duration" as const,
                    order: "asc" as const, cursor: "CUR" };
    expect(stateFromSearch(searchFromState(state))).toEqual(state);
  });
  it("round-trips the client, page and signal filters", () => {
    const state = { ...DEFAULT_STATE, browsers: ["Chrome", "Mobile Safari"], oses: ["Mac OS X"], devices: ["mobile", "tablet"],
                    entryPath: "/checkout", minPages: "2", maxPages: "9", rageClicks: "yes" as const,
                    deadClicks: "no" as const, errorClicks: "yes" as const, sort: "pages" as const };
    const search = searchFromState(state);
    expect(search).toBe("?browser=Chrome&browser=Mobile+Safari&os=Mac+OS+X&device=mobile&device=tablet"
                        + "&entry=%2Fcheckout&min_pages=2&max_pages=9&rage=yes&dead=no&error_clicks=yes&sort=pages");
    expect(stateFromSearch(search)).toEqual(state);
  });
  it("leaves defaults out of the URL", () => expect(searchFromState(DEFAULT_STATE)).toBe(""));
  it("ignores values it does not know", () => {
    const state = stateFromSearch("?sort=length&order=up&errors=maybe&from=yesterday&view=other&rage=1&dead=true"
                                  + "&browser=&os=");
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
  it("sends the client, page and signal filters as the API names them", () => {
    const query = apiQuery({ ...DEFAULT_STATE, browsers: ["Chrome", "Firefox"], oses: ["iOS"], devices: ["mobile"],
                             entryPath: " /checkout ", minPages: " 2", maxPages: "", rageClicks: "yes",
                             deadClicks: "no", errorClicks: "", sort: "clicks", order: "asc" }, 25);
    expect([...query]).toEqual([
      ["browser", "Chrome"], ["browser", "Firefox"], ["os", "iOS"], ["device_type", "mobile"],
      ["entry_path", "/checkout"], ["min_pages", "2"], ["has_rage_clicks", "true"], ["has_dead_clicks", "false"],
      ["sort", "clicks"], ["order", "asc"], ["limit", "25"],
    ]);
  });
  it("sends the countries, and keeps them in the URL", () => {
    const state = { ...DEFAULT_STATE, countries: ["DE", "JP"] };
    expect(apiQuery(state, 5).getAll("country")).toEqual(["DE", "JP"]);
    expect(searchFromState(state)).toBe("?country=DE&country=JP");
    expect(stateFromSearch("?country=DE&country=JP")).toEqual(state);
    expect(FIELD_OF_PARAMETER.country).toBe("countries");
  });
  it("passes a page count that is not a number as typed, so the API can name it", () => {
    expect(apiQuery({ ...DEFAULT_STATE, minPages: "many" }, 5).get("min_pages")).toBe("many");
  });
  it("knows the field of every filter parameter the API may refuse", () => {
    const parameters = ["app", "started_after", "started_before", "min_duration_ms", "max_duration_ms", "has_errors",
                        "browser", "os", "device_type", "country", "entry_path", "min_pages", "max_pages", "has_rage_clicks",
                        "has_dead_clicks", "has_error_clicks", "id_prefix"];
    expect(Object.keys(FIELD_OF_PARAMETER).sort()).toEqual([...parameters].sort());
    // each filter field of the form is named by exactly one parameter
    expect(new Set(Object.values(FIELD_OF_PARAMETER))).toEqual(new Set([...FILTER_KEYS, "idPrefix"]));
    expect([FIELD_OF_PARAMETER.device_type, FIELD_OF_PARAMETER.has_rage_clicks]).toEqual(["devices", "rageClicks"]);
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
    expect(sortBy(byDuration, "pages")).toMatchObject({ sort: "pages", order: "desc" });
    expect(sortBy(sortBy(byDuration, "clicks"), "clicks")).toMatchObject({ sort: "clicks", order: "asc" });
    expect(stateFromSearch("?sort=clicks").sort).toBe("clicks");
  });
  it("starts paging over on a filter change", () => {
    expect(withFilters({ ...DEFAULT_STATE, before: "B" }, { apps: ["x"] })).toEqual({ ...DEFAULT_STATE, apps: ["x"] });
  });
});
