import { execFileSync } from "node:child_process";

/**
 * Median of what `script` (an ES module body that prints one number, its own measurement) prints,
 * over `runs` fresh Node processes: a cold start each time, no module cache shared.
 */
export function medianOfFreshProcesses(script: string, runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      env: {
        ...process.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        AWS_REGION: "us-east-1",
      },
      encoding: "utf8",
    });
    times.push(Number(out));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

/**
 * Import time of a bundled function in a fresh process, in ms (median of `runs`). The `awslambda`
 * global exists only inside Lambda; a handler module wraps itself with it at import, so a minimal
 * one is installed first (merged: importing the SDK may already have set `globalThis.awslambda`).
 */
export function importTimeMs(modulePath: string, runs: number): number {
  return medianOfFreshProcesses(
    `globalThis.awslambda = Object.assign(globalThis.awslambda ?? {}, {
      streamifyResponse: (h) => h,
      HttpResponseStream: { from: (s) => s },
    });
    const t = performance.now();
    await import(${JSON.stringify(`file://${modulePath}`)});
    process.stdout.write(String(performance.now() - t));`,
    runs,
  );
}
