/**
 * Large requests are opened into their own body's buffer and answered from one buffer (buffers.ts,
 * handler.ts): the plaintext passes through buffers that are reused without being zeroed, so each
 * test looks through every idle buffer of the pool afterwards for what the plaintext said.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wireBuffers } from '@nomyo/core/internal';
import { startServer, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE, secureCompletion } from './helpers.js';

let server: NomyoServer;
beforeAll(async () => {
  server = await startServer({ keyFile: VECTOR_KEY_FILE });
});
afterAll(() => server.close());

const MARKER = 'PLAINTEXT-MARKER-';

/** Every buffer idle in the wire pool, whole (take() gives a view of the front of one). */
function idleWireBuffers(): Uint8Array[] {
  // The pool keeps at most 8; a new one (all zeros) may come too, which is harmless.
  const taken = Array.from({ length: 8 }, () => wireBuffers.take(1));
  // Each pooled buffer is an ArrayBuffer of its own.
  const whole = taken.map((view) => new Uint8Array(view.bytes.buffer));
  for (const view of taken) view.release();
  return whole;
}

async function expectNoPlaintextLeft(): Promise<void> {
  // The answer's buffer goes back once the socket has taken it all: just after the client has read it.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const marker = Buffer.from(MARKER);
  const buffers = idleWireBuffers();
  expect(buffers.some((b) => b.length > 300_000)).toBe(true);
  for (const b of buffers) expect(Buffer.from(b.buffer, b.byteOffset, b.length).indexOf(marker)).toBe(-1);
}

describe('a large request and its answer in the body buffers', () => {
  it('echoes a 400 kB prompt exactly, and leaves none of it in the reused buffers', async () => {
    const prompt = `${MARKER}\n"quoted" é €`.repeat(20_000);
    const { completion } = await secureCompletion(server.url, { model: 'm', messages: [{ role: 'user', content: prompt }] });
    expect(completion.choices[0].message.content).toBe(`echo: ${prompt}`);
    await expectNoPlaintextLeft();
  });

  it('leaves none of a large request behind when its answer is small (and so overwrites little of the buffer)', async () => {
    const document = MARKER.repeat(25_000);
    const { completion } = await secureCompletion(server.url, {
      model: 'm',
      messages: [
        { role: 'user', content: document },
        { role: 'user', content: 'short' },
      ],
    });
    expect(completion.choices[0].message.content).toBe('echo: short');
    await expectNoPlaintextLeft();
  });
});
