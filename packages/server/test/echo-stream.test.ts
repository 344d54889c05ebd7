/**
 * The echo model's stream leaves its answer nowhere once it ended, not even in the engine's last
 * regular-expression match (`RegExp.input`), which kept the whole answer reachable until another
 * match ran in the process (found in a heap snapshot of the router).
 */
import { describe, expect, it } from 'vitest';
import { echoChunks } from '../src/echo-stream.js';
import { echoCompletion } from '../src/echo-model.js';

const SECRET = 'PATIENT-7f3a9c has a rare condition';
const completion = echoCompletion({ model: 'm', messages: [{ role: 'user', content: SECRET }] }, { payloadId: 'p' });
const options = { delayMs: 0, includeUsage: false, signal: new AbortController().signal };
const lastMatched = () => String((RegExp as unknown as { input: string }).input);

describe("the echo model's stream", () => {
  it('read to its end: its words, joined, are the answer, and the last match holds none of it', async () => {
    let text = '';
    for await (const chunk of echoChunks(completion, options)) text += ((chunk.choices as { delta: { content?: string } }[])[0]?.delta.content ?? '');
    expect(text).toBe(`echo: ${SECRET}`);
    expect(lastMatched()).not.toContain('PATIENT');
  });

  it('ended after two words (its caller went away): the last match holds none of it', async () => {
    const chunks = echoChunks(completion, options);
    await chunks.next();
    await chunks.next();
    await chunks.next();
    expect(lastMatched()).toContain('PATIENT'); // while it runs, the engine has it
    await chunks.return(undefined);
    expect(lastMatched()).not.toContain('PATIENT');
  });
});
