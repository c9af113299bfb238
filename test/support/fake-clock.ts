import type { Deps, Timer } from "../../lib/deps.ts";

/** A timer or sleep waiting on the fake clock. */
export interface PendingTimer {
  kind: "timer" | "sleep";
  /** The delay it was set (or last refreshed) with. */
  ms: number;
  /** The fake time it fires at. */
  due: number;
}

/**
 * A clock that moves only when the test says so: `now`, `sleep` and `setTimer` for {@link Deps},
 * and `advance` / `runAll` to fire what is due, in order of due time (ties in the order they were
 * set). Between two timers every pending promise callback runs, so code that awaits a sleep and
 * then sets the next timer sees the clock where it would be.
 */
export interface FakeClock {
  now(): number;
  sleep: Deps["sleep"];
  setTimer: Deps["setTimer"];
  /** Every sleep's requested duration, in the order asked. */
  readonly sleeps: number[];
  /** What is waiting, soonest first. */
  pending(): PendingTimer[];
  /** Moves time forward by `ms`, firing every timer due on the way, each at its own time. */
  advance(ms: number): Promise<void>;
  /** Fires timers until none is left (at most `limit`, so a self-rearming timer cannot loop). */
  runAll(limit?: number): Promise<void>;
  /**
   * Resolves once a timer matching `match` is pending (at once if one is). For code that reaches
   * the clock through real I/O: the test waits for the timer rather than for wall-clock time.
   */
  scheduled(match?: (timer: PendingTimer) => boolean): Promise<PendingTimer>;
}

interface Entry {
  kind: PendingTimer["kind"];
  fn: () => void;
  ms: number;
  due: number;
  seq: number;
  cleared: boolean;
}

/** Lets every queued promise callback (and any I/O callback already due) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createFakeClock(start = 1_700_000_000_000): FakeClock {
  let time = start;
  let seq = 0;
  const entries = new Set<Entry>();
  const sleeps: number[] = [];
  const waiters: Array<{ match: (t: PendingTimer) => boolean; resolve: (t: PendingTimer) => void }> = [];

  const view = (e: Entry): PendingTimer => ({ kind: e.kind, ms: e.ms, due: e.due });

  function arm(entry: Entry): void {
    entry.due = time + entry.ms;
    entry.seq = seq++;
    entries.add(entry);
    for (const waiter of [...waiters]) {
      if (waiter.match(view(entry))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(view(entry));
      }
    }
  }

  function schedule(kind: PendingTimer["kind"], fn: () => void, ms: number): Timer {
    const entry: Entry = { kind, fn, ms: Math.max(0, ms), due: 0, seq: 0, cleared: false };
    arm(entry);
    return {
      refresh() {
        if (!entry.cleared) arm(entry);
      },
      clear() {
        entry.cleared = true;
        entries.delete(entry);
      },
      unref() {},
    };
  }

  /** The next armed entry due at or before `until`, soonest first, ties by the order set. */
  function next(until: number): Entry | undefined {
    let best: Entry | undefined;
    for (const e of entries) {
      if (e.due > until) continue;
      if (!best || e.due < best.due || (e.due === best.due && e.seq < best.seq)) best = e;
    }
    return best;
  }

  function fire(entry: Entry): void {
    time = Math.max(time, entry.due);
    entries.delete(entry);
    entry.fn();
  }

  const clock: FakeClock = {
    now: () => time,
    sleeps,
    setTimer: (fn, ms) => schedule("timer", fn, ms),
    sleep(ms, signal) {
      sleeps.push(ms);
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const onAbort = () => {
          timer.clear();
          reject(signal?.reason);
        };
        const timer = schedule(
          "sleep",
          () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          ms,
        );
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    pending: () => [...entries].sort((x, y) => x.due - y.due || x.seq - y.seq).map(view),
    async advance(ms) {
      const until = time + ms;
      await settle();
      for (let entry = next(until); entry; entry = next(until)) {
        fire(entry);
        await settle();
      }
      time = until;
    },
    async runAll(limit = 10_000) {
      await settle();
      for (let fired = 0; entries.size > 0; fired++) {
        if (fired >= limit) throw new Error(`runAll: still ${entries.size} timer(s) after ${limit} fired`);
        const entry = next(Number.POSITIVE_INFINITY);
        if (entry) fire(entry);
        await settle();
      }
    },
    scheduled(match = () => true) {
      const found = clock.pending().find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
  return clock;
}
