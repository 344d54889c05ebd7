/** The completion → chunk replay on its own: shapes that the echo model does not produce. */
import { describe, expect, it } from 'vitest';
import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import { completionChunks } from '../../packages/core/src/client/completion-chunks.js';

const base = { id: 'chatcmpl-1', object: 'chat.completion', created: 1700000000, model: 'm', system_fingerprint: 'fp' };

describe('completionChunks', () => {
  it('replays several choices, reasoning and refusal, and no usage unless asked', () => {
    const chunks = completionChunks({
      ...base,
      choices: [
        { index: 0, message: { role: 'assistant', content: 'ünïcode 👋 words', reasoning_content: 'thinking' }, finish_reason: 'stop' },
        { index: 1, message: { role: 'assistant', content: null, refusal: 'no' }, finish_reason: 'content_filter' },
      ],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
    expect(chunks.every((c) => c.id === 'chatcmpl-1' && c.object === 'chat.completion.chunk' && c.system_fingerprint === 'fp')).toBe(true);
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    const deltas = (i: number) => chunks.flatMap((c) => (c.choices as Array<{ index: number; delta: Record<string, unknown> }>).filter((x) => x.index === i).map((x) => x.delta));
    expect(deltas(0).map((d) => d.content ?? '').join('')).toBe('ünïcode 👋 words');
    expect(deltas(0).map((d) => d.reasoning_content ?? '').join('')).toBe('thinking');
    expect(deltas(1)).toContainEqual({ refusal: 'no' });
    const finishes = chunks.flatMap((c) => (c.choices as Array<{ finish_reason: string | null }>).map((x) => x.finish_reason)).filter(Boolean);
    expect(finishes).toEqual(['stop', 'content_filter']);
  });

  it('sends tool calls with index, id, type and the whole function', () => {
    const calls = [
      { id: 'a', type: 'function' as const, function: { name: 'f', arguments: '{"x":1}' } },
      { id: 'b', type: 'function' as const, function: { name: 'g', arguments: '{}' } },
    ];
    const chunks = completionChunks({ ...base, choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: calls }, finish_reason: 'tool_calls' }] });
    const toolDeltas = chunks.flatMap((c) => (c.choices as Array<{ delta: { tool_calls?: unknown[] } }>).flatMap((x) => x.delta.tool_calls ?? []));
    expect(toolDeltas).toEqual([
      { index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
      { index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{}' } },
    ]);
  });

  it("sends a custom tool's call whole at its position, and the answer's other top-level fields once, on the first chunk", () => {
    const custom = { id: 'c', type: 'custom' as const, custom: { name: 'grep', input: 'TODO' }, index: 7 };
    const whole = {
      ...base,
      prompt_filter_results: [{ prompt_index: 0 }],
      x_vendor: 1,
      choices: [{ index: 0, message: { role: 'assistant' as const, content: null, tool_calls: [custom] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
      _metadata: { payload_id: 'p' },
    };
    const chunks = completionChunks(whole);
    const toolDeltas = chunks.flatMap((c) => (c.choices as Array<{ delta: { tool_calls?: unknown[] } }>).flatMap((x) => x.delta.tool_calls ?? []));
    // Its position, not the index the call itself carried (which the check does not look at).
    expect(toolDeltas).toEqual([{ ...custom, index: 0 }]);
    expect(Object.keys(chunks[0]!)).toEqual(['id', 'object', 'created', 'model', 'system_fingerprint', 'prompt_filter_results', 'x_vendor', 'choices']);
    for (const chunk of chunks.slice(1)) expect(Object.keys(chunk)).toEqual(['id', 'object', 'created', 'model', 'system_fingerprint', 'choices']);
  });

  it('keeps every chunk small, so a router can seal each as a record: long words, arguments and log probabilities in pieces that accumulate to the whole', async () => {
    const token = (i: number) => ({ token: `t${i}`, logprob: -0.5, bytes: [116], top_logprobs: Array.from({ length: 20 }, (_, j) => ({ token: `a${j}`, logprob: -1, bytes: [97] })) });
    const logprobs = { content: Array.from({ length: 3000 }, (_, i) => token(i)), refusal: null };
    const word = '😀'.repeat(300_000); // 600,000 UTF-16 units, no whitespace
    const args = JSON.stringify({ blob: 'x'.repeat(1_500_000) });
    const whole = {
      ...base,
      choices: [
        { index: 0, message: { role: 'assistant' as const, content: `a ${word} b` }, finish_reason: 'stop', logprobs },
        { index: 1, message: { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call', type: 'function' as const, function: { name: 'f', arguments: args } }] }, finish_reason: 'tool_calls', logprobs: null },
      ],
    };
    const chunks = completionChunks(whole);
    const largest = Math.max(...chunks.map((c) => new TextEncoder().encode(JSON.stringify(c)).length));
    expect(largest).toBeLessThan(512 * 1024);
    const ndjson = chunks.map((c) => `${JSON.stringify(c)}\n`).join('');
    const accumulated = await ChatCompletionStream.fromReadableStream(new Response(ndjson).body!).finalChatCompletion();
    expect(accumulated.choices[0]!.message.content).toBe(`a ${word} b`);
    expect(accumulated.choices[0]!.logprobs).toEqual(logprobs);
    const call = accumulated.choices[1]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function).toEqual({ name: 'f', arguments: args });
  });

  it.each([
    ['refusal tokens only, beside an empty content', (t: (i: number) => unknown) => ({ content: [], refusal: Array.from({ length: 70 }, (_, i) => t(i)) })],
    ['content tokens, no refusal key, a vendor field', (t: (i: number) => unknown) => ({ content: Array.from({ length: 150 }, (_, i) => t(i)), token_ids: [1, 2] })],
    ['both, beside an empty refusal', (t: (i: number) => unknown) => ({ content: Array.from({ length: 100 }, (_, i) => t(i)), refusal: [] })],
  ])('log probabilities in slices come back as they were: %s', async (_name, make) => {
    const logprobs = make((i) => ({ token: `t${i}`, logprob: -1, bytes: [116], top_logprobs: [] }));
    const whole = { ...base, choices: [{ index: 0, message: { role: 'assistant' as const, content: 'x' }, finish_reason: 'stop', logprobs }] };
    const chunks = completionChunks(whole);
    expect(chunks.length).toBeGreaterThan(3);
    const ndjson = chunks.map((c) => `${JSON.stringify(c)}\n`).join('');
    const accumulated = await ChatCompletionStream.fromReadableStream(new Response(ndjson).body!).finalChatCompletion();
    expect(accumulated.choices[0]!.logprobs).toEqual(logprobs);
  });

  it('loses nothing openai-node accumulates: log probabilities, annotations, a vendor\'s own fields come out of finalChatCompletion() as the whole answer had them', async () => {
    const token = (t: string) => ({ token: t, logprob: -0.5, bytes: [...new TextEncoder().encode(t)], top_logprobs: [] });
    const logprobs = { content: ['Hello', ' there', ' world'].map(token), refusal: null };
    const annotations = [{ type: 'url_citation', url_citation: { start_index: 0, end_index: 5, title: 'T', url: 'https://example.org/' } }];
    const whole = {
      ...base,
      choices: [{ index: 0, message: { role: 'assistant' as const, content: 'Hello there world', annotations, refusal: null }, finish_reason: 'stop', logprobs, stop_reason: 42 }],
    };
    const ndjson = completionChunks(whole).map((c) => `${JSON.stringify(c)}\n`).join('');
    const accumulated = await ChatCompletionStream.fromReadableStream(new Response(ndjson).body!).finalChatCompletion();
    const choice = accumulated.choices[0]!;
    expect(choice.logprobs).toEqual(logprobs);
    expect(choice.message.annotations).toEqual(annotations);
    expect(choice.message.content).toBe('Hello there world');
    expect((choice as unknown as { stop_reason: unknown }).stop_reason).toBe(42);
  });
});
