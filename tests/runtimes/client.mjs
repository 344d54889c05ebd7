// Runs scenario.mjs in one process of Node, Deno or Bun and prints one JSON line of results.
// Usage: <runtime> client.mjs <router url> <tamper api key> <empty key dir> [--first-4096]
import { readFileSync } from 'node:fs';
import * as step from './scenario.mjs';

const [url, tamperKey, keyDir, ...flags] = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);

// What the kernel says this process has locked, to hold getMemoryProtection() to its word (Linux);
// null where the runtime may not read it (Deno grants /proc/self only with --allow-all).
function lockedByKernel() {
  try {
    return Number(/VmLck:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  } catch {
    return null;
  }
}

const result = { runtime: step.describeRuntime() };
result.first = await step.firstRequest(url, 2048);
result.one = await step.oneRequest();
result.tampered = await step.tamperedRequest(tamperKey);
result.protection = await step.protection();
result.vmLck = lockedByKernel();
result.keyFiles = await step.keyFiles(url, keyDir);
result.firstDefault = await step.firstRequest(url);
result.oneDefault = await step.oneRequest();
result.streamed = await step.streamedRequest();
result.large = await step.largeRequest();
result.tamperedDefault = await step.tamperedRequest(tamperKey);
// The default key size, for the report: what a user's first request costs here.
if (flags.includes('--first-4096')) result.first4096 = await step.firstRequest(url, 4096);
await step.dispose();
console.log(JSON.stringify(result));
