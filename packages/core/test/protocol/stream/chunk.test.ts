/**
 * The chunk check (protocol/stream/chunk.ts) beyond the stream vectors: the envelope a server may
 * leave out passes, filled in where the type promises it; every shape a caller would trip on is
 * still refused.
 */
import { describe, expect, it } from 'vitest';
import { checkChatCompletionChunk, NOT_A_CHUNK } from '../../../src/protocol/stream/chunk.js';
import { SecurityError } from '../../../src/errors.js';

const choice = (fields: Record<string, unknown> = {}) => ({ index: 0, delta: { content: 'a' }, finish_reason: null, ...fields });
const full = (fields: Record<string, unknown> = {}) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [choice()], ...fields });

function refusal(value: unknown): string {
  try {
    checkChatCompletionChunk(value);
  } catch (err) {
    expect(err).toBeInstanceOf(SecurityError);
    return (err as Error).message.slice(NOT_A_CHUNK.length + 2);
  }
  throw new Error('the chunk passed');
}

describe('checkChatCompletionChunk', () => {
  it("a chunk without id, object, created, model or a choice's index (what @dwmkerr/mock-llm and others send) passes, object and index filled in", () => {
    const chunk = checkChatCompletionChunk({ choices: [{ delta: { content: 'a' } }] });
    expect(chunk).toEqual({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'a' } }] });
    expect(chunk.created).toBeUndefined();
    const two = checkChatCompletionChunk({ choices: [{ delta: {} }, { delta: {} }] });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1]);
  });

  it('keeps what is there: an index is not renumbered, the envelope not touched', () => {
    const chunk = checkChatCompletionChunk(full({ choices: [choice({ index: 2 })] }));
    expect(chunk).toEqual(full({ choices: [choice({ index: 2 })] }));
  });

  it.each([
    ['another object', full({ object: 'chat.completion' }), 'object must be "chat.completion.chunk"'],
    ['created a string', full({ created: '1' }), 'created must be a finite number'],
    ['created null', full({ created: null }), 'created must be a finite number'],
    ['id a number', full({ id: 7 }), 'id must be a string'],
    ['model null', full({ model: null }), 'model must be a string'],
    ['no choices', { id: 'c' }, 'choices must be present'],
    ['no delta', full({ choices: [{ index: 0 }] }), 'choices[0].delta must be present'],
    ['index -1', full({ choices: [choice({ index: -1 })] }), 'choices[0].index must be a non-negative integer'],
    ['content a number', full({ choices: [choice({ delta: { content: 1 } })] }), 'choices[0].delta.content must be a string or null'],
    ['a tool call piece without its index', full({ choices: [choice({ delta: { tool_calls: [{ id: 'x' }] } })] }), 'choices[0].delta.tool_calls[0].index must be present'],
    ['__proto__ in a choice', JSON.parse('{"choices":[{"__proto__":{"x":1},"delta":{}}]}'), 'choices[0].__proto__ must be absent'],
  ])('refuses %s', (_name, value, reason) => {
    expect(refusal(value)).toBe(reason);
  });
});
