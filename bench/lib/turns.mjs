/**
 * Runs servers that sit side by side in turns: for each of `slices`, one
 * `turn(entry, slice)` per entry, one at a time, each slice starting one
 * entry later than the one before, so no server always goes first. With
 * `--cpu-prof`, every entry's server is profiled over the whole of it (as
 * `profileName(entry)`); a server's turns are where its samples are.
 *
 * A shared host's speed drifts over seconds. Measured one after the other,
 * two servers meet different machines and the drift lands in their ratio;
 * in turns, it slows all of them alike.
 */
export async function inTurns(ctx, entries, slices, turn, { profileName, afterSlice } = {}) {
  const run = async () => {
    for (let slice = 0; slice < slices; slice++) {
      for (let index = 0; index < entries.length; index++) await turn(entries[(slice + index) % entries.length], slice);
      afterSlice?.(slice);
    }
  };
  await entries.reduceRight((inner, entry) => () => ctx.profiled(entry.server, profileName(entry), inner), run)();
}
