import { CHECK_TITLES, type SmokeReport } from "./run.ts";

const MAX_GAPS_SHOWN = 60;

/** The report for people: one line per check, a hint under each failure, the gaps, a verdict. */
export function formatTable(report: SmokeReport): string {
  const rows = report.checks.map((c) => [CHECK_TITLES[c.id], c.status.toUpperCase(), c.detail]);
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => (r[i] ?? "").length), i === 0 ? 5 : 6));
  const pad = (cells: string[]) =>
    cells
      .map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c))
      .join("  ")
      .trimEnd();
  const lines = [`smoke test of ${report.url}${report.model ? ` (model ${report.model})` : ""}`, ""];
  lines.push(pad(["check", "result", "detail"]));
  report.checks.forEach((c, i) => {
    lines.push(pad(rows[i] ?? []));
    if (c.hint && c.status === "fail")
      lines.push(`${" ".repeat((widths[0] ?? 0) + (widths[1] ?? 0) + 4)}-> ${c.hint}`);
  });
  const gaps = report.stream?.gapsMs ?? [];
  if (gaps.length > 0) {
    const shown = gaps.slice(0, MAX_GAPS_SHOWN).map((g) => Math.round(g));
    lines.push(
      "",
      `gaps between content chunks (ms): ${shown.join(" ")}${gaps.length > shown.length ? ` ... (${gaps.length} in all, see --json)` : ""}`,
    );
  }
  const count = (status: string) => report.checks.filter((c) => c.status === status).length;
  const failed = count("fail");
  const skipped = count("skip");
  lines.push(
    "",
    `${failed === 0 ? "PASS" : "FAIL"}: ${count("pass")} passed, ${failed} failed, ${skipped} skipped in ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  return `${lines.join("\n")}\n`;
}

/** The report for scripts. */
export function formatJson(report: SmokeReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
