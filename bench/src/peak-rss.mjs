/**
 * Memory of large round trips, as the kernel counts it: the peak resident set (VmHWM) that one
 * 10 MiB echo round trip adds, in the client's process and in the reference server's, and a steady
 * state of 50 sequential 5 MiB requests (time and RSS of each).
 *
 * Linux only: writing 5 to /proc/PID/clear_refs resets a process's peak to its current RSS, so
 * the peak that follows is the round trip's own. The client runs in a fresh child process, so
 * nothing this bench did before has already mapped the pages it needs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from './server-process.mjs';
import { median } from './stats.mjs';

const MIB = 1024 * 1024;

export function status(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export function resetPeak(pid) {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Runs the client side (this file as a child, see below) and measures the server alongside. */
export async function peakRss() {
  if (process.platform !== 'linux') return undefined;
  const server = await startServerProcess();
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), server.url], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const result = await new Promise((resolve, reject) => {
    const out = {};
    child.on('message', (msg) => {
      if (msg.type === 'before') {
        resetPeak(server.pid);
        out.serverBase = status(server.pid, 'VmRSS');
        child.send('go');
      } else if (msg.type === 'after') {
        out.serverAdded = status(server.pid, 'VmHWM') - out.serverBase;
        Object.assign(out, msg);
        child.send('next');
      } else if (msg.type === 'done') resolve(Object.assign(out, msg));
    });
    child.once('exit', (code) => code !== 0 && reject(new Error(`peak-rss child exited ${code}`)));
  });
  await server.close();
  return result;
}

export function printPeakRss(r) {
  if (!r) return console.log('\nPeak RSS: Linux only (reads /proc)');
  const x = (b) => `${(b / MIB).toFixed(0)} MiB (${(b / r.payload).toFixed(1)}x the payload)`;
  console.log(`\nPeak RSS added by one 10 MiB echo round trip (${(r.payload / MIB).toFixed(1)} MiB out, as much back)`);
  console.log(`  client, first 10 MiB request of the process: ${x(r.clientAdded)}`);
  console.log(`  client, a second one:                        ${x(r.clientAddedAgain)}`);
  console.log(`  reference server (first 10 MiB request):     ${x(r.serverAdded)}`);
  const last = r.steady.slice(10);
  const ms = last.map((s) => s.ms);
  const rss = last.map((s) => s.rss);
  console.log(`Steady state, 50 sequential 5 MiB requests: last 40 median ${median(ms).toFixed(0)} ms, ` +
    `min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)} (max/min ${(Math.max(...ms) / Math.min(...ms)).toFixed(2)}); ` +
    `RSS ${(Math.min(...rss) / MIB).toFixed(0)}-${(Math.max(...rss) / MIB).toFixed(0)} MiB (first 10: up to ${(Math.max(...r.steady.slice(0, 10).map((s) => s.rss)) / MIB).toFixed(0)} MiB)`);
}

/** The child: one client, a warm-up, then the measured round trips. */
async function child(url) {
  const { SecureChatCompletion } = await import('@nomyo/core');
  const { request } = await import('./payloads.mjs');
  const client = new SecureChatCompletion({ baseUrl: url, allowHttp: true, maxRetries: 0 });
  await client.create(request(1024));
  const payloadBytes = 10 * MIB - 256;
  const payload = request(payloadBytes);
  const step = (type, extra = {}) => new Promise((resolve) => (process.once('message', resolve), process.send({ type, ...extra })));
  const measure = async () => {
    globalThis.gc();
    resetPeak(process.pid);
    const base = status(process.pid, 'VmRSS');
    await client.create(payload);
    return status(process.pid, 'VmHWM') - base;
  };
  await step('before');
  const clientAdded = await measure();
  await step('after', { clientAdded, payload: payloadBytes });
  const clientAddedAgain = await measure();
  const five = request(5 * MIB);
  const steady = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await client.create(five);
    steady.push({ ms: performance.now() - t0, rss: status(process.pid, 'VmRSS') });
  }
  await client.dispose();
  process.send({ type: 'done', clientAddedAgain, steady });
  process.disconnect();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(process.argv[2]);
