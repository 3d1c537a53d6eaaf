import assert from "node:assert/strict";
import type { ConflictResolver, Resolution, ResolveInput } from "@truss/core";
import type { DocumentData } from "@truss/protocol";
import type { SuiteOptions, TestFunction } from "./runner.js";

/**
 * Options for {@link conflictResolverSuite}: what the resolver promises to do
 * with a stale write, so the suite knows which verdict is right.
 */
export interface ConflictResolverSuiteOptions extends SuiteOptions<ConflictResolver> {
  /**
   * A change to a field nobody else touched since the writer's base is merged,
   * even though another field changed meanwhile (`fieldMerge`, `lastWriteWins`).
   */
  mergesDisjointFields: boolean;
  /**
   * A change to a field someone else changed meanwhile replaces their value
   * instead of conflicting (`lastWriteWins`).
   */
  overwritesOverlapping: boolean;
}

/**
 * Registers the cases every {@link ConflictResolver} must pass. Whatever the
 * flags, every verdict is checked for the contract's invariants: the resolver
 * is pure and never mutates its input; a conflict names only fields the
 * writer changed, once each, with their base, current and incoming values
 * exactly as given; a merge is a new object that keeps every current field
 * the writer did not change.
 *
 * @example
 * ```ts
 * import { test } from "vitest";
 * conflictResolverSuite(test, fieldMerge(), { mergesDisjointFields: true, overwritesOverlapping: false });
 * ```
 */
