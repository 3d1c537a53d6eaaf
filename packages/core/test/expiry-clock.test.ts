import { afterEach, describe, expect, it, vi } from "vitest";
import { ExpiryClock } from "../src/auth/expiry-clock.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("ExpiryClock", () => {
  it("serves each item after its deadline, never before, at most a second late, in deadline order", () => {
    vi.useFakeTimers({ now: 1_000_000_250 });
    const served: Array<[string, number]> = [];
    const clock = new ExpiryClock<string>((item, now) => served.push([item, now]));
    const start = Date.now();
    const deadlines = { a: start + 2_600, b: start + 1_000, c: start + 1_750, d: start + 10_001 };
    for (const [item, at] of Object.entries(deadlines)) clock.schedule(item, at);
    vi.advanceTimersByTime(12_000);
    expect(served.map(([item]) => item)).toEqual(["b", "c", "a", "d"]);
    for (const [item, now] of served) {
      const deadline = deadlines[item as keyof typeof deadlines];
      expect(now).toBeGreaterThanOrEqual(deadline);
      expect(now - deadline).toBeLessThanOrEqual(1_001);
    }
  });

  it("forgets a cancelled item, serves a rescheduled one at its new deadline only, and stops ticking when nothing is due", () => {
    vi.useFakeTimers({ now: 2_000_000_000 });
    const served: string[] = [];
    const clock = new ExpiryClock<string>((item) => served.push(item));
    clock.schedule("gone", Date.now() + 1_000);
    clock.schedule("moved", Date.now() + 1_000);
    clock.cancel("gone");
    clock.schedule("moved", Date.now() + 5_000);
    vi.advanceTimersByTime(3_000);
    expect(served).toEqual([]);
    vi.advanceTimersByTime(3_000);
    expect(served).toEqual(["moved"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("serves what a callback schedules for a second already passing on the next tick, not never", () => {
    vi.useFakeTimers({ now: 3_000_000_000 });
    const served: string[] = [];
    const clock = new ExpiryClock<string>((item) => {
      served.push(item);
      // The warning schedules the end for a deadline that has already come.
      if (item === "warn") clock.schedule("end", Date.now() - 1);
    });
    clock.schedule("warn", Date.now() + 500);
    vi.advanceTimersByTime(1_100);
    expect(served).toEqual(["warn"]);
    vi.advanceTimersByTime(1_100);
    expect(served).toEqual(["warn", "end"]);
  });

  it("after a long pause (a suspended machine) serves every overdue item in one tick", () => {
    vi.useFakeTimers({ now: 4_000_000_000 });
    const served: string[] = [];
    const clock = new ExpiryClock<string>((item) => served.push(item));
    clock.schedule("x", Date.now() + 3_000);
    clock.schedule("y", Date.now() + 9_000);
    clock.tick(Date.now() + 86_400_000);
    expect(served).toEqual(["x", "y"]);
  });
});
