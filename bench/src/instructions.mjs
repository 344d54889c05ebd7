/**
 * The steady state counted in instructions instead of milliseconds: the client runs under valgrind's
 * callgrind, which counts every instruction its process executes (all threads; the kernel's work is
 * not counted), whatever else the machine does. The same 50 sequential 5 MiB requests as the steady
 * state of peak-rss.mjs, each one's count on its own, split into the collector's work (V8's garbage
 * collection, on the main thread and its helpers), the compiler's (V8 optimizing code) and the rest:
 * core's own work and the runtime's beneath it (fetch, node:crypto, encoders, copies).
 *
 * Opt-in (`pnpm bench instructions`): under callgrind a request takes about 3 s, so 50 take
 * minutes. Needs valgrind (`apt-get install valgrind`); Linux only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from './server-process.mjs';
import { median } from './stats.mjs';

const REQUESTS = 50;
/** The first ones warm up (V8 compiles the hot code); the steady state is the last 40, as in peak-rss.mjs. */
const WARM_UP = 10;

/**
 * Which part of V8 a function of the runtime belongs to, by its C++ name: the collector, the
 * optimizing compiler, or neither. An approximation (a helper shared by both counts as neither), good
 * to a few percent of a request.
 */
const COLLECTOR = /v8::internal::(?:[A-Za-z]*(?:Marking|Marker|Sweep|Scaveng|Evacuat|Compact|RememberedSet|SlotSet|MemoryChunk|LargeObjectSpace|PagedSpace|NewSpace|SemiSpace|MemoryAllocator|GlobalHandles|WeakObjects|ObjectCache|RootVisitor|RootScavenge)|Heap::|BodyDescriptorBase::Iterate)|heap::base::|cppgc::/;
const COMPILER = /v8::internal::(?:compiler|maglev|baseline|wasm)::/;

/**
 * Node's flags for the router: its connections stay open 10 minutes between requests. Under callgrind
 * the client is some 50 times slower, and from one answer to its next request it can pass Node's
 * default keep-alive timeout (5 s): the router then closed the connection as the client sent on it.
 */
const LONG_KEEP_ALIVE = ['--import', "data:text/javascript,import http from 'node:http'; const create = http.createServer; " +
  'http.createServer = (...args) => Object.assign(create(...args), { keepAliveTimeout: 600000 });'];

export async function instructionCounts() {
  if (process.platform !== 'linux') return { missing: 'Linux only' };
  if (spawnSync('valgrind', ['--version']).status !== 0) return { missing: 'valgrind is not installed (apt-get install valgrind)' };
  const server = await startServerProcess([], LONG_KEEP_ALIVE);
  const dir = mkdtempSync(join(tmpdir(), 'nomyo-callgrind-'));
  // Names written out in every dump (not as references to an earlier one), so each dump reads alone.
  const args = ['--tool=callgrind', '--compress-strings=no', '--compress-pos=no', `--callgrind-out-file=${join(dir, 'cg.out')}`];
  const child = spawn('valgrind', [...args, process.execPath, fileURLToPath(import.meta.url), server.url], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  // valgrind's own lines and the child's errors: the end of them explains a child that stopped.
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const next = () =>
    Promise.race([
      new Promise((resolve) => child.once('message', resolve)),
      exited.then((code) => Promise.reject(new Error(`the child under callgrind exited (${code}): ${stderr}`))),
    ]);
  const control = (flag) => {
    const r = spawnSync('callgrind_control', [flag, String(child.pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`callgrind_control ${flag}: ${r.stderr || r.stdout}`);
  };
  try {
    await next(); // warmed up with one small request
    control('-z'); // start from zero: what the process did before is not a request's
    const counts = [];
    for (let i = 1; i <= REQUESTS; i++) {
      child.send('go');
      // Meanwhile the dump of the one before is read: the next request follows a dump at once, so
      // the client's connection is never idle long enough for the router to close it (Node's
      // keep-alive timeout, 5 s) as the next request starts on it.
      if (i > 1) counts.push(readDump(dir, i - 1));
      await next();
      control('-d'); // dumps what was counted since the last dump (cg.out.N, N = 1, 2, ...), and starts from zero again
    }
    counts.push(readDump(dir, REQUESTS));
    child.send('stop');
    return { counts };
  } finally {
    child.kill();
    await exited;
    rmSync(dir, { recursive: true, force: true });
    await server.close();
  }
}

/** Dump `n`'s instructions, in total and for the collector and the compiler; the file is then removed. */
function readDump(dir, n) {
  const file = join(dir, `cg.out.${n}`);
  const counts = splitDump(readFileSync(file, 'utf8'));
  rmSync(file);
  return counts;
}

/** A callgrind dump's instructions, in total and for the collector and the compiler (self costs: each instruction once). */
function splitDump(text) {
  const sums = { total: 0, collector: 0, compiler: 0 };
  let part = 'rest';
  let callCost = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=')) {
      part = COLLECTOR.test(line) ? 'collector' : COMPILER.test(line) ? 'compiler' : 'rest';
    } else if (line.startsWith('calls=')) {
      callCost = true; // the next line is a call's inclusive cost, counted again in the callee
    } else if (/^[0-9+*-]/.test(line)) {
      if (callCost) callCost = false;
      else {
        const ir = Number(line.split(' ')[1] ?? 0);
        sums.total += ir;
        if (part !== 'rest') sums[part] += ir;
      }
    }
  }
  return sums;
}

export function printInstructionCounts(r) {
  console.log(`\nSteady state in instructions: ${REQUESTS} sequential 5 MiB requests under callgrind, the last ${REQUESTS - WARM_UP}, each request's own count`);
  if (r.missing) return console.log(`  not measured: ${r.missing}`);
  const last = r.counts.slice(WARM_UP);
  const line = (what, values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = median(values);
    const near = values.filter((x) => Math.abs(x - mid) <= 0.1 * mid).length;
    console.log(`  ${what}: median ${(mid / 1e6).toFixed(0)} M, min ${(sorted[0] / 1e6).toFixed(0)}, max ${(sorted.at(-1) / 1e6).toFixed(0)} ` +
      `(max/min ${sorted[0] >= 1e6 ? (sorted.at(-1) / sorted[0]).toFixed(2) : '-'}), within 10% of the median ${near}/${values.length}`);
  };
  line('all of the process', last.map((c) => c.total));
  line('without V8\'s collector and compiler', last.map((c) => c.total - c.collector - c.compiler));
  line('V8\'s collector', last.map((c) => c.collector));
  line('V8\'s optimizing compiler', last.map((c) => c.compiler));
}

/** The child, under callgrind: one client, a small request, then a 5 MiB request per 'go'. */
async function child(url) {
  const { SecureChatCompletion } = await import('@nomyo/core');
  const { request } = await import('./payloads.mjs');
  const client = new SecureChatCompletion({ baseUrl: url, allowHttp: true, maxRetries: 0 });
  await client.create(request(1024));
  const five = request(5 * 1024 * 1024);
  process.on('message', async (msg) => {
    if (msg === 'stop') {
      await client.dispose();
      process.disconnect();
      return;
    }
    await client.create(five);
    process.send('done');
  });
  process.send('ready');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(process.argv[2]);
