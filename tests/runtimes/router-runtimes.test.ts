/**
 * The router as users run it (the `nomyo-server` binary) on each Node.js the suite has: the one
 * running it, 22 and 24. Node's HTTP layer differs between versions exactly where a streamed answer
 * meets it (corked writes and the chunked encoding: on Node.js 22 every stream once arrived cut short,
 * see EventSink in packages/server/src/answer-stream.ts), so each router is checked with the
 * suite's own client: streamed answers of the echo model and of an upstream (its chunks all in one
 * piece, word by word, and more than the socket takes at once), a client's abort reaching the
 * upstream, a whole v2 answer, and a v1 one.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIUserAbortError, SecureChatCompletion, type ChatCompletionChunk } from '@nomyo/core';
import { SERVER_KEY_FILE } from '../integration/support.js';
import { startUpstream, wordsScript, type ScriptedUpstream } from '../integration/sse-upstream.js';
import { runtimeBinaries } from './binaries.js';

const CLI = fileURLToPath(new URL('../node_modules/@nomyo/server/dist/cli.js', import.meta.url));
const bin = runtimeBinaries();
const NODES = [
  { name: `Node.js ${process.versions.node.split('.')[0]} (the suite's)`, path: process.execPath, version: new RegExp(`^v${process.versions.node.split('.')[0]}\\.`) },
  { name: 'Node.js 22', path: bin.node22, version: /^v22\./ },
  { name: 'Node.js 24', path: bin.node24, version: /^v24\./ },
];
const WORDS = ['one ', 'two ', 'three ', 'four'];
/** Enough records that the router's writes of one upstream read overflow the socket's buffer: it must wait for 'drain'. */
const MANY_WORDS = Array.from({ length: 2000 }, (_, i) => `w${i} `);
/** A router that waits this long for 'drain' cuts the stream off (--stream-stall-timeout). */
const STALL_S = 3;
const ask = (content: string) => ({ model: 'm', messages: [{ role: 'user' as const, content }] });

/** `nomyo-server` on `node` with the vector key, once it says where it listens. */
async function startRouter(node: string, args: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const child: ChildProcessWithoutNullStreams = spawn(node, [CLI, '--port', '0', '--key-file', SERVER_KEY_FILE, '--quiet', ...args]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line?.startsWith('listening on ')) throw new Error(`nomyo-server did not start on ${node}: ${stderr}`);
  return {
    url: line.slice('listening on '.length),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function read(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ text: string; finish: string | null | undefined }> {
  let text = '';
  let finish: string | null | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish ??= chunk.choices[0]?.finish_reason;
  }
  return { text, finish };
}

describe.each(NODES)('the router on $name', ({ path, version }) => {
  let echo: Awaited<ReturnType<typeof startRouter>>;
  let relay: Awaited<ReturnType<typeof startRouter>>;
  let upstream: ScriptedUpstream;
  const client = (url: string, protocol?: 1 | 2) => new SecureChatCompletion({ baseUrl: url, allowHttp: true, keySize: 2048, maxRetries: 0, protocol });

  beforeAll(async () => {
    expect(execFileSync(path, ['--version'], { encoding: 'utf8' }).trim()).toMatch(version);
    upstream = await startUpstream();
    [echo, relay] = await Promise.all([startRouter(path, []), startRouter(path, ['--upstream', upstream.url, '--stream-stall-timeout', String(STALL_S)])]);
  });
  afterAll(async () => {
    await Promise.all([echo?.stop(), relay?.stop()]);
    await upstream?.close();
  });

  it("streams the echo model's answer to its final record (every record sealed in one turn)", async () => {
    const stream = await client(echo.url).create({ ...ask('one two three four five six'), stream: true as const });
    expect(stream._metadata).toMatchObject({ protocol: 2, streamed: true });
    expect(await read(stream)).toEqual({ text: 'echo: one two three four five six', finish: 'stop' });
  });

  it.each([
    { how: 'all in one piece', words: WORDS, delayMs: 0 },
    { how: 'word by word', words: WORDS, delayMs: 20 },
    { how: `2,000 at once, more than the socket takes (${STALL_S} s without 'drain' would cut it off)`, words: MANY_WORDS, delayMs: 0 },
  ])("streams an upstream's chunks to the final record, $how", async ({ words, delayMs }) => {
    upstream.script = wordsScript(words, delayMs);
    const stream = await client(relay.url).create({ ...ask('count'), stream: true as const });
    expect(stream._metadata).toMatchObject({ protocol: 2, streamed: true });
    expect(await read(stream)).toEqual({ text: words.join(''), finish: 'stop' });
  });

  it('a client that aborts a stream cancels the upstream request', async () => {
    upstream.script = wordsScript(MANY_WORDS, 50);
    const stream = await client(relay.url).create({ ...ask('count'), stream: true as const });
    const request = upstream.requests.at(-1)!;
    let taken = 0;
    await expect(
      (async () => {
        for await (const _chunk of stream) if (++taken === 3) stream.controller.abort();
      })(),
    ).rejects.toBeInstanceOf(APIUserAbortError);
    const deadline = Date.now() + 5_000;
    while (!request.closedEarly && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(request.closedEarly).toBe(true);
  });

  it.each([2, 1] as const)('answers a whole protocol %i request', async (protocol) => {
    const completion = await client(echo.url, protocol).create(ask('whole answer'));
    expect(completion._metadata.protocol).toBe(protocol);
    expect(completion.choices[0]?.message.content).toBe('echo: whole answer');
  });
});
