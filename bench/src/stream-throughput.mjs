/**
 * Parts 3 and 4 of `pnpm bench stream` (see stream.mjs): throughput and memory. Streams of 100,000
 * records without delay, in a fresh client process (this file, run as a child: {@link child}); the
 * router's own rate read where it writes, also with a client that reads the sealed bytes without
 * opening them (then only the router bounds it); CPU time per record in each process; peaks of RSS
 * at 10k, 50k and 100k records on both sides. Beside them, in-process rates of StreamSealer.record
 * and StreamOpener.event.
 *
 * STREAM_RECORDS=n records a stream (default 100000), STREAM_ROUNDS=n streams of that length per
 * kind (default 3).
 */
import { createCipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { EventParser, LineDecoder, StreamOpener, StreamSealer, HEADERS, PACKAGE_CONTENT_TYPE, parseServerKey, sealRequestV2, serializePackage } from '@nomyo/core/protocol';
import { heapBytes } from '@nomyo/core/internal';
import { benchModel, chunkJson, clock, startChild, WORDS } from './sse-upstream.mjs';
import { resetPeak, status } from './peak-rss.mjs';
import { fixed as f, median } from './stats.mjs';
import { MESSAGES, nomyoClient, openaiClient } from './stream-clients.mjs';

const MIB = 1024 * 1024;
const RECORDS = Number(process.env.STREAM_RECORDS ?? 100_000);
const STREAM_ROUNDS = Number(process.env.STREAM_ROUNDS ?? 3);
const RSS_MARKS = [10_000, 50_000, 100_000].filter((n) => n <= RECORDS);

/**
 * In this process, no I/O: StreamSealer.record over one-word chunks' JSON (its events dropped as
 * they come, as the router's are once written), and the client's way of reading one sealed stream
 * (LineDecoder → EventParser → StreamOpener.event), one event a piece as a token-paced stream
 * arrives; beside them, the plaintext way an SDK reads the upstream's events (the same decoders,
 * JSON.parse), and the floor of a record's cipher work: node:crypto AES-256-GCM over its padded
 * plaintext (a cipher made per record, as the nonce changes) and the base64 of the result. The
 * stream read is sealed before and collected into the old generation, so a round's collections are
 * of its own garbage. Medians of 7 rounds of 20,000 records after 2 warm-up rounds, in turns.
 */
export async function microRates() {
  const n = 20_000;
  const payloadId = crypto.randomUUID();
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const kdfKey = await crypto.subtle.importKey('raw', raw, 'HKDF', false, ['deriveKey', 'deriveBits']);
  const jsons = Array.from({ length: n }, (_, i) => chunkJson(clock(), { content: WORDS[i % WORDS.length] }));
  const encoder = new TextEncoder();
  const sealer = await StreamSealer.start(kdfKey, payloadId);
  const events = [sealer.header()];
  for (const json of jsons) events.push(await sealer.record(json));
  events.push(await sealer.final());
  const sealedPieces = events.map((e) => encoder.encode(e));
  const plainPieces = jsons.map((json) => encoder.encode(`data: ${json}\n\n`));
  const key = createSecretKey(raw);
  const nonce = randomBytes(12);
  const padded = jsons.map((json) => new Uint8Array(Math.ceil(encoder.encode(json).length / 128) * 128));
  globalThis.gc?.();
  const read = async (pieces, onEvent) => {
    const lines = new LineDecoder();
    const parser = new EventParser();
    for (const piece of pieces) {
      for (const line of lines.push(piece)) {
        const event = parser.push(line);
        if (event) await onEvent(event);
      }
    }
  };
  const tasks = {
    seal: async () => {
      const s = await StreamSealer.start(kdfKey, payloadId);
      for (const json of jsons) await s.record(json);
    },
    open: async () => {
      const opener = new StreamOpener(kdfKey, payloadId, heapBytes);
      await read(sealedPieces, (event) => opener.event(event));
    },
    plain: () => read(plainPieces, (event) => JSON.parse(event.data)),
    floor: () => {
      for (const [i, plaintext] of padded.entries()) {
        const cipher = createCipheriv('aes-256-gcm', key, nonce);
        cipher.setAAD(encoder.encode(`nomyo/2 stream record\n${payloadId}\n${i}\nmore`));
        const sealed = Buffer.concat([cipher.update(plaintext), (cipher.final(), cipher.getAuthTag())]);
        void `data: ${sealed.toString('base64')}\n\n`;
      }
    },
  };
  const times = Object.fromEntries(Object.keys(tasks).map((k) => [k, []]));
  for (let round = 0; round < 9; round++) {
    const order = Object.entries(tasks);
    for (const [name, task] of round % 2 ? order.reverse() : order) {
      const t0 = performance.now();
      await task();
      if (round >= 2) times[name].push(performance.now() - t0);
    }
  }
  const rate = (ms) => (n / median(ms)) * 1000;
  return { records: n, ...Object.fromEntries(Object.entries(times).map(([k, ms]) => [k, rate(ms)])) };
}

/**
 * {@link STREAM_ROUNDS} rounds, in a fresh client process (this file as a child), of three streams of
 * {@link RECORDS} records without delay, in an order turned every round: through the router opened
 * by @nomyo/core; through the router read as sealed bytes and not opened ("drain": the router alone
 * bounds it); from the upstream by the openai SDK. Before each, the router and the client collect
 * and reset their peak RSS; the peaks are read at each of {@link RSS_MARKS}. CPU time is read in
 * each of the three processes.
 */
export async function throughput(router, upstream) {
  const client = await startChild(fileURLToPath(import.meta.url), [router.url, upstream.url], ['--expose-gc']);
  const runs = { nomyo: [], drain: [], openai: [] };
  const cpuMs = ({ user, system }) => (user + system) / 1000;
  try {
    await client.ask('warm');
    for (let i = 0; i < STREAM_ROUNDS; i++) {
      const order = Object.keys(runs);
      for (const kind of i % 2 ? order.reverse() : order) {
        await router.ask('reset');
        const before = await upstream.ask('cpu');
        const run = await client.ask(kind, { records: RECORDS });
        const upstreamCpuMs = cpuMs(await upstream.ask('cpu')) - cpuMs(before);
        runs[kind].push({ ...run, upstreamCpuMs, router: kind === 'openai' ? undefined : await router.ask('stats') });
      }
    }
  } finally {
    await client.close();
  }
  return runs;
}

/** Per second, `count` things between the first and the last (ms). */
const perSecond = (count, first, last) => ((count - 1) / (last - first)) * 1000;

const k = (x) => `${f(x / 1000, 1)}k`;

export function printThroughput(tp, micro) {
  const each = (runs, pick) => runs.map(pick);
  const clientRates = each(tp.nomyo, (x) => perSecond(x.count, x.first, x.last));
  const routerRates = each(tp.nomyo, (x) => perSecond(x.router.records, x.router.first, x.router.last));
  const drainRates = each(tp.drain, (x) => perSecond(x.router.records, x.router.first, x.router.last));
  const openaiRates = each(tp.openai, (x) => perSecond(x.count, x.first, x.last));
  const ks = (xs) => xs.map(k).join(', ');
  const us = (runs, cpu, count) => each(runs, (x) => f((cpu(x) * 1000) / count(x), 1)).join(', ');
  const records = (x) => x.router.records;
  console.log(`\n3. Throughput: streams of ${RECORDS} records without delay, ${STREAM_ROUNDS} per kind, in turns, in a fresh client process; records per second between the first and the last (each stream):`);
  console.log(`   @nomyo, opened by the client: ${ks(clientRates)}; written by the router at ${ks(routerRates)}`);
  console.log(`     CPU µs per record: client ${us(tp.nomyo, (x) => x.cpuMs, (x) => x.count)}; router ${us(tp.nomyo, (x) => x.router.cpuMs, records)}; upstream ${us(tp.nomyo, (x) => x.upstreamCpuMs, records)}`);
  console.log(`   the router alone (its client reads the sealed bytes, opens nothing): ${ks(drainRates)}`);
  console.log(`     CPU µs per record: client ${us(tp.drain, (x) => x.cpuMs, records)}; router ${us(tp.drain, (x) => x.router.cpuMs, records)}; upstream ${us(tp.drain, (x) => x.upstreamCpuMs, records)}`);
  console.log(`   the openai SDK reading the upstream directly: ${ks(openaiRates)}`);
  console.log(`     CPU µs per chunk: client ${us(tp.openai, (x) => x.cpuMs, (x) => x.count)}; upstream ${us(tp.openai, (x) => x.upstreamCpuMs, (x) => x.count)}`);
  console.log(`   in this process, no I/O, ${micro.records} one-word records per second: StreamSealer.record ${k(micro.seal)}; LineDecoder → EventParser → StreamOpener.event ${k(micro.open)}; ` +
    `the same decoders + JSON.parse on the plaintext events ${k(micro.plain)}; a record's bare cipher work (node:crypto AES-256-GCM, base64) ${k(micro.floor)}`);

  const peaks = (runs, side) => RSS_MARKS.map((mark) => `${mark / 1000}k: ${runs.map((x) => `${f(side(x).peaks[mark] / MIB, 1)} (${f(side(x).heaps[mark] / MIB, 1)})`).join(', ')}`).join('; ');
  console.log(`\n4. Peak RSS added, MiB, each stream (after a collection), read as the ${RSS_MARKS.map((m) => `${m / 1000}k`).join(', ')}-th record went by; ` +
    'in brackets how much of it is the V8 heap growing (its heapTotal), which a fresh process does over its first long stream:');
  console.log(`   client (@nomyo):          ${peaks(tp.nomyo, (x) => x)}`);
  console.log(`   router (client opening):  ${peaks(tp.nomyo, (x) => x.router)}`);
  console.log(`   router (client draining): ${peaks(tp.drain, (x) => x.router)}`);
  console.log(`   openai SDK client:        ${peaks(tp.openai, (x) => x)}`);

  const clientRate = median(clientRates);
  const routerRate = median(drainRates);
  const ratio = clientRate / median(openaiRates);
  const clientPeak = Math.max(...tp.nomyo.map((x) => x.peak)) / MIB;
  const routerPeak = Math.max(...[...tp.nomyo, ...tp.drain].map((x) => x.router.peak)) / MIB;
  return [
    ['records/s opened by the client (median)', k(clientRate), '≥ 25k', clientRate >= 25_000],
    ['records/s sealed by the router alone (median)', k(routerRate), '≥ 25k', routerRate >= 25_000],
    ['@nomyo / openai SDK, chunks/s (medians)', `${f(ratio)}x`, '≥ 0.33x', ratio >= 0.33],
    ['client peak added RSS (largest)', `${f(clientPeak, 1)} MiB`, '≤ 32 MiB', clientPeak <= 32],
    ['router peak added RSS (largest)', `${f(routerPeak, 1)} MiB`, '≤ 32 MiB', routerPeak <= 32],
  ];
}

/** The client child of {@link throughput}: answers `warm`, `nomyo`, `drain` and `openai` over IPC. */
async function child(routerUrl, upstreamUrl) {
  const nomyo = nomyoClient(routerUrl);
  const openai = openaiClient(upstreamUrl);
  const serverKey = await parseServerKey(await (await fetch(`${routerUrl}/pki/public_key`)).text());

  /** Counts the chunks of `stream`, with the shared-clock time of the first and the last and the peak RSS at each mark. */
  const count = async (stream, base, baseHeap) => {
    let n = 0;
    let first = 0;
    const peaks = {};
    const heaps = {};
    for await (const _chunk of stream) {
      if (n++ === 0) first = clock();
      if (RSS_MARKS.includes(n)) {
        peaks[n] = status(process.pid, 'VmHWM') - base;
        heaps[n] = process.memoryUsage().heapTotal - baseHeap;
      }
    }
    return { count: n, first, last: clock(), peaks, heaps, peak: status(process.pid, 'VmHWM') - base };
  };
  /** A v2 request sealed by hand (the protocol's own functions), its streamed answer read as bytes and dropped. */
  const drain = async (records) => {
    const payloadId = crypto.randomUUID();
    const plaintext = new TextEncoder().encode(JSON.stringify({ model: benchModel(records), messages: MESSAGES, stream: true }));
    const { package: pkg } = await sealRequestV2(plaintext, crypto.getRandomValues(new Uint8Array(32)), serverKey.key, { payloadId, tier: undefined });
    const res = await fetch(`${routerUrl}/v1/chat/secure_completion`, {
      method: 'POST',
      headers: { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, [HEADERS.payloadId]: payloadId, Accept: 'text/event-stream' },
      body: serializePackage(pkg),
    });
    let bytes = 0;
    for await (const piece of res.body) bytes += piece.length;
    return { bytes };
  };
  const kinds = {
    nomyo: (records) => nomyo.create({ model: benchModel(records), messages: MESSAGES, stream: true }),
    openai: (records) => openai.chat.completions.create({ model: benchModel(records), messages: MESSAGES, stream: true }),
  };
  process.on('message', async ({ type, records }) => {
    if (type === 'warm') {
      for (const make of Object.values(kinds)) await count(await make(2000), 0, 0);
      await drain(2000);
      return process.send({ type });
    }
    globalThis.gc();
    resetPeak(process.pid);
    const base = status(process.pid, 'VmRSS');
    const baseHeap = process.memoryUsage().heapTotal;
    const cpu = process.cpuUsage();
    const run = type === 'drain' ? await drain(records) : await count(await kinds[type](records), base, baseHeap);
    const used = process.cpuUsage(cpu);
    process.send({ type, ...run, cpuMs: (used.user + used.system) / 1000 });
  });
  process.once('disconnect', () => process.exit(0));
  console.log('listening on ipc');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(process.argv[2], process.argv[3]);
