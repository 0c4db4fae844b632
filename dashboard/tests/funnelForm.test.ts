import { describe, expect, it } from "vitest";
import {
  MAX_EXCLUSIONS, MAX_STEPS, addExclusion, addStep, emptyForm, fieldForParameter, fromDefinition, moveStep, newStep,
  removeExclusion, removeStep, toDefinition, updateExclusion, updateStep, type CleanDefinition, type FunnelForm,
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
  it("stops at the most steps a funnel may have: 30", () => {
    let form = emptyForm();
    for (let i = 0; i < 40; i++) form = addStep(form);
    expect(MAX_STEPS).toBe(30);
    expect(form.steps).toHaveLength(30);
  });
});

describe("the funnel form's order, exclusions and breakdown", () => {
  const threeSteps = () => ({ ...emptyForm(), name: "F", steps: [newStep("click", "A"), newStep("click", "B"),
                                                                   newStep("custom", "C")] });
  it("adds an exclusion over the whole funnel, edits and removes it, and stops at ten", () => {
    let form = addExclusion(threeSteps());
    expect(form.exclusions).toMatchObject([{ kind: "click", label: "", fromStep: 1, toStep: 3 }]);
    form = updateExclusion(form, 0, { kind: "custom", label: "cancelled", fromStep: 2 });
    expect(form.exclusions[0]).toMatchObject({ kind: "custom", label: "cancelled", fromStep: 2, toStep: 3 });
    expect(removeExclusion(form, 0).exclusions).toEqual([]);
    for (let i = 0; i < 20; i++) form = addExclusion(form);
    expect(form.exclusions).toHaveLength(MAX_EXCLUSIONS);
    expect(new Set(form.exclusions.map((e) => e.key)).size).toBe(MAX_EXCLUSIONS);
  });
  it("keeps an exclusion's steps among those left when a step is removed", () => {
    const form = updateExclusion(addExclusion(threeSteps()), 0, { fromStep: 2, toStep: 3 });
    expect(removeStep(form, 0).exclusions[0]).toMatchObject({ fromStep: 2, toStep: 2 }); // the API names it
  });
  it("sends only what differs from the defaults", () => {
    const plain = toDefinition(threeSteps()).definition;
    expect(Object.keys(plain).sort()).toEqual(["filters", "name", "steps"]);
    let form: FunnelForm = { ...addExclusion(threeSteps()), order: "strict", breakdownProperty: "browser" };
    form = updateExclusion(form, 0, { kind: "custom", label: "cancelled", fromStep: 1, toStep: 2 });
    const { definition } = toDefinition(form);
    expect(definition.order).toBe("strict");
    expect(definition.exclusions).toEqual([{ kind: "custom", label: "cancelled", from_step: 1, to_step: 2 }]);
    expect(definition.breakdown).toEqual({ property: "browser", limit: 10 });
    expect(toDefinition({ ...form, breakdownLimit: "" }).definition.breakdown).toEqual({ property: "browser" });
    expect(toDefinition({ ...form, breakdownLimit: "many" }).definition.breakdown).toEqual(
      { property: "browser", limit: "many" }); // as typed: the API names breakdown.limit
  });
  it("reads the order, exclusions and breakdown of a stored funnel back, and saves them unchanged", () => {
    const stored: CleanDefinition = {
      name: "F", filters: [], steps: [{ kind: "click", label: "A" }, { kind: "custom", label: "B" },
                                      { kind: "click", label: "C" }],
      order: "any", breakdown: { property: "entry_path", limit: 3 },
      exclusions: [{ kind: "dead_click", label: "Logo", from_step: 1, to_step: 3 },
                   { kind: "custom", label: "cancelled", from_step: 2, to_step: 3 }],
    };
    const { form, partial } = fromDefinition(stored);
    expect(partial).toBe(false);
    expect([form.order, form.breakdownProperty, form.breakdownLimit]).toEqual(["any", "entry_path", "3"]);
    expect(form.exclusions.map((e) => [e.kind, e.label, e.fromStep, e.toStep])).toEqual(
      [["dead_click", "Logo", 1, 3], ["custom", "cancelled", 2, 3]]);
    expect(toDefinition(form).definition).toEqual(stored);
  });
  it("reads a funnel that left the defaults out as the defaults", () => {
    const { form } = fromDefinition({ name: "F", filters: [], steps: [{ kind: "click", label: "A" }],
                                      breakdown: null });
    expect([form.order, form.exclusions, form.breakdownProperty, form.breakdownLimit]).toEqual(
      ["ordered", [], "", "10"]);
    expect(fromDefinition({ name: "F", filters: [], steps: [{ kind: "click", label: "A" }],
                            breakdown: { property: "os" } }).form.breakdownLimit).toBe("10");
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
    ["order", "funnel-order"], ["exclusions[0].to_step", "exclusion-0-to"],
    ["exclusions[1].from_step", "exclusion-1-from"], ["exclusions[2].label", "exclusion-2-label"],
    ["exclusions[0].kind", "exclusion-0-kind"], ["exclusions[3]", "exclusion-3-label"], ["exclusions", "funnel-exclusions"],
    ["breakdown.limit", "funnel-breakdown-limit"], ["breakdown.property", "funnel-breakdown"], ["breakdown", "funnel-breakdown"],
    ["steps[3]", "step-3-label"],
    ["body", "funnel-form"], [undefined, "funnel-form"],
  ])("%s goes to #%s", (parameter, id) => expect(fieldForParameter(parameter, filterFields.map((f) => [...f]))).toBe(id));
});

describe("the moment a funnel's session opens at", () => {
  const session = { session_id: "s", level: 2, reached_at: [], reached_at_ms: [1000, 5000] };
  it("is when the step was reached, for a completed session", () =>
    expect(replayMoment(session, 2, "completed").atMs).toBe(5000));
  it("is the last step reached, for a dropped session", () =>
    expect(replayMoment(session, 3, "dropped").atMs).toBe(5000));
  it("is the last step reached, for a dropped session of a breakdown row (the same shape)", () =>
    expect(replayMoment({ ...session, level: 1, reached_at_ms: [1000] }, 2, "dropped")).toEqual(
      { atMs: 1000, description: "last reached step 1" }));
  it("is the start, for a session that never reached step 1", () =>
    expect(replayMoment({ ...session, level: 0, reached_at_ms: [] }, 1, "dropped").atMs).toBeUndefined());
});
