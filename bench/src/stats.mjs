/** Timing helpers: medians of interleaved runs, so machine noise hits both sides alike; quantiles; number formats. */
import { performance } from 'node:perf_hooks';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The value below which a fraction `q` of `xs` lie (nearest rank). */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/**
 * Runs each named async task `rounds` times, interleaved in an order reversed every round (a, b,
 * b, a, a, b, ...), after `warmup` rounds; returns the median milliseconds of each. A task may
 * return its own duration (e.g. minus the server's processing time); otherwise wall time is used.
 * The order turns so that no task always runs right after the same other one: a collection of
 * one task's garbage lands in whichever runs next, as often in each.
 *
 * No collection is forced between calls: a full GC before every call measured each one from a
 * cold heap (1-2 ms more per 1 KiB request, on both sides), which a running application does not
 * see. The median absorbs the collections that do happen.
 */
export async function compare(tasks, { rounds, warmup = 2 }) {
  const times = Object.fromEntries(Object.keys(tasks).map((k) => [k, []]));
  for (let i = 0; i < warmup + rounds; i++) {
    const order = Object.entries(tasks);
    for (const [name, task] of i % 2 ? order.reverse() : order) {
      const t0 = performance.now();
      const own = await task();
      const ms = typeof own === 'number' ? own : performance.now() - t0;
      if (i >= warmup) times[name].push(ms);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

export const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)).padStart(8) + ' ms';
export const ratio = (a, b) => `${(a / b).toFixed(2)}x`.padStart(7);
export const fixed = (x, digits = 2) => x.toFixed(digits);
