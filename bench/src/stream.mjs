/**
 * `pnpm bench stream`: streamed answers (protocol v2) end to end, client → router → upstream, each
 * in a process of its own (the router: stream-router.mjs, with the vector key; the upstream:
 * sse-upstream.mjs, a node:http server streaming OpenAI-shaped chunks), against the openai SDK
 * reading the same upstream directly in plaintext. Both clients (stream-clients.mjs) use the
 * runtime's own fetch. This file starts the processes, runs the parts asked for and prints them,
 * then a table of each figure against its target; each part lives in a module of its own:
 *
 * 1. Time to first token (stream-ttft.mjs): create() to the first chunk with content, interleaved,
 *    beside the router's RSA-OAEP-4096 decryption timed in the router's process in the same rounds,
 *    and the moments in between as the router and the upstream saw them.
 * 2. Latency added per token (stream-latency.mjs): 200 tokens 20 ms apart, each client takes
 *    arrival − emission on the shared clock; streams of all ways run side by side.
 * (1) and (2) also read the upstream through a plaintext relay (plain-relay.mjs) with the openai
 * SDK: what one more process on the path costs on this machine, without anything of ours.
 * 3. Throughput and 4. memory (stream-throughput.mjs): streams of 100,000 records without delay, in
 *    a fresh client process; the router's own rate; CPU time per record and peaks of RSS in each
 *    process. Beside them, in-process rates of StreamSealer.record and StreamOpener.event.
 * 5. Wire (stream-wire.mjs): the router's SSE bytes per record against the upstream's plaintext event.
 *
 * STREAM_PARTS=ttft,latency,throughput,wire picks parts; STREAMS=n streams per side for (2)
 * (default 50), STREAM_RECORDS=n for (3) (default 100000), STREAM_ROUNDS=n streams of that length
 * per kind (default 3).
 */
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { VERSION as OPENAI_VERSION } from 'openai/version';
import { clockOffset, startChild, startUpstream } from './sse-upstream.mjs';
import { fixed as f } from './stats.mjs';
import { nomyoClient, openaiClient } from './stream-clients.mjs';
import { printTtft, timeToFirstToken } from './stream-ttft.mjs';
import { idleCost, perTokenLatency, printLatency } from './stream-latency.mjs';
import { microRates, printThroughput, throughput } from './stream-throughput.mjs';
import { printWire, wire } from './stream-wire.mjs';

const ROUTER = fileURLToPath(new URL('./stream-router.mjs', import.meta.url));
const RELAY = fileURLToPath(new URL('./plain-relay.mjs', import.meta.url));
const PARTS = new Set((process.env.STREAM_PARTS ?? 'ttft,latency,throughput,wire').split(','));

export async function streaming({ rounds }) {
  const upstream = await startUpstream();
  const router = await startChild(ROUTER, [upstream.url], ['--expose-gc']);
  const relay = await startChild(RELAY, [new URL(upstream.url).origin]);
  const result = { load: [loadavg()[0]] };
  try {
    result.clocks = { upstream: await clockOffset(upstream), router: await clockOffset(router) };
    const nomyo = nomyoClient(router.url);
    const openai = openaiClient(upstream.url);
    const relayed = openaiClient(relay.url);
    if (PARTS.has('ttft')) result.ttft = await timeToFirstToken(nomyo, openai, relayed, router, upstream, result.clocks, Math.max(50, rounds));
    if (PARTS.has('latency')) result.latency = { ...(await perTokenLatency(nomyo, openai, relayed, router, result.clocks)), idle: await idleCost() };
    if (PARTS.has('wire')) result.wire = await wire(nomyo, router, upstream);
    await nomyo.dispose();
    if (PARTS.has('throughput')) {
      result.micro = await microRates();
      result.throughput = await throughput(router, upstream);
    }
    result.load.push(loadavg()[0]);
    return result;
  } finally {
    await relay.close();
    await router.close();
    await upstream.close();
  }
}

export function printStreaming(r) {
  const rows = [];
  console.log(`\nStreamed answers (protocol v2): @nomyo/core → reference router → upstream, each in its own process, against the openai SDK ${OPENAI_VERSION} reading the same upstream directly`);
  console.log(`${availableParallelism()} CPUs, load average ${f(r.load[0])} at the start, ${f(r.load.at(-1))} at the end. Shared clock: performance.timeOrigin + performance.now() in every process; ` +
    `each child's offset from ours measured over IPC (the quickest of 50 round trips, at its middle) and taken off its readings: ` +
    `upstream ${f(r.clocks.upstream.offset, 3)} ± ${f(r.clocks.upstream.error, 3)} ms, router ${f(r.clocks.router.offset, 3)} ± ${f(r.clocks.router.error, 3)} ms`);
  if (r.ttft) rows.push(...printTtft(r.ttft));
  if (r.latency) rows.push(...printLatency(r.latency));
  if (r.throughput) rows.push(...printThroughput(r.throughput, r.micro));
  if (r.wire) rows.push(...printWire(r.wire));
  console.log('\nfigure                                         measured   target');
  for (const [what, value, target, ok] of rows) console.log(`${what.padEnd(44)} ${value.padStart(11)}   ${target.padEnd(22)} ${ok ? 'met' : 'MISSED'}`);
}
