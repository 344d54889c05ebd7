/**
 * Part 3: key rotation. The latency of the requests that coincide with a client-key rotation
 * (the switch happens while they are in flight, or they are the first with the new key) against
 * the median request, over loopback to the reference server; and what key generation costs.
 * Target: the rotation requests within 1.5x of the median (no request waits on key generation).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SecureCompletionClient } from '@nomyo/core';
import { startServer } from '@nomyo/server';
import { fmt, median } from './stats.mjs';
import { SERVER_KEY } from './server-process.mjs';

const payload = { model: 'bench', messages: [{ role: 'user', content: 'x'.repeat(1024) }] };

export async function rotationLatency({ seconds = 10, interval = 2000, keySize = 4096 } = {}) {
  const server = await startServer({ keyFile: SERVER_KEY });
  const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true, keySize, keyRotationInterval: interval });
  try {
    await client.sendSecureRequest(payload); // first key and router key: not part of the measure
    const normal = [];
    const rotation = [];
    let before = (await client.keyPair()).fingerprint;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const t0 = performance.now();
      await client.sendSecureRequest(payload);
      const ms = performance.now() - t0;
      const after = (await client.keyPair()).fingerprint;
      (after !== before ? rotation : normal).push(ms);
      before = after;
    }
    const med = median(normal);
    const worst = rotation.length ? Math.max(...rotation) : NaN;
    return { keySize, interval, requests: normal.length + rotation.length, rotations: rotation.length, median: med, worst, ratio: worst / med };
  } finally {
    await client.dispose();
    await server.close();
  }
}

export async function keyGenerationTimes({ rounds = 3 } = {}) {
  const client = new SecureCompletionClient({ routerUrl: 'https://router.invalid', keyRotationInterval: 0 });
  const rows = [];
  for (const bits of [2048, 4096]) {
    const memory = [];
    const saved = [];
    let primes;
    for (let i = 0; i < rounds; i++) {
      let t0 = performance.now();
      ({ primes } = await client.generateKeys({ keySize: bits }));
      memory.push(performance.now() - t0);
      const dir = mkdtempSync(join(tmpdir(), 'nomyo-bench-'));
      try {
        t0 = performance.now();
        await client.generateKeys({ keySize: bits, saveToFile: true, keyDir: join(dir, 'k'), password: 'bench password' });
        saved.push(performance.now() - t0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    rows.push({ bits, primes, memory: median(memory), saved: median(saved) });
  }
  await client.dispose();
  return rows;
}

export function printRotation(r, gen) {
  console.log('\nKey rotation (loopback, sequential requests; the rotation request = switch in flight or first with the new key)');
  console.log(`RSA-${r.keySize}, every ${r.interval} ms: ${r.requests} requests, ${r.rotations} rotations; median ${fmt(r.median).trim()}, ` +
    `worst rotation request ${fmt(r.worst).trim()}: ${r.ratio.toFixed(2)}x (target <= 1.5x)`);
  console.log('Key generation (median):   in memory          saved (two primes; PBES2, 600k PBKDF2, atomic write)');
  for (const g of gen) console.log(`  RSA-${g.bits}            ${fmt(g.memory)} (${g.primes} primes)  ${fmt(g.saved)}`);
}