export function conflictResolverSuite(
  test: TestFunction,
  resolver: ConflictResolver,
  options: ConflictResolverSuiteOptions,
): void {
  const prefix = options.prefix ?? `ConflictResolver ${resolver.name}`;
  const merger = options.mergesDisjointFields || options.overwritesOverlapping;

  /** Registers one case; `teardown` still runs when it fails. */
  const define = (name: string, body: () => void): void => {
    test(`${prefix}: ${name}`, async () => {
      try {
        body();
      } finally {
        await options.teardown?.(resolver);
      }
    });
  };

  /** Resolves and checks the invariants every verdict must satisfy. */
  const resolve = (input: ResolveInput): Resolution => resolveChecked(resolver, input);

  define("has a name for logs and metrics", () => {
    assert.equal(typeof resolver.name, "string");
    assert.ok(resolver.name.length > 0, "name must not be empty");
  });

  define("is pure: the same input gives the same verdict and is never mutated", () => {
    const input = staleWrite({ name: "Riverside Clinic – Phase 2", budget: 140_000, notes: null });
    assert.deepEqual(resolve(input), resolve(input));
    assert.deepEqual(resolve(staleWrite({ budget: 125_000 })), resolve(staleWrite({ budget: 125_000 })));
  });

  define(
    options.mergesDisjointFields
      ? "merges a change to a field nobody else touched"
      : "refuses a stale change even to a field nobody else touched",
    () => {
      const result = resolve(staleWrite({ name: "Riverside Clinic – Phase 2" }));
      if (options.mergesDisjointFields) {
        assertMerged(result);
        assert.deepEqual(result.data, { ...CURRENT, name: "Riverside Clinic – Phase 2" });
      } else {
        assertConflict(result);
        assert.deepEqual(fieldsOf(result), ["name"]);
      }
    },
  );

  define(
    options.overwritesOverlapping
      ? "overwrites a field someone else changed meanwhile"
      : "names a field both writers changed differently as a conflict",
    () => {
      const result = resolve(staleWrite({ budget: 140_000 }));
      if (options.overwritesOverlapping) {
        assertMerged(result);
        assert.deepEqual(result.data, { ...CURRENT, budget: 140_000 });
      } else {
        assertConflict(result);
        assert.deepEqual(result.conflicts, [{ field: "budget", base: 100_000, current: 125_000, incoming: 140_000 }]);
      }
    },
  );

  define("handles a write that touches both a disjoint and an overlapping field", () => {
    const result = resolve(staleWrite({ name: "Riverside Clinic – Phase 2", budget: 140_000 }));
    if (options.overwritesOverlapping) {
      assertMerged(result);
      assert.deepEqual(result.data, { ...CURRENT, name: "Riverside Clinic – Phase 2", budget: 140_000 });
      return;
    }
    assertConflict(result);
    const fields = fieldsOf(result);
    assert.ok(fields.includes("budget"), `the overlapping field budget must be named, got ${fields.join(", ")}`);
    if (options.mergesDisjointFields) {
      assert.deepEqual(fields, ["budget"], "only the overlapping field is in conflict");
    }
  });

  if (merger) {
    define("never conflicts when both writers made the same change", () => {
      const result = resolve(staleWrite({ budget: 125_000 }));
      assertMerged(result);
      assert.deepEqual(result.data, CURRENT);
    });

    define("treats the same value with its keys in another order as the same change", () => {
      const result = resolve({
        base: BASE,
        current: { ...CURRENT, site: { lat: 53.8, city: "Leeds" } },
        changes: { site: { city: "Leeds", lat: 53.8 } },
        baseVersion: 2,
        currentVersion: 3,
      });
      assertMerged(result);
      assert.deepEqual(result.data.site, { city: "Leeds", lat: 53.8 });
    });
  }

  if (options.mergesDisjointFields) {
    define("treats a field whose keys were only reordered as untouched", () => {
      // The other writer re-sent the same site object with its keys in another order.
      const result = resolve({
        base: { ...BASE, site: { city: "Leeds", lat: 53.8 } },
        current: { ...CURRENT, site: { lat: 53.8, city: "Leeds" } },
        changes: { site: { city: "York", lat: 53.96 } },
        baseVersion: 2,
        currentVersion: 3,
      });
      assertMerged(result);
      assert.deepEqual(result.data, { ...CURRENT, site: { city: "York", lat: 53.96 } });
    });

    define("deletes a field the writer set to null when nobody else touched it", () => {
      const result = resolve(staleWrite({ notes: null }));
      assertMerged(result);
      assert.ok(!Object.hasOwn(result.data, "notes"), "a null change deletes the field; it must not be stored as null");
      assert.deepEqual(result.data, { name: CURRENT.name, budget: CURRENT.budget, status: CURRENT.status });
    });

    define("adds a field that neither version had", () => {
      const result = resolve(staleWrite({ foreman: "Dana Okafor" }));
      assertMerged(result);
      assert.deepEqual(result.data, { ...CURRENT, foreman: "Dana Okafor" });
    });
  }

  define(
    options.overwritesOverlapping
      ? "deletes a field someone else changed meanwhile"
      : "names a deletion of a field someone else changed as a conflict",
    () => {
      const result = resolve({
        base: BASE,
        current: { ...CURRENT, notes: "Crane booked for Tuesday" },
        changes: { notes: null },
        baseVersion: 2,
        currentVersion: 3,
      });
      if (options.overwritesOverlapping) {
        assertMerged(result);
        assert.ok(!Object.hasOwn(result.data, "notes"), "a null change deletes the field");
      } else {
        assertConflict(result);
        assert.deepEqual(result.conflicts, [
          { field: "notes", base: BASE.notes, current: "Crane booked for Tuesday", incoming: null },
        ]);
      }
    },
  );

  define("decides without a base version (trimmed from history)", () => {
    // budget differs from current; status already holds the incoming value.
    const result = resolve({
      base: null,
      current: CURRENT,
      changes: { budget: 140_000, status: CURRENT.status },
      baseVersion: 1,
      currentVersion: 40,
    });
    if (options.overwritesOverlapping) {
      assertMerged(result);
      assert.deepEqual(result.data, { ...CURRENT, budget: 140_000 });
      return;
    }
    // Without the base nothing proves the current budget is not someone else's edit.
    assertConflict(result);
    const fields = fieldsOf(result);
    assert.ok(fields.includes("budget"), `budget must be named, got ${fields.join(", ")}`);
    if (merger) assert.ok(!fields.includes("status"), "a field already holding the incoming value is not a conflict");
  });

  define("cannot be made to replace the merged object's prototype by a __proto__ field", () => {
    // JSON.parse makes "__proto__" an ordinary own key, exactly as a client payload arrives.
    const changes = JSON.parse('{"__proto__": {"isAdmin": true}, "name": "Riverside Clinic – Phase 2"}') as DocumentData;
    const result = resolve(staleWrite(changes));
    assert.equal(({} as { isAdmin?: unknown }).isAdmin, undefined, "Object.prototype was polluted");
    if (result.outcome === "merged") {
      assert.equal((result.data as { isAdmin?: unknown }).isAdmin, undefined, "the merged document's prototype was replaced");
    }
  });
}

/** The project at the writer's base version (2). */
const BASE = {
  name: "Riverside Clinic",
  budget: 100_000,
  status: "planning",
  notes: "Survey done",
} as const satisfies DocumentData;

