import { describe, expect, it } from "vitest";
import {
  MAX_STEPS, addStep, emptyForm, fieldForParameter, fromDefinition, moveStep, newStep, removeStep, toDefinition,
  updateStep,
} from "../src/funnelForm";
import { replayMoment } from "../src/funnelMoments";

describe("the funnel form's steps", () => {
  it("adds, removes and reorders, keeping each row's key", () => {
    let form = emptyForm();
    form = updateStep(form, 0, { label: "A" });
    form = addStep(form);
    form = updateStep(form, 1, { kind: "custom", label: "B" });
    const keys = form.steps.map((s) => s.key);
    form = moveStep(form, 1, -1);
    expect(form.steps.map((s) => s.label)).toEqual(["B", "A"]);
    expect(form.steps.map((s) => s.key)).toEqual([keys[1], keys[0]]);
    expect(moveStep(form, 0, -1)).toBe(form);
    expect(moveStep(form, 1, 1)).toBe(form);
    form = removeStep(form, 0);
    expect(form.steps.map((s) => s.label)).toEqual(["A"]);
    expect(removeStep(form, 0)).toBe(form); // a funnel keeps at least one step
  });
  it("stops at the most steps a funnel may have", () => {
    let form = emptyForm();
    for (let i = 0; i < 30; i++) form = addStep(form);
    expect(form.steps).toHaveLength(MAX_STEPS);
  });
});

describe("the definition sent to /v1", () => {
  it("holds only the filters that were set, in a known order", () => {
    const form = { ...emptyForm(), name: "Checkout", apps: ["shop"], to: "2026-02-01", minSeconds: "5",
                   hasErrors: "no" as const, windowSeconds: "3600", steps: [newStep("click", "Add to cart"),
                                                                              newStep("custom", "paid")] };
    const { definition, filterFields } = toDefinition(form);
    expect(definition).toEqual({
      name: "Checkout",
      filters: [{ type: "app_name", names: ["shop"] }, { type: "started", start: null, end: "2026-02-01" },
                { type: "duration", min_ms: 5000, max_ms: null }, { type: "errors", has_errors: false }],
      steps: [{ kind: "click", label: "Add to cart" }, { kind: "custom", label: "paid" }],
      window_seconds: 3600,
    });
    expect(filterFields).toEqual([["apps"], ["from", "to"], ["minSeconds", "maxSeconds"], ["hasErrors"]]);
  });
  it("says the client, page and signal filters in the API's words", () => {
    const form = { ...emptyForm(), name: "F", browsers: ["Chrome"], oses: ["iOS", "Android"], devices: ["mobile"],
                   entryPath: " /checkout ", minPages: "2", rageClicks: "yes" as const, errorClicks: "no" as const,
                   steps: [newStep("rage_click", "Pay"), newStep("dead_click", "Logo")] };
    const { definition, filterFields } = toDefinition(form);
    expect(definition.filters).toEqual([
      { type: "browser", names: ["Chrome"] }, { type: "os", names: ["iOS", "Android"] },
      { type: "device_type", types: ["mobile"] }, { type: "entry_path", prefix: "/checkout" },
      { type: "pages", min_pages: 2, max_pages: null }, { type: "signal", signal: "rage_click", present: true },
      { type: "signal", signal: "error_click", present: false },
    ]);
    expect(filterFields).toEqual([["browsers"], ["oses"], ["devices"], ["entryPath"], ["minPages", "maxPages"],
                                  ["rageClicks"], ["errorClicks"]]);
    expect(definition.steps).toEqual([{ kind: "rage_click", label: "Pay" }, { kind: "dead_click", label: "Logo" }]);
    expect(toDefinition({ ...form, maxPages: "lots" }).definition.filters[4]).toEqual(
      { type: "pages", min_pages: 2, max_pages: "lots" });
  });
  it("reads the client, page and signal filters of a stored funnel back, and saves them unchanged", () => {
    const stored = { name: "F", steps: [{ kind: "error_click" as const, label: "Buy" }], filters: [
      { type: "device_type" as const, types: ["tablet", "bot"] }, { type: "entry_path" as const, prefix: "/" },
      { type: "pages" as const, min_pages: null, max_pages: 3 }, { type: "signal" as const, signal: "dead_click", present: true },
      { type: "signal" as const, signal: "rage_click", present: false }, { type: "browser" as const, names: ["Edge"] },
      { type: "os" as const, names: ["Linux"] }] };
    const { form, partial } = fromDefinition(stored);
    expect(partial).toBe(false); // two signal filters of different signals are two fields of the form
    expect([form.devices, form.entryPath, form.minPages, form.maxPages, form.deadClicks, form.rageClicks,
            form.errorClicks, form.browsers, form.oses]).toEqual([["tablet", "bot"], "/", "", "3", "yes", "no", "",
                                                                 ["Edge"], ["Linux"]]);
    const again = toDefinition(form).definition;
    expect(new Set(again.filters.map((f) => JSON.stringify(f)))).toEqual(new Set(stored.filters.map((f) => JSON.stringify(f))));
    expect(again.steps).toEqual(stored.steps);
    const twice = { ...stored, filters: [...stored.filters, { type: "signal" as const, signal: "dead_click", present: false }] };
    expect(fromDefinition(twice).partial).toBe(true);
  });
  it("says and reads back the country filter", () => {
    const { definition, filterFields } = toDefinition({ ...emptyForm(), name: "F", countries: ["DE", "AT"],
                                                        steps: [newStep("click", "Buy")] });
    expect(definition.filters).toEqual([{ type: "country", codes: ["DE", "AT"] }]);
    expect(filterFields).toEqual([["countries"]]);
    expect(fromDefinition(definition).form.countries).toEqual(["DE", "AT"]);
  });
  it("sends a number it cannot read as typed, for the API to name", () => {
    expect(toDefinition({ ...emptyForm(), windowSeconds: "soon" }).definition.window_seconds).toBe("soon");
    expect(toDefinition({ ...emptyForm(), windowSeconds: " -5 " }).definition.window_seconds).toBe(-5);
  });
  it("keeps a stored duration that is not whole seconds when saved again", () => {
    const stored = { name: "F", steps: [{ kind: "click" as const, label: "x" }],
                     filters: [{ type: "duration" as const, min_ms: 1500, max_ms: 60_250 }] };
    expect(toDefinition(fromDefinition(stored).form).definition.filters).toEqual(stored.filters);
  });
  it("reads a stored funnel back into the form", () => {
    const stored = { name: "F", steps: [{ kind: "custom" as const, label: "x" }], window_seconds: 60,
                     filters: [{ type: "duration" as const, min_ms: 2000, max_ms: null },
                               { type: "app_name" as const, names: ["a"] }, { type: "app_name" as const, names: ["b"] }] };
    const { form, partial } = fromDefinition(stored);
    expect([form.name, form.minSeconds, form.maxSeconds, form.apps, form.windowSeconds]).toEqual(["F", "2", "", ["a"], "60"]);
    expect(partial).toBe(true);
    expect(toDefinition(form).definition.steps).toEqual(stored.steps);
  });
});

