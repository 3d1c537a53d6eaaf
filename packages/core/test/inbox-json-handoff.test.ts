import { memoryInboxStore, snapshotJson } from "@truss/core";
import { describe, expect, test } from "vitest";
import { handJson, jsonCopy } from "../src/kernel/payload.js";

const ann = { companyId: "acme", userId: "ann" };
const limits = { maxDepth: 32, maxBytes: 65_536 };

describe("handing a snapshot's JSON to the inbox store", () => {
  test("the store keeps the text handed with the call, and encodes the value itself once the call returned", async () => {
    const inbox = memoryInboxStore();
    const { value, json } = jsonCopy({ total: 1 }, limits, "The data");
    const handed = await handJson(value, json, () => inbox.append(ann, "expense:approved", value));
    // The engine's copy comes back as the message's data, not a decoded copy of it.
    expect(handed.message.data).toBe(value);
    // Once the call returned, the text is forgotten: the same object, changed, is encoded again.
    (value as { total: number }).total = 2;
    expect(snapshotJson(value)).toBeUndefined();
    await inbox.append(ann, "expense:approved", value);
    const stored = await inbox.read(ann, null, 10);
    expect(stored.map((message) => message.data)).toEqual([{ total: 1 }, { total: 2 }]);
  });

  test("a call inside another hands its own text, and the outer one's is back after it", () => {
    const outer = jsonCopy({ outer: true }, limits, "The data");
    const inner = jsonCopy({ inner: true }, limits, "The data");
    const seen = handJson(outer.value, outer.json, () => [
      handJson(inner.value, inner.json, () => [snapshotJson(inner.value), snapshotJson(outer.value)]),
      snapshotJson(outer.value),
      snapshotJson(inner.value),
    ]);
    expect(seen).toEqual([[inner.json, undefined], outer.json, undefined]);
  });

  test("a store call that throws at once still forgets the text", () => {
    const { value, json } = jsonCopy({ total: 1 }, limits, "The data");
    expect(() =>
      handJson(value, json, () => {
        throw new Error("refused");
      }),
    ).toThrow("refused");
    expect(snapshotJson(value)).toBeUndefined();
  });
});
