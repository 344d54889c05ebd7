// Bundles worker.mjs the way wrangler does, runs it in workerd through miniflare and drives
// scenario.mjs one step per request, printing one JSON line shaped like client.mjs's. Inside a
// Worker the clock stands still while code runs (it moves only on I/O), so times are taken here:
// the wall time of each request, and workerd's own CPU time from /proc (Linux).
// Usage: node (>= 22, for miniflare) workerd-host.mjs <router url> <tamper api key>
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';

const [url, tamperKey] = process.argv.slice(2);
// The flags most Workers projects set: nodejs_compat gives the Worker a `process` (so core's
// Node.js checks see one) and node: modules, but no native addons.
const COMPATIBILITY = { compatibilityDate: '2026-07-01', compatibilityFlags: ['nodejs_compat'] };

const bundle = await build({
  entryPoints: [new URL('./worker.mjs', import.meta.url).pathname],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'neutral',
  // wrangler's resolution: no "node" condition, so core's #key-files and #primes pick their
  // non-Node variants; node: built-ins stay imports that nodejs_compat provides.
  conditions: ['workerd', 'worker', 'browser'],
  mainFields: ['browser', 'module', 'main'],
  external: ['node:*'],
  metafile: true,
  logLevel: 'error',
});
// What the bundle still imports from node: (core should need none outside Node.js).
const nodeImports = Object.values(bundle.metafile.inputs).flatMap((input) => input.imports.filter((i) => i.path.startsWith('node:')).map((i) => i.path));
// The module listed as wrangler lists it: miniflare's own import scan refuses core's variable
// import() of the optional addon.
const modules = [{ type: 'ESModule', path: 'worker.mjs', contents: bundle.outputFiles[0].text }];
const mf = new Miniflare({ modules, ...COMPATIBILITY });

/** CPU time of the workerd process so far, in ms: the sum over its threads (nanoseconds in schedstat). */
function workerdCpuMs() {
  const pid = readdirSync('/proc/self/task')
    .flatMap((tid) => readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(/\s+/))
    .find((child) => child && readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'workerd');
  if (!pid) throw new Error('no workerd child process found');
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1e6;
}

async function step(name, ...args) {
  const cpuBefore = workerdCpuMs();
  const started = performance.now();
  const response = await mf.dispatchFetch('http://worker/', { method: 'POST', body: JSON.stringify({ step: name, args }) });
  const value = await response.json();
  if (!response.ok) throw new Error(`step ${name}: HTTP ${response.status} ${JSON.stringify(value)}`);
  return { value, ms: performance.now() - started, cpuMs: workerdCpuMs() - cpuBefore };
}
/** A request step's result with the host's times in place of the Worker's frozen clock. */
const timedStep = async (name, ...args) => {
  const { value, ms, cpuMs } = await step(name, ...args);
  return { ...value, ms, cpuMs, workerMs: value.ms };
};

try {
  await mf.ready;
  // The workerd that miniflare runs (its own dependency).
  const fromMiniflare = createRequire(createRequire(import.meta.url).resolve('miniflare'));
  const workerd = fromMiniflare('workerd/package.json').version;
  const result = { runtime: { ...(await step('describeRuntime')).value, version: workerd, ...COMPATIBILITY }, nodeImports };
  result.first = await timedStep('firstRequest', url, 2048);
  result.one = await timedStep('oneRequest');
  result.tampered = (await step('tamperedRequest', tamperKey)).value;
  result.protection = (await step('protection')).value;
  result.keyFiles = (await step('keyFiles', url, '/nomyo-keys')).value;
  result.firstDefault = await timedStep('firstRequest', url);
  result.oneDefault = await timedStep('oneRequest');
  result.streamed = (await step('streamedRequest')).value;
  result.large = (await step('largeRequest')).value;
  result.tamperedDefault = (await step('tamperedRequest', tamperKey)).value;
  result.first4096 = await timedStep('firstRequest', url, 4096);
  await step('dispose');
  console.log(JSON.stringify(result));
} finally {
  await mf.dispose();
}
