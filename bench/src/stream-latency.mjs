/**
 * Part 2 of `pnpm bench stream` (see stream.mjs): latency added per token. 200 tokens 20 ms apart;
 * the upstream stamps each chunk with the time it writes it on the shared clock (sse-upstream.mjs),
 * each client takes arrival − emission. Streams of all ways run side by side, on emission grids a
 * few ms apart so that no two tokens are written at the same moment, the phases handed round every
 * round. The openai SDK also reads the upstream through a plaintext relay (plain-relay.mjs): what
 * one more process on the path costs on this machine, without anything of ours.
 *
 * STREAMS=n streams per side (default 50).
 */
import { EventParser, LineDecoder, StreamOpener, StreamSealer } from '@nomyo/core/protocol';
import { heapBytes } from '@nomyo/core/internal';
import { benchModel, chunkJson, clock, stampOf } from './sse-upstream.mjs';
import { fixed as f, median, quantile } from './stats.mjs';
import { MESSAGES } from './stream-clients.mjs';

const STREAMS = Number(process.env.STREAMS ?? 50);
/** Two streams of each of the three ways at a time: six, their tokens 3.3 ms apart on a 20 ms grid. */
const PAIRS = 2;
const TOKEN_MS = 20;
const TOKENS = 200;

/** One stream read to its end: each content chunk's place in the stream, arrival (our clock) and emission (the upstream's). */
async function tokenTimes(stream) {
  const tokens = [];
  let index = 0;
  for await (const chunk of stream) {
    const at = clock();
    if (chunk.choices[0]?.delta?.content) tokens.push({ index, at, stamp: stampOf(chunk) });
    index++;
  }
  return tokens;
}

/**
 * {@link STREAMS} streams of {@link TOKENS} tokens {@link TOKEN_MS} ms apart each way (@nomyo, the
 * openai SDK directly, the openai SDK through the plaintext relay), {@link PAIRS} of each at a
 * time, each on its own phase of the upstream's grid (the phases handed round every round), so
 * all ways see the same machine at the same time and never a token of another at the same moment.
 * For @nomyo's tokens, the router's write of each record splits the delay into the upstream →
 * router part and the router → caller part.
 */
export async function perTokenLatency(nomyo, openai, relayed, router, clocks) {
  const ours = (stamp) => stamp - clocks.upstream.offset;
  const out = { streams: STREAMS, nomyo: [], openai: [], relayed: [], toRouter: [], fromRouter: [] };
  const ways = 3 * PAIRS;
  // A warm-up round of short streams first.
  const rounds = [{ tokens: 20, warm: true }, ...Array.from({ length: Math.ceil(STREAMS / PAIRS) }, () => ({ tokens: TOKENS }))];
  await router.ask('writes', { keep: true });
  for (const [r, { tokens, warm }] of rounds.entries()) {
    const phase = (slot) => (((slot + r) % ways) * TOKEN_MS) / ways;
    const sdk = (client, slot) => client.chat.completions.create({ model: benchModel(tokens, TOKEN_MS, phase(slot)), messages: MESSAGES, stream: true }).then(tokenTimes);
    const runs = [];
    for (let p = 0; p < PAIRS; p++) {
      runs.push(Promise.all([
        nomyo.create({ model: benchModel(tokens, TOKEN_MS, phase(3 * p)), messages: MESSAGES, stream: true }).then(async (s) => ({ id: s._metadata.payload_id, tokens: await tokenTimes(s) })),
        sdk(openai, 3 * p + 1),
        sdk(relayed, 3 * p + 2),
      ]));
    }
    const done = await Promise.all(runs);
    const { streams: written } = await router.ask('writes', { keep: true });
    if (warm) continue;
    for (const [{ id, tokens: list }, direct, relay] of done) {
      for (const { index, at, stamp } of list) {
        out.nomyo.push(at - ours(stamp));
        const wrote = written[id]?.[index] - clocks.router.offset;
        out.toRouter.push(wrote - ours(stamp));
        out.fromRouter.push(at - wrote);
      }
      for (const { at, stamp } of direct) out.openai.push(at - ours(stamp));
      for (const { at, stamp } of relay) out.relayed.push(at - ours(stamp));
    }
  }
  await router.ask('writes', { keep: false });
  return out;
}

