/**
 * Each streamed chunk is checked once on its way through the router: an upstream's as it is
 * normalised (envelope.ts), a custom model's as its record is made (chunk-json.ts). A check costs a
 * token some 20 µs in a process back from idle. A whole answer's nesting likewise: an upstream's on
 * its text as it is read (upstream.ts), a custom model's as its JSON is written (answer-sealer.ts),
 * which costs a large answer of many short strings a fifth more time.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecureCompletionClient } from '@nomyo/core';
import { startServer, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

const checks = vi.hoisted(() => ({ count: 0, depthLimits: [] as Array<number | undefined> }));
vi.mock('@nomyo/core/protocol', async (original) => {
  const protocol = await original<typeof import('@nomyo/core/protocol')>();
  return { ...protocol, checkChatCompletionChunk: (chunk: unknown) => (checks.count++, protocol.checkChatCompletionChunk(chunk)) };
});
vi.mock('@nomyo/core/internal', async (original) => {
  const internal = await original<typeof import('@nomyo/core/internal')>();
  type Options = Parameters<typeof internal.stringifyJsonBytes>[1];
  return { ...internal, stringifyJsonBytes: (value: unknown, options: Options) => (checks.depthLimits.push(options.maxDepth?.limit), internal.stringifyJsonBytes(value, options)) };
});

const chunkOf = (content: string, finish: string | null = null) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] });
const CHUNKS = [chunkOf('one '), chunkOf('two '), chunkOf('three', 'stop')];
const CHAT = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], stream: true as const };

let server: NomyoServer | undefined;
let upstream: http.Server | undefined;
afterEach(async () => {
  await server?.close();
  upstream?.closeAllConnections();
  await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve(undefined)));
  server = upstream = undefined;
});

/** The number of chunk checks in the router while one stream is read whole through `options`' model. */
async function checksOfOneStream(options: Parameters<typeof startServer>[0]): Promise<number> {
  server = await startServer({ keyFile: VECTOR_KEY_FILE, ...options });
  const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
  // The client's checks are not counted: it is the built package, which this mock does not reach.
  const before = checks.count;
  const stream = await client.streamSecureRequest(CHAT);
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  expect(text).toBe('one two three');
  await client.dispose();
  return checks.count - before;
}

describe('each streamed chunk is checked once in the router', () => {
  it('an upstream\'s', async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        for (const chunk of CHUNKS) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        res.end('data: [DONE]\n\n');
      });
    });
    await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', resolve));
    expect(await checksOfOneStream({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1` })).toBe(CHUNKS.length);
  });

  it('a custom model\'s', async () => {
    expect(
      await checksOfOneStream({
        model: async function* () {
          yield* CHUNKS.map((c) => structuredClone(c));
        },
      }),
    ).toBe(CHUNKS.length);
  });
});

describe("a whole answer's nesting is checked once in the router", () => {
  const completion = { id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'whole' }, finish_reason: 'stop' }] };
  const depthLimitsOfOneAnswer = async (options: Parameters<typeof startServer>[0]) => {
    server = await startServer({ keyFile: VECTOR_KEY_FILE, ...options });
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true });
    checks.depthLimits.length = 0;
    expect((await client.sendSecureRequest({ model: 'm', messages: CHAT.messages })).choices[0]?.message.content).toBe('whole');
    await client.dispose();
    return checks.depthLimits;
  };

  it("an upstream's, on its text as it is read: not again as it is written", async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(completion)));
    });
    await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', resolve));
    expect(await depthLimitsOfOneAnswer({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1` })).toEqual([undefined]);
  });

  it("a custom model's, as it is written", async () => {
    expect(await depthLimitsOfOneAnswer({ model: () => structuredClone(completion) })).toEqual([64]);
  });
});
