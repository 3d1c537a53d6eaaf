/**
 * The company fan-out ladder the fan-out scenarios share: paced broadcasts
 * stepped up in rate until the server saturates, with delivered messages
 * per second, latency and server CPU per delivered message for each step.
 */
import { awaitDelivery } from "./settle.mjs";

/** A step is held when everything went out on schedule and arrived, with p99 under this. */
export const HELD_P99_MS = 50;

/**
 * Measures one paced sending step: `send()` makes the server send for
 * `durationMs` and answers `{ sent, planned, startedAt, eventLoopDelay }`;
 * `expectedFor(n)` is how many messages `n` sends deliver. Returns delivered
 * messages per second, latency, server CPU per delivered message, and
 * whether the step was held (everything out on schedule and in, p99 under
 * {@link HELD_P99_MS}) or saturated (under 90% of what was offered).
 */
export async function measureStep(ctx, server, generator, { rate, durationMs, label, send, expectedFor }) {
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const sent = await ctx.profiled(server, label, send);
  const expected = expectedFor(sent.sent);
  const stats = await awaitDelivery(generator, (current) => current.delivered >= expected);
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  const seconds = Math.max(durationMs, stats.lastAt - sent.startedAt) / 1000;
  const offered = Math.round(expectedFor(sent.planned) / (durationMs / 1000));
  const deliveredPerSecond = Math.round(stats.delivered / seconds);
  const held = sent.sent === sent.planned && stats.delivered === expected && stats.latency.p99 !== null && stats.latency.p99 < HELD_P99_MS;
  return {
    rate,
    offered,
    planned: sent.planned,
    sent: sent.sent,
    expected,
    delivered: stats.delivered,
    deliveredPerSecond,
    latency: stats.latency,
    eventLoopDelay: sent.eventLoopDelay,
    cpuMicros,
    cpuPerMessage: stats.delivered ? Math.round((cpuMicros / stats.delivered) * 100) / 100 : null,
    held,
    saturated: deliveredPerSecond < 0.9 * offered,
  };
}

/** One step: `rate` company broadcasts a second for `durationMs`, each to a company's `perCompany` clients. */
export function runStep(ctx, server, generator, { companies, perCompany, rate, durationMs, label }) {
  return measureStep(ctx, server, generator, {
    rate,
    durationMs,
    label,
    send: () => server.call("broadcast", { companies, rate, durationMs }),
    expectedFor: (sent) => sent * perCompany,
  });
}

export const describeStep = (step) =>
  `${step.offered.toLocaleString("en-US")} msg/s offered → ${step.deliveredPerSecond.toLocaleString("en-US")} delivered, p99 ${step.latency.p99} ms${step.held ? ", held" : ""}; server ${step.cpuPerMessage} µs CPU/msg, loop delay max ${step.eventLoopDelay.max} ms`;

/**
 * A warm-up step, then `steps` (broadcasts a second) in order until the
 * server has saturated `saturatedStops` times. Returns the steps, the peak
 * delivered rate, the highest held rate, CPU per delivered message over all
 * steps, and `measure(rate, label, durationMs)` for one more step on the same
 * terms (the half-rate comparison).
 */
export async function climbFanout(ctx, server, generator, { kind, companies, perCompany, warmup, steps, stepMs, saturatedStops = 2 }) {
  const climber = { kind, server, generator };
  const { results, measure } = await climbInTurns(ctx, [climber], {
    warmup,
    steps,
    stepMs,
    saturatedStops,
    stepOf: (_, step) => runStep(ctx, server, generator, { companies, perCompany, ...step }),
  });
  return { result: results[0], measure: (rate, label, durationMs) => measure(climber, rate, label, durationMs) };
}

/**
 * The ladder for servers that sit side by side, climbed in turns (see
 * lib/turns.mjs): a warm-up step of each, then at each rate one step of
 * every server still climbing, the order rotated from one rate to the next;
 * a server stops after `saturatedStops` saturated steps (two, so its peak is
 * not one unlucky sample). `stepOf(climber, { rate, durationMs, label })`
 * measures one step of one server. Returns, per climber, its steps, peak
 * delivered rate, highest held rate and CPU per delivered message, and
 * `measure(climber, rate, label, durationMs)` for one more step on the same
 * terms. {@link climbFanout} is the one-server case.
 */
export async function climbInTurns(ctx, climbers, { warmup, steps, stepMs, stepOf, describe = describeStep, saturatedStops = 2 }) {
  for (const climber of climbers) await stepOf(climber, { rate: warmup, durationMs: Math.min(stepMs, 1000), label: `${climber.kind}-warmup` });
  // A step that delivered everything but missed p99 gets one more try: on a
  // shared machine that is often a neighbour's burst.
  const measure = async (climber, rate, label, durationMs = stepMs) => {
    const step = await stepOf(climber, { rate, durationMs, label });
    if (step.held || step.saturated) return step;
    ctx.step(climber.kind, `${describe(step)}; once more`);
    await ctx.quiet(climber.generator, { quietMs: 200 });
    return stepOf(climber, { rate, durationMs, label: `${label}-again` });
  };
  const states = climbers.map((climber) => ({ climber, result: { steps: [] }, saturated: 0 }));
  for (const [index, rate] of steps.entries()) {
    const climbing = states.filter((state) => state.saturated < saturatedStops);
    if (climbing.length === 0) break;
    for (let turn = 0; turn < climbing.length; turn++) {
      const state = climbing[(index + turn) % climbing.length];
      const step = await measure(state.climber, rate, `${state.climber.kind}-${rate}`);
      state.result.steps.push(step);
      ctx.step(state.climber.kind, describe(step));
      if (step.saturated) state.saturated += 1;
      await ctx.quiet(state.climber.generator, { quietMs: 200 });
    }
  }
  for (const { result } of states) {
    const delivered = result.steps.reduce((sum, step) => sum + step.delivered, 0);
    result.cpuPerMessage = Math.round((result.steps.reduce((sum, step) => sum + step.cpuMicros, 0) / delivered) * 100) / 100;
    const held = result.steps.filter((step) => step.held);
    result.highestHeld = held.length ? held[held.length - 1].offered : null;
    result.highestHeldRate = held.length ? held[held.length - 1].rate : null;
    result.peakDelivered = Math.max(...result.steps.map((step) => step.deliveredPerSecond));
  }
  return { results: states.map((state) => state.result), measure };
}