/** The project now (version 3): someone else raised the budget meanwhile. */
const CURRENT = { ...BASE, budget: 125_000 } as const satisfies DocumentData;

/** A stale write of `changes` based on {@link BASE} while {@link CURRENT} is committed. */
function staleWrite(changes: DocumentData): ResolveInput {
  return { base: BASE, current: CURRENT, changes, baseVersion: 2, currentVersion: 3 };
}

/**
 * Resolves a frozen copy (a resolver that writes to its input throws) and a
 * plain copy (compared with a snapshot afterwards, for sloppy-mode code),
 * requires both verdicts to agree, then checks the contract's invariants.
 */
function resolveChecked(resolver: ConflictResolver, input: ResolveInput): Resolution {
  const snapshot = structuredClone(input);
  const plain = structuredClone(input);
  const frozen = deepFreeze(structuredClone(input));

  const result = resolver.resolve(frozen);
  const again = resolver.resolve(plain);
  assert.deepEqual(plain, snapshot, "resolve() mutated its input");
  assert.deepEqual(again, result, "resolve() gave different verdicts for the same input");

  if (result.outcome === "conflict") {
    assertConflictShape(result, snapshot);
  } else {
    assert.equal(result.outcome, "merged", `unknown outcome ${JSON.stringify((result as { outcome: unknown }).outcome)}`);
    assertMergedShape(result, snapshot, frozen);
  }
  return result;
}

/** A conflict names at least one field, each one the writer changed, once, with the input's own values. */
function assertConflictShape(result: Extract<Resolution, { outcome: "conflict" }>, input: ResolveInput): void {
  assert.ok(Array.isArray(result.conflicts) && result.conflicts.length > 0, "a conflict must name at least one field");
  const seen = new Set<string>();
  for (const conflict of result.conflicts) {
    const { field } = conflict;
    assert.ok(Object.hasOwn(input.changes, field), `conflict names ${JSON.stringify(field)}, which the writer did not change`);
    assert.ok(!seen.has(field), `conflict names ${JSON.stringify(field)} twice`);
    seen.add(field);
    const base = input.base === null ? undefined : valueOf(input.base, field);
    assert.deepEqual(conflict.base, base, `conflict on ${field}: base must be the value at the writer's base version`);
    assert.deepEqual(conflict.current, valueOf(input.current, field), `conflict on ${field}: current must be the committed value`);
    assert.deepEqual(conflict.incoming, valueOf(input.changes, field), `conflict on ${field}: incoming must be the value the writer sent`);
  }
}

/** A merge is a new object that keeps every current field the writer left alone. */
function assertMergedShape(
  result: Extract<Resolution, { outcome: "merged" }>,
  input: ResolveInput,
  given: ResolveInput,
): void {
  assert.ok(result.data !== null && typeof result.data === "object" && !Array.isArray(result.data), "merged data must be an object");
  assert.ok(result.data !== given.current && result.data !== given.changes, "merged data must be a new object, not an input");
  for (const field of Object.keys(input.current)) {
    if (Object.hasOwn(input.changes, field)) continue;
    assert.deepEqual(valueOf(result.data, field), input.current[field], `merge lost or altered ${field}, which the writer did not change`);
  }
}

/** A field's own value, `undefined` when absent. */
function valueOf(data: DocumentData, field: string): unknown {
  return Object.hasOwn(data, field) ? data[field] : undefined;
}

/** Narrows to a merge, or fails showing the conflicts. */
function assertMerged(result: Resolution): asserts result is Extract<Resolution, { outcome: "merged" }> {
  if (result.outcome !== "merged") {
    assert.fail(`expected a merge, got a conflict on ${fieldsOf(result).join(", ")}`);
  }
}

/** Narrows to a conflict, or fails showing the merged data. */
function assertConflict(result: Resolution): asserts result is Extract<Resolution, { outcome: "conflict" }> {
  if (result.outcome !== "conflict") {
    assert.fail(`expected a conflict, got a merge: ${JSON.stringify(result.data)}`);
  }
}

/** The conflicting fields, sorted, for stable comparisons. */
function fieldsOf(result: Extract<Resolution, { outcome: "conflict" }>): string[] {
  return result.conflicts.map((conflict) => conflict.field).sort();
}

/** Freezes `value` and everything reachable from it. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) {
      deepFreeze((value as Record<PropertyKey, unknown>)[key]);
    }
  }
  return value;
}
