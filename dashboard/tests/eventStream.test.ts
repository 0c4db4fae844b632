import { describe, expect, it } from "vitest";
import { LineSplitter } from "../src/eventStream";

describe("LineSplitter", () => {
  it("gives complete lines across chunk boundaries, and the last line at the end", () => {
    const seen: string[][] = [];
    const splitter = new LineSplitter((lines) => seen.push(lines));
    splitter.push('{"a":1}\n{"b"');
    splitter.push(':2}\n\n{"c":3}');
    splitter.end();
    expect(seen).toEqual([['{"a":1}'], ['{"b":2}'], ['{"c":3}']]);
  });
});
