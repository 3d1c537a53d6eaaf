import { describe, expect, test } from "vitest";
import { conflictResolverSuite } from "@truss/conformance";
import { fieldMerge, lastWriteWins, rejectOnConflict, type ResolveInput } from "@truss/core";
import type { DocumentData } from "@truss/protocol";
import { jsonEqual } from "../src/documents/json-equal.js";

conflictResolverSuite(test, fieldMerge(), { mergesDisjointFields: true, overwritesOverlapping: false });
conflictResolverSuite(test, lastWriteWins(), { mergesDisjointFields: true, overwritesOverlapping: true });
conflictResolverSuite(test, rejectOnConflict(), { mergesDisjointFields: false, overwritesOverlapping: false });

/** Version 4 of the Harbour Bridge refit, as both site managers loaded it. */
const loaded: DocumentData = {
  name: "Harbour Bridge refit",
  budget: 2_400_000,
  currency: "EUR",
  crews: ["north-deck", "cable-team"],
  address: { street: "Quay 3", city: "Rotterdam" },
};

/** Manager A's write, committed as version 5, arrived first; manager B's is judged against it. */
function secondWriter(firstWrite: DocumentData, changes: DocumentData, base: DocumentData | null = loaded): ResolveInput {
  return { base, current: { ...loaded, ...firstWrite }, changes, baseVersion: 4, currentVersion: 5 };
}

describe("fieldMerge on a construction project", () => {
  test("merges one manager's budget edit with another's rename", () => {
    const result = fieldMerge().resolve(secondWriter({ budget: 2_650_000 }, { name: "Harbour Bridge refit (phase 1)" }));
    expect(result).toEqual({
      outcome: "merged",
      data: { ...loaded, budget: 2_650_000, name: "Harbour Bridge refit (phase 1)" },
    });
  });

  test("names budget with all three values when both edit it", () => {
    const result = fieldMerge().resolve(secondWriter({ budget: 2_650_000 }, { budget: 2_500_000 }));
    expect(result).toEqual({
      outcome: "conflict",
      conflicts: [{ field: "budget", base: 2_400_000, current: 2_650_000, incoming: 2_500_000 }],
    });
  });

  test("lists every conflicting field, and only those", () => {
    const result = fieldMerge().resolve(
      secondWriter(
        { budget: 2_650_000, currency: "USD" },
        { budget: 2_500_000, currency: "GBP", name: "Harbour Bridge refit (phase 1)" },
      ),
    );
    expect(result.outcome).toBe("conflict");
    expect(result.outcome === "conflict" && result.conflicts.map((conflict) => conflict.field)).toEqual(["budget", "currency"]);
  });

  test("treats a reordered crew list as a different value", () => {
    // Crew order is the dispatch order on site, so it is data, not formatting.
    const result = fieldMerge().resolve(
      secondWriter({ crews: ["cable-team", "north-deck"] }, { crews: ["north-deck", "cable-team", "paint-crew"] }),
    );
    expect(result).toMatchObject({ outcome: "conflict", conflicts: [{ field: "crews" }] });
  });

  test("compares nested values structurally when the other writer re-sent the same address", () => {
    const result = fieldMerge().resolve(
      secondWriter({ address: { city: "Rotterdam", street: "Quay 3" } }, { address: { street: "Quay 5", city: "Rotterdam" } }),
    );
    expect(result).toEqual({ outcome: "merged", data: { ...loaded, address: { street: "Quay 5", city: "Rotterdam" } } });
  });

  test("with the base trimmed from history, merges only changes that match the current value", () => {
    const sameAsCurrent = fieldMerge().resolve(secondWriter({ budget: 2_650_000 }, { budget: 2_650_000 }, null));
    expect(sameAsCurrent).toEqual({ outcome: "merged", data: { ...loaded, budget: 2_650_000 } });
    const differs = fieldMerge().resolve(secondWriter({ budget: 2_650_000 }, { name: "Renamed" }, null));
    expect(differs).toEqual({
      outcome: "conflict",
      conflicts: [{ field: "name", base: undefined, current: "Harbour Bridge refit", incoming: "Renamed" }],
    });
  });

  test("does not share the result object with its input", () => {
    const input = secondWriter({ budget: 2_650_000 }, { name: "Harbour Bridge refit (phase 1)" });
    const result = fieldMerge().resolve(input);
    if (result.outcome !== "merged") throw new Error("expected a merge");
    result.data.name = "changed afterwards";
    expect(input.current.name).toBe("Harbour Bridge refit");
  });
});

describe("lastWriteWins", () => {
  test("applies the second manager's budget over the first's and keeps the first's rename", () => {
    const result = lastWriteWins().resolve(secondWriter({ budget: 2_650_000, name: "Renamed by A" }, { budget: 2_500_000 }));
    expect(result).toEqual({ outcome: "merged", data: { ...loaded, budget: 2_500_000, name: "Renamed by A" } });
  });

  test("deletes fields set to null", () => {
    const result = lastWriteWins().resolve(secondWriter({}, { currency: null }));
    expect(result.outcome === "merged" && Object.hasOwn(result.data, "currency")).toBe(false);
  });
});

describe("rejectOnConflict", () => {
  test("refuses a stale rename, naming the field and its values", () => {
    const result = rejectOnConflict().resolve(secondWriter({ budget: 2_650_000 }, { name: "Renamed" }));
    expect(result).toEqual({
      outcome: "conflict",
      conflicts: [{ field: "name", base: "Harbour Bridge refit", current: "Harbour Bridge refit", incoming: "Renamed" }],
    });
  });

  test("merges a stale write that changes nothing, so a retried no-op is not refused", () => {
    const result = rejectOnConflict().resolve(secondWriter({ budget: 2_650_000 }, { budget: 2_650_000 }));
    expect(result).toEqual({ outcome: "merged", data: { ...loaded, budget: 2_650_000 } });
  });
});

describe("jsonEqual", () => {
  test.each([
    [1, 1, true],
    [1, "1", false],
    [null, undefined, false],
    [null, null, true],
    [Number.NaN, Number.NaN, true],
    [[1, [2, { a: 3 }]], [1, [2, { a: 3 }]], true],
    [[1, 2], [2, 1], false],
    [[1], { 0: 1 }, false],
    [{ a: 1, b: 2 }, { b: 2, a: 1 }, true],
    [{ a: 1 }, { a: 1, b: undefined }, true],
    [{ a: 1 }, { a: 1, b: null }, false],
    [{ a: { b: [1] } }, { a: { b: [2] } }, false],
    [{}, [], false],
  ])("jsonEqual(%j, %j) is %s", (left, right, expected) => {
    expect(jsonEqual(left, right)).toBe(expected);
    expect(jsonEqual(right, left)).toBe(expected);
  });
});
