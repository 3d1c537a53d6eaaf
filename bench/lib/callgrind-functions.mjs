/**
 * Instructions by function from one callgrind dump, with the JIT code that
 * callgrind sees only as addresses named from V8's `--perf-basic-prof` map
 * (`/tmp/perf-<pid>.map`: start, size and name of each piece of generated
 * code, JavaScript functions and V8's built-ins alike). Used by
 * `instructions.mjs --by-function`.
 */
import { readFileSync } from "node:fs";

/**
 * Each function's own instructions (calls made from it not included) in a
 * callgrind dump. Callgrind names a function once, `fn=(id) name` (or in a
 * `cfn=` line) and then by its id; after a `calls=` line the next cost line
 * is the call's inclusive cost, counted in the callee's own lines.
 *
 * @param {string} text a callgrind output file
 * @returns {Map<string, number>} function name → instructions
 */
export function selfCosts(text) {
  const names = new Map();
  const costs = new Map();
  const nameOf = (token) => {
    const match = /^\((\d+)\)(?: (.*))?$/.exec(token);
    if (!match) return token;
    if (match[2] !== undefined) names.set(match[1], match[2]);
    return names.get(match[1]) ?? token;
  };
  let current = "";
  let skipNext = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("fn=")) {
      current = nameOf(line.slice(3));
      skipNext = false;
    } else if (line.startsWith("cfn=")) {
      nameOf(line.slice(4));
    } else if (line.startsWith("calls=")) {
      skipNext = true;
    } else if (/^[0-9+\-*]/.test(line)) {
      if (skipNext) {
        skipNext = false;
        continue;
      }
      const cost = Number(line.split(" ")[1]);
      if (Number.isFinite(cost)) costs.set(current, (costs.get(current) ?? 0) + cost);
    }
  }
  return costs;
}

/**
 * The costs with callgrind's addresses (`0x…`) named from a perf map: the
 * piece of generated code each address falls in, or `JIT (unnamed)`.
 *
 * @param {Map<string, number>} costs from {@link selfCosts}
 * @param {string} perfMap the text of `/tmp/perf-<pid>.map`
 * @returns {Map<string, number>}
 */
export function nameJitCode(costs, perfMap) {
  const code = perfMap
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [start, size, ...name] = line.split(" ");
      return { start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(size, 16), name: name.join(" ") };
    })
    .sort((a, b) => a.start - b.start);
  const named = new Map();
  for (const [name, cost] of costs) {
    const address = /^0x([0-9a-f]+)/.exec(name);
    const label = address ? jitName(code, parseInt(address[1], 16)) : name;
    named.set(label, (named.get(label) ?? 0) + cost);
  }
  return named;
}

/** The name of the code holding `address`, by binary search over the map's sorted starts. */
function jitName(code, address) {
  let low = 0;
  let high = code.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (code[middle].start <= address) low = middle + 1;
    else high = middle - 1;
  }
  const piece = code[high];
  // Paths shortened to the package or file, so two servers' tables line up.
  return piece && address < piece.end ? `JIT ${piece.name.replace(/(file:\/\/)?\/\S*\/(node_modules|dist|bench)\//, "")}` : "JIT (unnamed)";
}

/**
 * Reads one dump and the process's perf map into instructions per connection
 * by function, most first.
 *
 * @returns {Array<{ name: string, perConnection: number }>}
 */
export function byFunction(dumpFile, perfMapFile, connections) {
  const named = nameJitCode(selfCosts(readFileSync(dumpFile, "utf8")), readFileSync(perfMapFile, "utf8"));
  return [...named]
    .map(([name, cost]) => ({ name, perConnection: cost / connections }))
    .sort((a, b) => b.perConnection - a.perConnection);
}
