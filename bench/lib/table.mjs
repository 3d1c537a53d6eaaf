/**
 * The result table: each figure for Truss, the baseline (plain Socket.IO)
 * and their ratio, the raw `ws` ceiling where there is one, and whether the
 * ratio meets its target.
 */

/**
 * Truss ÷ baseline, rounded to two decimals; null when either is missing or
 * the baseline is 0. A row merged from several rounds carries its ratio (the
 * median of the rounds' ratios).
 */
export function ratioOf(row) {
  if (typeof row.ratio === "number") return row.ratio;
  if (typeof row.truss !== "number" || typeof row.baseline !== "number" || row.baseline === 0) return null;
  return Math.round((row.truss / row.baseline) * 100) / 100;
}

/**
 * "met", "missed" or null (no target), from the ratio and `target: { min }`
 * or `{ max }`, or from Truss's own figure and `{ atMost }` (in the row's unit).
 */
export function verdictOf(row) {
  if (row.target?.atMost !== undefined) return typeof row.truss !== "number" ? null : row.truss <= row.target.atMost ? "met" : "missed";
  const ratio = ratioOf(row);
  if (!row.target || ratio === null) return null;
  if (row.target.min !== undefined) return ratio >= row.target.min ? "met" : "missed";
  return ratio <= row.target.max ? "met" : "missed";
}

export function targetText(target, unit) {
  if (!target) return "";
  if (target.atMost !== undefined) return `≤ ${formatValue(target.atMost, unit)}`;
  return target.min !== undefined ? `≥ ${target.min}x` : `≤ ${target.max}x`;
}

export function formatValue(value, unit) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  const text = value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${text} ${unit}` : text;
}

/** Flattens scenario results into table rows. */
export function tableRows(results) {
  const rows = [];
  for (const result of results) {
    if (result.error) {
      rows.push({ scenario: result.name, metric: `failed: ${result.error.split("\n")[0]}`, cells: [] });
      continue;
    }
    for (const row of result.rows) {
      const verdict = verdictOf(row);
      rows.push({
        scenario: row.scenario ?? result.name,
        metric: row.metric,
        cells: [
          formatValue(row.truss, row.unit),
          formatValue(row.baseline, row.unit),
          ratioOf(row) === null ? "—" : `${ratioOf(row).toFixed(2)}x`,
          formatValue(row.ceiling, row.unit),
          row.target ? `${targetText(row.target, row.unit)} ${verdict ?? "n/a"}` : "",
        ],
      });
    }
  }
  return rows;
}

const HEADER = ["scenario", "metric", "Truss", "Socket.IO", "ratio", "ws ceiling", "target"];

/** A plain-text table for the terminal. */
export function renderText(results) {
  const lines = tableRows(results).map((row) => [row.scenario, row.metric, ...row.cells]);
  const widths = HEADER.map((title, column) => Math.max(title.length, ...lines.map((line) => String(line[column] ?? "").length)));
  const format = (line) =>
    line.map((cell, column) => (column >= 2 && column <= 5 ? String(cell ?? "").padStart(widths[column]) : String(cell ?? "").padEnd(widths[column]))).join("  ");
  return [format(HEADER), widths.map((width) => "-".repeat(width)).join("  "), ...lines.map(format)].join("\n");
}

/** The same table in Markdown, for docs/benchmarks.md. */
export function renderMarkdown(results) {
  const lines = tableRows(results).map((row) => `| ${[row.scenario, row.metric, ...row.cells].map((cell) => cell || " ").join(" | ")} |`);
  return [`| ${HEADER.join(" | ")} |`, "| --- | --- | ---: | ---: | ---: | ---: | --- |", ...lines].join("\n");
}

/** The median of the numbers in `values` (anything else is left out); `undefined` when there are none. */
export function median(values) {
  const sorted = values.filter((value) => typeof value === "number").sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
