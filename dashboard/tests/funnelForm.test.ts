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
    const form = { ...emptyForm(), name: "Checkout", apps: ["shop"], endDay: "2026-02-01", minSeconds: "5",
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
    expect(filterFields).toEqual([["apps"], ["startDay", "endDay"], ["minSeconds", "maxSeconds"], ["hasErrors"]]);
  });
  it("sends a number it cannot read as typed, for the API to name", () => {
    expect(toDefinition({ ...emptyForm(), windowSeconds: "soon" }).definition.window_seconds).toBe("soon");
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
  const filterFields = [["apps"], ["startDay", "endDay"], ["minSeconds", "maxSeconds"]] as const;
  it.each([
    ["name", "funnel-name"], ["window_seconds", "funnel-window"], ["steps[2].label", "step-2-label"],
    ["steps[0].kind", "step-0-kind"], ["steps", "funnel-steps"], ["filters[1].end", "funnel-end"],
    ["filters[2].min_ms", "funnel-min"], ["filters[0].names", "funnel-apps"], ["filters[1]", "funnel-start"],
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
