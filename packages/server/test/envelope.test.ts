/**
 * envelope.ts: what the router fills in around an upstream's answer before sealing it, and what it
 * refuses. Through the router end to end: tests/upstreams/mock-llm.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../src/http-error.js';
import { envelopeFor, normaliseChunk, normaliseCompletion, normalisingModel } from '../src/envelope.js';

const envelope = { id: 'chatcmpl-router', created: 1_700_000_000, model: 'asked-for', toolCalls: new Map() };
const message = { role: 'assistant', content: 'hi' };

function refusal(run: () => unknown): UpstreamError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamError);
    return err as UpstreamError;
  }
  throw new Error('it was not refused');
}

describe('normaliseCompletion', () => {
  it("fills in id, object, created, model and each choice's index where they are missing or null", () => {
    const answer = { created: null, choices: [{ message, finish_reason: 'stop' }, { index: null, message, finish_reason: 'stop' }] };
    expect(normaliseCompletion(answer, envelope)).toEqual({
      id: 'chatcmpl-router',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'asked-for',
      choices: [
        { index: 0, message, finish_reason: 'stop' },
        { index: 1, message, finish_reason: 'stop' },
      ],
    });
  });

  it('changes nothing that is there: envelope, content, tool calls, usage, unknown fields', () => {
    const call = { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } };
    const answer = {
      id: 'up-1',
      object: 'chat.completion',
      created: 5,
      model: 'served-model',
      choices: [{ index: 7, message: { role: 'assistant', content: null, tool_calls: [call], reasoning_content: 'why' }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, extra: { x: 1 } },
      vendor: { kept: [1, 2] },
    };
    const copy = structuredClone(answer);
    expect(normaliseCompletion(answer, envelope)).toEqual(copy);
  });

  it.each([
    ['not an object', '[1,2]', 'the answer must be an object'],
    ['no choices (a models list)', { object: 'list', data: [] }, 'choices must be present'],
    ['an empty choices', { choices: [] }, 'choices must be an array of at least 1'],
    ['a legacy text choice', { choices: [{ text: 'hi', finish_reason: 'stop' }] }, 'choices[0].message must be present'],
    ['content as parts', { choices: [{ message: { role: 'assistant', content: [{ type: 'text', text: 'hi' }] }, finish_reason: 'stop' }] }, 'choices[0].message.content must be a string or null'],
    ['created as a string', { created: '5', choices: [{ message, finish_reason: 'stop' }] }, 'created must be a finite number'],
  ])('refuses %s with an UpstreamError whose sealed reason names the path, not the value', (_name, answer, reason) => {
    const err = refusal(() => normaliseCompletion(typeof answer === 'string' ? JSON.parse(answer) : answer, envelope));
    expect(err.status).toBe(502);
    expect(err.detail).toBe('the inference backend sent an answer that is not a chat completion');
    expect(err.sealed).toEqual({ message: `the inference backend sent no chat.completion: ${reason}`, type: 'upstream_error', code: null, status: 502 });
  });
});

describe('normaliseChunk', () => {
  it('fills in the same envelope on every chunk of a stream, and each choice index', () => {
    const one = normaliseChunk({ choices: [{ delta: { role: 'assistant', content: 'a' } }] }, envelope);
    const two = normaliseChunk({ id: 'up', choices: [{ delta: { content: 'b' }, finish_reason: 'stop' }] }, envelope);
    expect(one).toEqual({ id: 'chatcmpl-router', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'asked-for', choices: [{ index: 0, delta: { role: 'assistant', content: 'a' } }] });
    expect(two).toMatchObject({ id: 'up', created: 1_700_000_000, model: 'asked-for' });
  });

  it("drops a chunk's usage: null (the protocol has usage an object where present), and keeps a usage object", () => {
    const chunk = normaliseChunk({ id: 'up', choices: [{ index: 0, delta: { content: 'a' } }], usage: null }, envelope);
    expect(chunk).not.toHaveProperty('usage');
    const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
    expect(normaliseChunk({ id: 'up', choices: [], usage }, envelope)).toMatchObject({ usage });
  });

  it("takes Azure OpenAI's first chunk (an empty object, id and model, no choices, the prompt's filter results) as a chunk, as it is but its object", () => {
    const azure = { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: 'safe' } } }] };
    expect(normaliseChunk(structuredClone(azure), envelope)).toEqual({ ...azure, object: 'chat.completion.chunk' });
  });

  it("takes a chunk whose delta writes every field, null where unset (pydantic's None: LiteLLM, vLLM's models), as the same chunk without them", () => {
    const stream = { ...envelope, toolCalls: new Map() };
    const nulls = {
      id: 'up', object: 'chat.completion.chunk', created: 1, model: 'm',
      choices: [{ index: 0, delta: { role: null, content: 'Hi', tool_calls: null, function_call: null, refusal: null }, finish_reason: null }],
    };
    expect(normaliseChunk(structuredClone(nulls), stream)).toEqual({ ...nulls, choices: [{ index: 0, delta: { content: 'Hi', function_call: null, refusal: null }, finish_reason: null }] });
    const piece = { id: 'up', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: null, type: null, function: { name: null, arguments: '{"a":1}' } }] } }] };
    expect(normaliseChunk(structuredClone(piece), stream)).toMatchObject({ choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] } }] });
    const [call] = (normaliseChunk(structuredClone(piece), stream) as { choices: Array<{ delta: { tool_calls: object[] } }> }).choices[0]!.delta.tool_calls;
    expect(Object.keys(call!)).toEqual(['index', 'function']);
  });

  it('refuses a chunk of another object, or whose delta is no object', () => {
    expect(refusal(() => normaliseChunk({ object: 'chat.completion', choices: [] }, envelope)).sealed.message).toBe(
      'the inference backend sent no chat.completion.chunk: object must be "chat.completion.chunk"',
    );
    expect(refusal(() => normaliseChunk({ choices: [{ index: 0, delta: 'a' }] }, envelope)).sealed.message).toMatch(/choices\[0\]\.delta must be an object$/);
  });

  it("fills in a left-out delta as {}, and a tool call piece's index from its id, which clients require", () => {
    expect(normaliseChunk({ id: 'up', choices: [{ index: 0, finish_reason: 'stop' }] }, envelope)).toMatchObject({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    const stream = { ...envelope, toolCalls: new Map() };
    const indexes = (pieces: object[], choice = 0) =>
      ((normaliseChunk({ id: 'up', choices: [{ index: choice, delta: { tool_calls: pieces } }] }, stream) as { choices: Array<{ delta: { tool_calls: Array<{ index: number }> } }> }).choices[0]!.delta.tool_calls.map((c) => c.index));
    const call = (id: string, name: string) => ({ id, type: 'function', function: { name, arguments: '' } });
    // One call a chunk, none with an index: each new id the next call, a piece without id the last one.
    expect(indexes([call('a', 'f')])).toEqual([0]);
    expect(indexes([{ function: { arguments: '{"x"' } }])).toEqual([0]);
    expect(indexes([call('b', 'g')])).toEqual([1]);
    expect(indexes([{ function: { arguments: ':1}' } }])).toEqual([1]);
    // Two in one chunk; an index that is there is kept; another choice counts its own.
    expect(indexes([call('c', 'h'), { index: 5, function: { arguments: '{}' } }])).toEqual([2, 5]);
    expect(indexes([call('d', 'k')], 1)).toEqual([0]);
    // After index 5, a piece without index or id goes on with call 5; the next new id is call 6.
    expect(indexes([{ function: { arguments: '{}' } }])).toEqual([5]);
    expect(indexes([call('e', 'm')])).toEqual([6]);
  });

  it('without ids (or with empty ones, which openai-node takes for none), a piece with a name is the next call, one without goes on with the last', () => {
    const stream = { ...envelope, toolCalls: new Map() };
    const indexes = (pieces: object[]) =>
      (normaliseChunk({ id: 'up', choices: [{ index: 0, delta: { tool_calls: pieces } }] }, stream) as { choices: Array<{ delta: { tool_calls: Array<{ index: number }> } }> }).choices[0]!.delta.tool_calls.map((c) => c.index);
    expect(indexes([{ type: 'function', function: { name: 'a', arguments: '' } }, { type: 'function', function: { name: 'b', arguments: '{}' } }])).toEqual([0, 1]);
    expect(indexes([{ id: '', function: { arguments: '{"x":1}' } }])).toEqual([1]);
    expect(indexes([{ id: '', type: 'function', function: { name: 'c', arguments: '' } }])).toEqual([2]);
  });
});

describe('envelopeFor and normalisingModel', () => {
  it('a fresh id per request, the time in seconds, the model asked for (none when the request has none)', () => {
    const a = envelopeFor({ model: 'm', messages: [] });
    const b = envelopeFor({ model: 'm', messages: [] });
    expect(a.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(a.id).not.toBe(b.id);
    expect(Math.abs(a.created - Date.now() / 1000)).toBeLessThan(5);
    expect(envelopeFor({ messages: [] } as never).model).toBeUndefined();
  });

  it('wraps a model: a whole answer normalised, a stream normalised chunk by chunk, one id for all', async () => {
    const whole = normalisingModel(() => ({ choices: [{ message, finish_reason: 'stop' }] }));
    expect(await whole({ model: 'm', messages: [] }, {} as never)).toMatchObject({ object: 'chat.completion', model: 'm', choices: [{ index: 0 }] });

    let closed = false;
    const streamed = normalisingModel(async function* () {
      try {
        yield { choices: [{ delta: { content: 'a' } }] };
        yield { choices: [{ delta: { content: 'b' } }] };
        yield { choices: 'broken' };
      } finally {
        closed = true;
      }
    } as never);
    const chunks: Array<Record<string, unknown>> = [];
    const failure = await (async () => {
      for await (const chunk of (await streamed({ model: 'm', messages: [] }, {} as never)) as AsyncIterable<Record<string, unknown>>) chunks.push(chunk);
    })().catch((err: unknown) => err);
    expect(chunks.map((c) => c.id)).toEqual([chunks[0]!.id, chunks[0]!.id]);
    expect(failure).toBeInstanceOf(UpstreamError);
    expect(closed).toBe(true); // the upstream's stream is closed when a chunk is refused
  });
});
