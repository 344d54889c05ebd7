/**
 * `pnpm bench router`: the reference router as a production replica (`nomyo-server`, each in a
 * process of its own, the vector key), with v2 requests of 1 KiB sealed ahead of time and posted
 * with node:http over kept-alive connections (router-load.mjs), so the client's own work is not in
 * the way of what is measured.
 *
 * 1. Overhead per request: one request at a time, interleaved (stats.mjs compare), to the same
 *    upstream (sse-upstream.mjs, answering whole completions as large as the request): directly,
 *    through a plaintext pass-through (plain-relay.mjs), and through the router (opening the
 *    request, the upstream call in plaintext, sealing the answer); beside it, the router with its
 *    echo model (no upstream call) and RSA-OAEP-4096 decryption timed alone.
 * 2. Peak requests/s at concurrency 32 (1 KiB, v2, echo model): one replica directly, one behind
 *    nginx, three behind nginx (docs/examples/nginx.conf, TLS at nginx), with the CPU time each
 *    process spent per request (/proc), which says where the time goes.
 * 3. RSS of a replica along 10,000 requests (whole answers and streams), sampled every 500.
 *
 * ROUTER_PARTS=overhead,peak,rss picks parts; PEAK_SECONDS=n the measured seconds of each peak run
 * (default 5); RSS_REQUESTS=n the requests of part 3 (default 10000).
 */
import { availableParallelism, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PATHS, pemToDer } from '@nomyo/core/protocol';
import { request as payloadOf } from './payloads.mjs';
import { compare, fixed as f, fmt, median } from './stats.mjs';
import { SERVER_KEY, startServerProcess } from './server-process.mjs';
import { startChild, startUpstream } from './sse-upstream.mjs';
import { agentFor, childPids, cpuMs, drive, machineBusyMs, ownCpuMs, post, rssOf, sealedRequests } from './router-load.mjs';
import { nginxFound, startNginx } from './router-nginx.mjs';

const RELAY = fileURLToPath(new URL('./plain-relay.mjs', import.meta.url));
const PARTS = new Set((process.env.ROUTER_PARTS ?? 'overhead,peak,rss').split(','));
const PEAK_SECONDS = Number(process.env.PEAK_SECONDS ?? 5);
const RSS_REQUESTS = Number(process.env.RSS_REQUESTS ?? 10_000);
const CONCURRENCY = 32;
const MiB = 1024 * 1024;

export async function routerBench({ rounds }) {
  const result = { load: [loadavg()[0]] };
  if (PARTS.has('overhead')) result.overhead = await overhead(Math.max(200, rounds));
  if (PARTS.has('peak')) result.peak = await peak();
  if (PARTS.has('rss')) result.rss = await rssAlong(RSS_REQUESTS);
  result.load.push(loadavg()[0]);
  return result;
}

/** One RSA-OAEP (SHA-256) decryption of a 32-byte key with the vector key, as the router makes it for every v2 request. */
async function rsaDecryption(rounds) {
  const oaep = { name: 'RSA-OAEP', hash: 'SHA-256' };
  const der = pemToDer(readFileSync(SERVER_KEY, 'utf8'), 'PRIVATE KEY');
  const privateKey = await crypto.subtle.importKey('pkcs8', der, oaep, true, ['decrypt']);
  const jwk = await crypto.subtle.exportKey('jwk', privateKey);
  const publicKey = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RSA-OAEP-256', ext: true }, oaep, false, ['encrypt']);
  const wrapped = await crypto.subtle.encrypt(oaep, publicKey, crypto.getRandomValues(new Uint8Array(32)));
  const r = await compare({ rsa: () => crypto.subtle.decrypt(oaep, privateKey, wrapped) }, { rounds });
  return r.rsa;
}