describe("where an API error is shown", () => {
  const filterFields = [["apps"], ["from", "to"], ["minSeconds", "maxSeconds"], ["devices"], ["browsers"],
                        ["minPages", "maxPages"], ["rageClicks"], ["entryPath"]] as const;
  it.each([
    ["name", "funnel-name"], ["window_seconds", "funnel-window"], ["steps[2].label", "step-2-label"],
    ["steps[0].kind", "step-0-kind"], ["steps[1].kind", "step-1-kind"], ["steps", "funnel-steps"],
    ["filters[1].end", "funnel-to"], ["filters[2].min_ms", "funnel-min"], ["filters[0].names", "funnel-apps"],
    ["filters[1]", "funnel-from"], ["filters[3].types[0]", "funnel-devices"], ["filters[4].names[1]", "funnel-browsers"],
    ["filters[5].max_pages", "funnel-max-pages"], ["filters[5]", "funnel-min-pages"], ["filters[6].signal", "funnel-rage"],
    ["filters[7].prefix", "funnel-entry"], ["filters[9].names", "funnel-filters"], ["filters", "funnel-filters"],
    ["body", "funnel-form"], [undefined, "funnel-form"],
  ])("%s goes to #%s", (parameter, id) => expect(fieldForParameter(parameter, filterFields.map((f) => [...f]))).toBe(id));
});

describe("the moment a funnel's session opens at", () => {
  const session = { session_id: "s", level: 2, reached_at: [], reached_at_ms: [1000, 5000] };
  it("is when the step was reached, for a completed session", () =>
    expect(replayMoment(session, 2, "completed").atMs).toBe(5000));
  it("is the last step reached, for a dropped session", () =>
    expect(replayMoment(session, 3, "dropped").atMs).toBe(5000));
  it("is the start, for a session that never reached step 1", () =>
    expect(replayMoment({ ...session, level: 0, reached_at_ms: [] }, 1, "dropped").atMs).toBeUndefined());
});
