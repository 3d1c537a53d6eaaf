import { expect, test } from "vitest";
import { Backoff } from "../src/backoff.js";

test("the ceiling doubles from initialDelayMs up to maxDelayMs, and reset starts over", () => {
  const exact = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
  expect(Array.from({ length: 6 }, () => exact.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
  exact.reset();
  expect(exact.next()).toBe(100);
});

test("full jitter spreads each delay uniformly between 0 and the ceiling", () => {
  const draws = [0, 0.5, 0.999];
  const jittered = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 }, () => draws.shift()!);
  expect([jittered.next(), jittered.next(), jittered.next()]).toEqual([100, 100, 0]);

  const random = new Backoff({ initialDelayMs: 1000, maxDelayMs: 1000 });
  const delays = Array.from({ length: 200 }, () => random.next());
  expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
  expect(new Set(delays).size).toBeGreaterThan(50);
});

test("partial jitter keeps part of the delay fixed", () => {
  const half = new Backoff({ initialDelayMs: 1000, jitter: 0.5 }, () => 1);
  expect(half.next()).toBe(500);
});

test("invalid options are refused", () => {
  expect(() => new Backoff({ jitter: -0.1 })).toThrow(TypeError);
  expect(() => new Backoff({ initialDelayMs: Number.NaN })).toThrow(TypeError);
  expect(() => new Backoff({ maxDelayMs: -1 })).toThrow(TypeError);
});