async function overhead(rounds) {
  const upstream = await startUpstream();
  const relay = await startChild(RELAY, [new URL(upstream.url).origin]);
  const router = await startServerProcess(['--upstream', upstream.url]);
  const echo = await startServerProcess();
  try {
    const total = rounds + 2;
    const viaUpstream = await sealedRequests(router.url, total);
    const viaEcho = await sealedRequests(echo.url, total);
    const plain = JSON.stringify(payloadOf(1024));
    const json = { 'Content-Type': 'application/json' };
    const agents = { direct: agentFor(upstream.url, 1), relay: agentFor(relay.url, 1), router: agentFor(router.url, 1), echo: agentFor(echo.url, 1) };
    const serverMs = { router: [], echo: [] };
    let i = 0;
    let e = 0;
    // The router's answer is checked once: opened, and its content is the request's.
    const first = await post(router.url + PATHS.secureCompletion, viaUpstream.requests[0].headers, viaUpstream.requests[0].body, agents.router);
    const opened = await viaUpstream.open(0, first.text);
    if (opened.choices[0].message.content !== payloadOf(1024).messages[0].content) throw new Error('the router answered something else');
    i = 1;
    const ok = (answer) => {
      if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.text.slice(0, 200)}`);
      return answer;
    };
    const times = await compare(
      {
        direct: async () => ok(await post(`${upstream.url}/chat/completions`, json, plain, agents.direct)),
        relay: async () => ok(await post(`${relay.url}/chat/completions`, json, plain, agents.relay)),
        router: async () => {
          const r = viaUpstream.requests[i++ % total];
          serverMs.router.push(ok(await post(router.url + PATHS.secureCompletion, r.headers, r.body, agents.router)).serverMs);
        },
        echo: async () => {
          const r = viaEcho.requests[e++ % total];
          serverMs.echo.push(ok(await post(echo.url + PATHS.secureCompletion, r.headers, r.body, agents.echo)).serverMs);
        },
      },
      { rounds },
    );
    for (const agent of Object.values(agents)) agent.destroy();
    return { rounds, ...times, routerServerMs: median(serverMs.router), echoServerMs: median(serverMs.echo), rsa: await rsaDecryption(rounds) };
  } finally {
    await echo.close();
    await router.close();
    await relay.close();
    await upstream.close();
  }
}

/**
 * Drives `url` for PEAK_SECONDS after a second of warm-up. CPU time per answer: of each role's
 * processes (`pids()`, asked after the warm-up, when nginx has its worker), of this process (the
 * load generator), and of everything else on the machine (/proc/stat), which is what other work
 * took from the run.
 */
async function peakRun(url, requests, pids, ca) {
  const agent = agentFor(url, CONCURRENCY, ca);
  await drive(url, requests, { concurrency: CONCURRENCY, agent, seconds: 1 });
  const roles = pids();
  const sample = () => ({
    ...Object.fromEntries(Object.entries(roles).map(([role, list]) => [role, list.reduce((sum, pid) => sum + cpuMs(pid), 0)])),
    load: ownCpuMs(),
    machine: machineBusyMs(),
  });
  const before = sample();
  const run = await drive(url, requests, { concurrency: CONCURRENCY, agent, seconds: PEAK_SECONDS });
  const after = sample();
  const cpu = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - before[k]) / run.answered]));
  cpu.other = cpu.machine - Object.keys(roles).reduce((sum, role) => sum + cpu[role], 0) - cpu.load;
  agent.destroy();
  return { ...run, cpu };
}

async function peak() {
  const replicas = [];
  try {
    for (let k = 0; k < 3; k++) replicas.push(await startServerProcess());
    const { requests } = await sealedRequests(replicas[0].url, 3_000);
    const rows = [];
    rows.push({ label: '1 replica, directly (http)', ...(await peakRun(replicas[0].url, requests, () => ({ replica: [replicas[0].pid] }))) });
    const found = nginxFound();
    if (found.problem) {
      rows.push({ label: 'behind nginx', skipped: found.problem });
      return rows;
    }
    for (const n of [1, 3]) {
      const nginx = await startNginx(replicas.slice(0, n).map((r) => r.url));
      try {
        const pids = () => ({ replica: replicas.slice(0, n).map((r) => r.pid), nginx: childPids(nginx.pid) });
        rows.push({ label: `${n} replica${n > 1 ? 's' : ''} behind nginx (TLS)`, ...(await peakRun(nginx.url, requests, pids, nginx.ca)) });
      } finally {
        await nginx.close();
      }
    }
    return rows;
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
}

async function rssAlong(count) {
  const replica = await startServerProcess();
  try {
    // Every third a stream (the echo model's, no delay): records, heartbeats' timers and the final record too.
    const { requests } = await sealedRequests(replica.url, count, { streams: true });
    const samples = [{ requests: 0, rss: rssOf(replica.pid) }];
    const agent = agentFor(replica.url, CONCURRENCY);
    const run = await drive(replica.url, requests, {
      concurrency: CONCURRENCY,
      agent,
      count,
      each: (done) => {
        if (done % 500 === 0) samples.push({ requests: done, rss: rssOf(replica.pid) });
      },
    });
    agent.destroy();
    return { count, samples, seconds: run.seconds };
  } finally {
    await replica.close();
  }
}

export function printRouterBench(r) {
  console.log(`\nThe router as a replica (nomyo-server in its own process; v2 requests of 1 KiB sealed ahead, posted with node:http, kept-alive connections)`);
  console.log(`${availableParallelism()} CPUs, load average ${f(r.load[0])} at the start, ${f(r.load.at(-1))} at the end`);
  if (r.overhead) {
    const o = r.overhead;
    console.log(`\n1. Overhead per request, 1 KiB request and answer, one at a time (medians of ${o.rounds} interleaved rounds)`);
    console.log(`   upstream directly (plaintext)                          ${fmt(o.direct)}`);
    console.log(`   through a plaintext pass-through (plain-relay.mjs)     ${fmt(o.relay)}   +${fmt(o.relay - o.direct).trim()} over direct: one more process and hop`);
    console.log(`   through the router (open, upstream call, seal)         ${fmt(o.router)}   +${fmt(o.router - o.direct).trim()} over direct, +${fmt(o.router - o.relay).trim()} over the pass-through`);
    console.log(`     its own time, body in to answer written (X-Processing-Time-Ms): ${fmt(o.routerServerMs).trim()}, upstream call included`);
    console.log(`   the router with its echo model (no upstream call)      ${fmt(o.echo)}   (its own time ${fmt(o.echoServerMs).trim()})`);
    console.log(`     of which RSA-OAEP-4096 decryption of K, timed alone:  ${fmt(o.rsa)}`);
  }
  if (r.peak) {
    console.log(`\n2. Peak requests/s at concurrency ${CONCURRENCY} (1 KiB, v2, echo model; ${PEAK_SECONDS} s after 1 s of warm-up); CPU ms per request by process`);
    console.log('   setup                              req/s    p50 ms   p99 ms   CPU ms per request: replicas  nginx  load gen  other work');
    for (const row of r.peak) {
      if (row.skipped) {
        console.log(`   ${row.label}: skipped: ${row.skipped}`);
        continue;
      }
      const c = row.cpu;
      console.log(`   ${row.label.padEnd(32)} ${f(row.rate, 0).padStart(7)} ${f(row.p50, 1).padStart(9)} ${f(row.p99, 1).padStart(8)}   ${f(c.replica).padStart(27)} ${(c.nginx === undefined ? '-' : f(c.nginx)).padStart(6)} ${f(c.load).padStart(9)} ${f(Math.max(0, c.other)).padStart(11)}`);
    }
    const cores = availableParallelism();
    const [one, , three] = r.peak;
    if (three && !three.skipped) {
      const ours = three.cpu.replica + three.cpu.nginx + three.cpu.load;
      console.log(`   where the time goes: a request costs about ${f(ours)} ms of CPU in all: ${f(three.cpu.replica)} in the replicas (RSA-OAEP-4096 decryption of K ` +
        `${r.overhead ? `${f(r.overhead.rsa)} ms` : 'most'} of it), ${f(three.cpu.nginx)} in nginx (TLS, proxying), ${f(three.cpu.load)} in the load generator; ` +
        `${cores} cores top out near ${f((cores * 1000) / ours, 0)} req/s, less what other work on the machine took (${f(Math.max(0, three.cpu.other))} ms per request here). ` +
        `One replica alone already keeps ${f((one.rate * one.cpu.replica) / 1000)} cores busy (Web Crypto's RSA runs on libuv's thread pool, beside the event loop), ` +
        `so 3 replicas give ${f(three.rate / one.rate)}x one replica, not 3x: all share the same ${cores} cores with nginx and the load generator.`);
    }
  }
  if (r.rss) {
    const s = r.rss.samples;
    const at = (n) => s.find((x) => x.requests === n) ?? s.at(-1);
    const after = s.filter((x) => x.requests >= 2000).map((x) => x.rss);
    console.log(`\n3. RSS of a replica along ${r.rss.count} requests (v2, 1 KiB; every third a stream), concurrency ${CONCURRENCY}, ${f(r.rss.seconds, 1)} s`);
    console.log(`   ${[0, 1000, 2000, 4000, 6000, 8000, r.rss.count].map((n) => `${n}: ${f(at(n).rss / MiB, 1)} MiB`).join(', ')}`);
    console.log(`   from 2,000 requests on: min ${f(Math.min(...after) / MiB, 1)} MiB, max ${f(Math.max(...after) / MiB, 1)} MiB, last − at 2,000: ${f((s.at(-1).rss - at(2000).rss) / MiB, 1)} MiB`);
  }
}