/**
 * A control of the machine: one token's own work on each side, in this process, timed right after
 * {@link TOKEN_MS} ms of idle (as every token of part 2 finds each process) and back to back (the
 * fourth of four in a row): a
 * record sealed (StreamSealer.record) and read as the client reads it (LineDecoder → EventParser →
 * StreamOpener.event), and what the openai SDK does with a plaintext chunk (JSON.parse). Medians of
 * 100 after 20 warm-up rounds, the two ways in turns.
 */
export async function idleCost() {
  const payloadId = crypto.randomUUID();
  const kdfKey = await crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), 'HKDF', false, ['deriveKey', 'deriveBits']);
  const sealer = await StreamSealer.start(kdfKey, payloadId);
  const lines = new LineDecoder();
  const parser = new EventParser();
  const opener = new StreamOpener(kdfKey, payloadId, heapBytes);
  const encoder = new TextEncoder();
  const read = async (text) => {
    lines.feed(encoder.encode(text));
    for (let line = lines.next(); line !== undefined; line = lines.next()) {
      const event = parser.push(line);
      if (event) await opener.event(event);
    }
  };
  await read(sealer.header());
  const json = chunkJson(clock(), { content: ' word' });
  const tasks = { record: async () => read(await sealer.record(json)), plain: () => JSON.parse(json) };
  const times = { idle: { record: [], plain: [] }, busy: { record: [], plain: [] } };
  for (let i = 0; i < 120; i++) {
    for (const way of i % 2 ? ['idle', 'busy'] : ['busy', 'idle']) {
      for (const [name, task] of Object.entries(tasks)) {
        if (way === 'idle') await new Promise((resolve) => setTimeout(resolve, TOKEN_MS));
        // Back to back: the fourth of four in a row.
        else for (let warm = 0; warm < 3; warm++) await task();
        const t0 = performance.now();
        await task();
        if (i >= 20) times[way][name].push((performance.now() - t0) * 1000);
        // As the router once a record has left and the client once the caller has its chunk: the
        // next record's ciphers are asked for, off the timed path.
        if (name === 'record') (sealer.prepareNext(), opener.prepareNext());
      }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([way, t]) => [way, { record: median(t.record), plain: median(t.plain) }]));
}

export function printLatency(l) {
  const q = quantile;
  const added50 = q(l.nomyo, 0.5) - q(l.openai, 0.5);
  const added99 = q(l.nomyo, 0.99) - q(l.openai, 0.99);
  const dist = (xs) => `p50 ${f(q(xs, 0.5), 3)} ms, p90 ${f(q(xs, 0.9), 3)}, p99 ${f(q(xs, 0.99), 3)}, max ${f(Math.max(...xs))}`;
  console.log(`\n2. Per-token latency, from the upstream's write to the caller's loop: ${l.streams} streams per side of ${TOKENS} tokens ${TOKEN_MS} ms apart, ` +
    `${PAIRS} of each way at a time (${l.nomyo.length} tokens each way):`);
  console.log(`   @nomyo via the router: ${dist(l.nomyo)}`);
  console.log(`     of which upstream → the router's write of the record: ${dist(l.toRouter)}`);
  console.log(`     and the router's write → the caller's loop:           ${dist(l.fromRouter)}`);
  console.log(`   openai SDK directly:   ${dist(l.openai)}`);
  console.log(`   control, the openai SDK through the plaintext relay: ${dist(l.relayed)}`);
  console.log(`   added by the router's path (each way's quantile, subtracted): p50 ${f(added50, 3)} ms, p99 ${f(added99, 3)} ms; ` +
    `by one more process alone (the relay): p50 ${f(q(l.relayed, 0.5) - q(l.openai, 0.5), 3)} ms, p99 ${f(q(l.relayed, 0.99) - q(l.openai, 0.99), 3)} ms`);
  if (l.idle) {
    console.log(`   control, one token's own work in one process (medians, µs): a record sealed and opened ${f(l.idle.idle.record, 0)} right after ${TOKEN_MS} ms idle, ` +
      `${f(l.idle.busy.record, 0)} back to back; the openai SDK's JSON.parse of a chunk ${f(l.idle.idle.plain, 0)} and ${f(l.idle.busy.plain, 0)}`);
  }
  return [
    ['per-token latency added, p50', `${f(added50, 3)} ms`, '≤ 0.3 ms', added50 <= 0.3],
    ['per-token latency added, p99', `${f(added99, 3)} ms`, '≤ 2 ms', added99 <= 2],
  ];
}
