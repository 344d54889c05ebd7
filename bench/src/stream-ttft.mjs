/**
 * Part 1 of `pnpm bench stream` (see stream.mjs): time to first token. create() to the first chunk
 * with content, interleaved, beside the router's RSA-OAEP-4096 decryption timed in the router's
 * process in the same rounds, and the moments in between as the router and the upstream saw them.
 * The openai SDK also reads the upstream through a plaintext relay (plain-relay.mjs): what one more
 * process on the path costs on this machine, without anything of ours.
 */
import { benchModel, clock } from './sse-upstream.mjs';
import { fixed as f, median, quantile } from './stats.mjs';
import { lastServerMs, watchServerTime } from './server-time.mjs';
import { MESSAGES } from './stream-clients.mjs';

/** Reads a stream to its end; the ms from `t0` to its first chunk with content. */
async function firstContent(stream, t0) {
  let first;
  for await (const chunk of stream) if (first === undefined && chunk.choices[0]?.delta?.content) first = performance.now() - t0;
  return first;
}

/**
 * create() to the first content token, `rounds` times each way after 5 warm-up rounds, the order
 * of the ways turned every round: @nomyo through the router, the openai SDK directly, and the openai
 * SDK through a plaintext relay (plain-relay.mjs: what one more process costs alone). After each
 * round, one RSA decryption timed in the router's process. The upstream writes its role chunk and
 * first token at once. Streams are read to their end (a `break` would close the connection, and the
 * next request would pay for a new one).
 */
export async function timeToFirstToken(nomyo, openai, relayed, router, upstream, clocks, rounds) {
  const model = benchModel(3);
  // A moment of another process, on our clock, in ms after `start`.
  const since = (start, at, { offset }) => at - offset - start;
  const upstreamMoments = async (start) => {
    const { arrival, firstToken } = await upstream.ask('last');
    return { upstreamArrival: since(start, arrival, clocks.upstream), upstreamFirstToken: since(start, firstToken, clocks.upstream) };
  };
  const sdk = (client) => async () => {
    const start = clock();
    const t0 = performance.now();
    const ttft = await firstContent(await client.chat.completions.create({ model, messages: MESSAGES, stream: true }), t0);
    return { ttft, moments: { ...(await upstreamMoments(start)), firstToken: ttft } };
  };
  const sides = {
    nomyo: async () => {
      const start = clock();
      const t0 = performance.now();
      const stream = await nomyo.create({ model, messages: MESSAGES, stream: true });
      const created = performance.now() - t0;
      const ttft = await firstContent(stream, t0);
      const routerMs = lastServerMs();
      const { marks } = await router.ask('stats');
      const at = (t) => since(start, t, clocks.router);
      return {
        ttft,
        routerMs,
        moments: {
          routerRequest: at(marks.request),
          ...(await upstreamMoments(start)),
          routerHeaders: at(marks.headers),
          routerHeaderEvent: at(marks.headerEvent),
          routerFirstToken: at(marks.records[1]),
          created,
          firstToken: ttft,
        },
      };
    },
    openai: sdk(openai),
    relayed: sdk(relayed),
  };
  const unwatch = watchServerTime();
  const runs = { nomyo: [], openai: [], relayed: [], rsa: [] };
  try {
    for (let i = 0; i < 5 + rounds; i++) {
      const order = Object.entries(sides);
      const turned = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
      for (const [name, side] of Math.floor(i / order.length) % 2 ? turned.reverse() : turned) {
        const run = await side();
        if (i >= 5) runs[name].push(run);
      }
      const { ms } = await router.ask('rsa');
      if (i >= 5) runs.rsa.push(ms);
    }
  } finally {
    unwatch();
  }
  const moments = (side) => Object.fromEntries(Object.keys(side[0].moments).map((k) => [k, median(side.map((r) => r.moments[k]))]));
  return {
    rounds,
    nomyo: runs.nomyo.map((r) => r.ttft),
    openai: runs.openai.map((r) => r.ttft),
    relayed: runs.relayed.map((r) => r.ttft),
    diffs: runs.nomyo.map((r, i) => r.ttft - runs.openai[i].ttft),
    routerMs: runs.nomyo.map((r) => r.routerMs),
    nomyoMoments: moments(runs.nomyo),
    openaiMoments: moments(runs.openai),
    relayedMoments: moments(runs.relayed),
    rsa: runs.rsa,
  };
}

const spread = (xs, digits = 2) => `p10-p90 ${f(quantile(xs, 0.1), digits)}-${f(quantile(xs, 0.9), digits)}`;

export function printTtft(t) {
  const difference = median(t.nomyo) - median(t.openai);
  const rsa = median(t.rsa);
  console.log(`\n1. Time to first token: create() to the first chunk with content, ${t.rounds} interleaved requests per side (the upstream writes its first token at once), medians:`);
  console.log(`   @nomyo ${f(median(t.nomyo))} ms (${spread(t.nomyo)}); openai SDK ${f(median(t.openai))} ms (${spread(t.openai)}); ` +
    `difference ${f(difference)} ms (median of each round's difference ${f(median(t.diffs))} ms)`);
  console.log(`   control: the openai SDK through a plaintext relay process (node:http, no crypto) ${f(median(t.relayed))} ms (${spread(t.relayed)}): ` +
    `one more process costs ${f(median(t.relayed) - median(t.openai))} ms; @nomyo − relay ${f(median(t.nomyo) - median(t.relayed))} ms`);
  console.log(`   the router's RSA-OAEP-4096 decryption (32 bytes, crypto.subtle, in its process, one a round): ${f(rsa)} ms (${spread(t.rsa)})`);
  const m = t.nomyoMoments;
  const o = t.openaiMoments;
  const rl = t.relayedMoments;
  console.log(`   where the time goes, ms after create() was called (each moment's median):${''.padEnd(14)}@nomyo  openai SDK  via relay`);
  const cell = (x) => (x === undefined ? ''.padStart(6) : f(x).padStart(6));
  const moment = (what, a, b, c) => console.log(`     ${what.padEnd(76)} ${cell(a)}      ${cell(b)}     ${cell(c)}`);
  moment('the router has the request\'s headers', m.routerRequest);
  moment('the upstream has the request', m.upstreamArrival, o.upstreamArrival, rl.upstreamArrival);
  moment('the upstream writes the first token', m.upstreamFirstToken, o.upstreamFirstToken, rl.upstreamFirstToken);
  moment(`the router writes its response's headers (its X-Processing-Time-Ms: ${f(median(t.routerMs))})`, m.routerHeaders);
  moment('the router writes the header event', m.routerHeaderEvent);
  moment('the router writes the first token\'s record', m.routerFirstToken);
  moment('create() resolves', m.created);
  moment('the first token reaches the caller', m.firstToken, o.firstToken, rl.firstToken);
  return [['time to first token, @nomyo − openai SDK', `${f(difference)} ms`, `≤ RSA ${f(rsa)} + 2 ms`, difference <= rsa + 2]];
}
