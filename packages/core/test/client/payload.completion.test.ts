/**
 * The schema check on decrypted answers, through the real decode + depth + parse + check path
 * (parseCompletion): a table of hostile plaintexts, the shapes that must pass, and prototype safety.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseCompletion } from '../../src/client/payload.js';
import { completionChunks } from '../../src/client/completion-chunks.js';
import { checkChatCompletion } from '../../src/protocol/completion.js';
import { MAX_ANSWER_DEPTH } from '../../src/protocol/constants.js';
import { jsonNestingExceeds } from '../../src/protocol/json-depth.js';
import { SecurityError } from '../../src/errors.js';

const encode = (text: string) => new TextEncoder().encode(text);
const parse = (text: string) => parseCompletion(encode(text));
/** What parsing `text` throws (undefined if it does not). */
function thrownBy(text: string): unknown {
  try {
    parse(text);
  } catch (e) {
    return e;
  }
  return undefined;
}

const msg = (message: string) => `{"role":"assistant",${message}}`;
const choiceWith = (choice: string) => `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[${choice}]}`;
const withMessage = (message: string) => choiceWith(`{"index":0,"message":${message},"finish_reason":"stop"}`);
const withTop = (fields: string) => `{"object":"chat.completion",${fields}}`;
const VALID = withMessage(msg('"content":"hi"'));
const CALL = '{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}';
const deepArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObjects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

// [name, plaintext, the schema path (or reason) the message names]
const HOSTILE: Array<[string, string, string]> = [
  // The shapes from the issue.
  ['a message of {"a":{"b":{"c":null}}} with no role', withMessage('{"a":{"b":{"c":null}}}'), 'choices[0].message.role must be present'],
  ['content {"a": 1}', withMessage(msg('"content":{"a":1}')), 'choices[0].message.content must be a string or null'],
  ['an empty choices array', choiceWith(''), 'choices must be an array of at least 1'],
  // Not an object at all.
  ['an array', '[1,2]', 'the answer must be an object'],
  ['a string', '"hello"', 'the answer must be an object'],
  ['a number', '42', 'the answer must be an object'],
  ['null', 'null', 'the answer must be an object'],
  ['a 100,000-deep [[[…]]]', deepArrays(100_000), `nested deeper than ${MAX_ANSWER_DEPTH}`],
  ['a 100,000-deep {"a":{"a":…}}', deepObjects(100_000), `nested deeper than ${MAX_ANSWER_DEPTH}`],
  ['a valid completion with a 100,000-deep unknown field', VALID.replace('{"id"', `{"x":${deepArrays(100_000)},"id"`), `nested deeper than ${MAX_ANSWER_DEPTH}`],
  ['a valid completion nested one past the limit', VALID.replace('{"id"', `{"x":${deepArrays(MAX_ANSWER_DEPTH)},"id"`), `nested deeper than ${MAX_ANSWER_DEPTH}`],
  // Top level.
  ['a numeric id', VALID.replace('"id":"c"', '"id":7'), 'id must be a string'],
  ['object a number', VALID.replace('"chat.completion"', '1'), 'object must be a string'],
  ['created as a string', VALID.replace('"created":1', '"created":"1"'), 'created must be a finite number'],
  ['created 1e400 (Infinity)', VALID.replace('"created":1', '"created":1e400'), 'created must be a finite number'],
  ['model null', VALID.replace('"model":"m"', '"model":null'), 'model must be a string'],
  ['created null', VALID.replace('"created":1', '"created":null'), 'created must be a finite number'],
  ['id null', VALID.replace('"id":"c"', '"id":null'), 'id must be a string'],
  ['no choices', withTop('"id":"c","created":1,"model":"m"'), 'choices must be present'],
  ['choices an object', withTop('"id":"c","created":1,"model":"m","choices":{"0":{}}'), 'choices must be an array of at least 1'],
  ['usage with a string count', VALID.replace('{"id"', '{"usage":{"prompt_tokens":"1","completion_tokens":1,"total_tokens":2},"id"'), 'usage.prompt_tokens must be a finite number'],
  ['usage without total_tokens, its sum no number', VALID.replace('{"id"', '{"usage":{"prompt_tokens":1e308,"completion_tokens":1e308},"id"'), 'usage.total_tokens must be present'],
  ['system_fingerprint a number', VALID.replace('{"id"', '{"system_fingerprint":1,"id"'), 'system_fingerprint must be a string or null'],
  ['service_tier an object', VALID.replace('{"id"', '{"service_tier":{},"id"'), 'service_tier must be a string or null'],
  // Choices.
  ['a null choice', choiceWith('null'), 'choices[0] must be an object'],
  ['an array choice', choiceWith('[]'), 'choices[0] must be an object'],
  ['a legacy text choice', choiceWith('{"index":0,"text":"legacy","finish_reason":"stop"}'), 'choices[0].message must be present'],
  ['a bad second choice', choiceWith(`{"index":0,"message":${msg('"content":"a"')},"finish_reason":"stop"},{"index":1,"message":null,"finish_reason":"stop"}`), 'choices[1].message must be an object'],
  ['index -1', choiceWith(`{"index":-1,"message":${msg('"content":"a"')},"finish_reason":"stop"}`), 'choices[0].index must be a non-negative integer'],
  ['index 0.5', choiceWith(`{"index":0.5,"message":${msg('"content":"a"')},"finish_reason":"stop"}`), 'choices[0].index must be a non-negative integer'],
  ['index 2**53 (not a safe integer)', choiceWith(`{"index":9007199254740992,"message":${msg('"content":"a"')},"finish_reason":"stop"}`), 'choices[0].index must be a non-negative integer'],
  ['index "0"', choiceWith(`{"index":"0","message":${msg('"content":"a"')},"finish_reason":"stop"}`), 'choices[0].index must be a non-negative integer'],
  ['no finish_reason', choiceWith(`{"index":0,"message":${msg('"content":"a"')}}`), 'choices[0].finish_reason must be present'],
  ['finish_reason a number', choiceWith(`{"index":0,"message":${msg('"content":"a"')},"finish_reason":1}`), 'choices[0].finish_reason must be a string or null'],
  // Messages.
  ['a null message', withMessage('null'), 'choices[0].message must be an object'],
  ['role null', withMessage('{"role":null,"content":"a"}'), 'choices[0].message.role must be "assistant"'],
  ['role user', withMessage('{"role":"user","content":"a"}'), 'choices[0].message.role must be "assistant"'],
  ['a duplicate role key, the last one a number', withMessage('{"role":"assistant","role":5,"content":"a"}'), 'choices[0].message.role must be "assistant"'],
  ['content as an array of parts', withMessage(msg('"content":[{"type":"text","text":"a"}]')), 'choices[0].message.content must be a string or null'],
  ['refusal a number', withMessage(msg('"content":"a","refusal":1')), 'choices[0].message.refusal must be a string or null'],
  // Tool calls.
  ['tool_calls an object', withMessage(msg(`"content":null,"tool_calls":${CALL}`)), 'choices[0].message.tool_calls must be an array'],
  ['a tool call without an id', withMessage(msg(`"content":null,"tool_calls":[${CALL.replace('"id":"call_1",', '')}]`)), 'choices[0].message.tool_calls[0].id must be present'],
  ['a tool call of another type', withMessage(msg(`"content":null,"tool_calls":[${CALL.replace('"function"', '"mcp"')}]`)), 'choices[0].message.tool_calls[0].type must be "function" or "custom"'],
  ['a custom tool call with a function', withMessage(msg(`"content":null,"tool_calls":[${CALL.replace('"function"', '"custom"')}]`)), 'choices[0].message.tool_calls[0].custom must be present'],
  ['a tool call without a type', withMessage(msg(`"content":null,"tool_calls":[${CALL.replace('"type":"function",', '')}]`)), 'choices[0].message.tool_calls[0].type must be "function" or "custom"'],
  ['a tool call without function', withMessage(msg('"content":null,"tool_calls":[{"id":"c","type":"function"}]')), 'choices[0].message.tool_calls[0].function must be present'],
  ['arguments as an object', withMessage(msg(`"content":null,"tool_calls":[${CALL.replace('"arguments":"{}"', '"arguments":{}')}]`)), 'choices[0].message.tool_calls[0].function.arguments must be a string'],
  // Prototype keys, wherever the check looks.
  ['__proto__ at the top', VALID.replace('{"id"', '{"__proto__":{"polluted":true},"id"'), '__proto__ must be absent'],
  ['constructor at the top', VALID.replace('{"id"', '{"constructor":{"prototype":{"polluted":true}},"id"'), 'constructor must be absent'],
  ['__proto__ in a choice', choiceWith(`{"__proto__":{"polluted":true},"index":0,"message":${msg('"content":"a"')},"finish_reason":"stop"}`), 'choices[0].__proto__ must be absent'],
  ['__proto__ in a message', withMessage(msg('"content":"a","__proto__":{"polluted":true}')), 'choices[0].message.__proto__ must be absent'],
  ['an escaped \\u005f_proto__ in a message', withMessage(msg('"content":"a","\\u005f_proto__":{"polluted":true}')), 'choices[0].message.__proto__ must be absent'],
  ['prototype in a message', withMessage(msg('"content":"a","prototype":{"polluted":true}')), 'choices[0].message.prototype must be absent'],
  ['__proto__ in usage', VALID.replace('{"id"', '{"usage":{"__proto__":{"polluted":true},"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"id"'), 'usage.__proto__ must be absent'],
  ['__proto__ in a tool call function', withMessage(msg(`"content":null,"tool_calls":[${CALL.replace('"name":"f"', '"__proto__":{"polluted":true},"name":"f"')}]`)), 'choices[0].message.tool_calls[0].function.__proto__ must be absent'],
];

const prototypeState = () => ({ names: Object.getOwnPropertyNames(Object.prototype).sort(), symbols: Object.getOwnPropertySymbols(Object.prototype).length });
const before = prototypeState();
afterEach(() => {
  expect(prototypeState()).toEqual(before);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

describe('a decrypted answer that is not a chat.completion is a SecurityError', () => {
  it.each(HOSTILE)('%s', (_name, plaintext, reason) => {
    const thrown = thrownBy(plaintext);
    expect(thrown).toBeInstanceOf(SecurityError);
    expect((thrown as SecurityError).message).toBe(`the decrypted answer is not a chat.completion: ${reason}`);
  });

  it('not UTF-8 and not JSON stay their own SecurityError', () => {
    expect(() => parseCompletion(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(new SecurityError('the decrypted answer is not UTF-8 JSON'));
    expect(() => parse('{"id":')).toThrow(new SecurityError('the decrypted answer is not UTF-8 JSON'));
    expect(() => parse('')).toThrow(SecurityError);
  });

  it('names where the answer failed, never what it held', () => {
    const secret = 'patient-4711-diagnosis';
    for (const plaintext of [withMessage(msg(`"content":{"${secret}":1}`)), withMessage(`{"role":{"${secret}":1}}`), VALID.replace('"c"', `{"${secret}":1}`)]) {
      const thrown = thrownBy(plaintext);
      expect(thrown).toBeInstanceOf(SecurityError);
      expect((thrown as Error).message).not.toContain(secret);
    }
  });
});

describe('what passes', () => {
  it('a plain completion, returned as parsed', () => {
    const answer = parse(VALID);
    expect(answer).toEqual({ id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] });
    expect(Object.getPrototypeOf(answer)).toBe(Object.prototype);
  });

  it.each([
    ['content null beside tool calls', msg(`"content":null,"tool_calls":[${CALL}]`)],
    ['content null and no tool calls (an empty answer)', msg('"content":null')],
    ['tool_calls null', msg('"content":"a","tool_calls":null')],
    ['an empty tool_calls beside content', msg('"content":"a","tool_calls":[]')],
    ['a refusal', msg('"content":null,"refusal":"I can\'t help with that"')],
    ['extra fields (reasoning_content, annotations, audio)', msg('"content":"a","reasoning_content":"think","annotations":[],"audio":null,"function_call":null')],
    ['brackets and escaped quotes inside strings do not nest', msg(`"content":"\\\\\\"${'['.repeat(100_000)}\\\\"`)],
  ])('%s', (_name, message) => {
    expect(parse(withMessage(message)).choices[0]!.message.role).toBe('assistant');
  });

  it('an envelope left out (id, object, created, model, a choice\'s index): the answer, object and index filled in', () => {
    // What @dwmkerr/mock-llm sends, and other servers leave out parts of (docs/protocol.md, "What the client checks").
    const bare = `{"choices":[{"message":${msg('"content":"a"')},"finish_reason":"stop"},{"message":${msg('"content":"b"')},"finish_reason":"stop"}]}`;
    const answer = parse(bare);
    expect(answer).toEqual({
      object: 'chat.completion',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'a' }, finish_reason: 'stop' },
        { index: 1, message: { role: 'assistant', content: 'b' }, finish_reason: 'stop' },
      ],
    });
    expect(answer.id).toBeUndefined();
    expect(answer.created).toBeUndefined();
    // An index that is there is kept, not renumbered.
    expect(parse(choiceWith(`{"index":3,"message":${msg('"content":"a"')},"finish_reason":"stop"}`)).choices[0]!.index).toBe(3);
  });

  it('fills in content: null where a message left it out (beside tool calls, or reasoning only)', () => {
    const message = parse(withMessage(msg(`"tool_calls":[${CALL}]`))).choices[0]!.message;
    expect(message).toEqual({ role: 'assistant', content: null, tool_calls: [JSON.parse(CALL)] });
    expect(Object.keys(message)).toContain('content');
    for (const other of ['"refusal":null', '"tool_calls":[]', '"tool_calls":null', '"reasoning_content":"think"']) {
      expect(parse(withMessage(msg(other))).choices[0]!.message.content).toBeNull();
    }
  });

  it("a custom tool's call (openai@6's ChatCompletionMessageCustomToolCall), as it came", () => {
    const custom = { id: 'call_2', type: 'custom', custom: { name: 'grep', input: 'TODO src/' } };
    const message = parse(withMessage(msg(`"content":null,"tool_calls":[${CALL},${JSON.stringify(custom)}]`))).choices[0]!.message;
    expect(message.tool_calls).toEqual([JSON.parse(CALL), custom]);
  });

  it('usage: null says nothing and is removed; a left-out total_tokens is filled in as the sum', () => {
    const nullUsage = parse(VALID.replace('{"id"', '{"usage":null,"id"'));
    expect('usage' in nullUsage).toBe(false);
    const noTotal = parse(VALID.replace('{"id"', '{"usage":{"prompt_tokens":7,"completion_tokens":3},"id"'));
    expect(noTotal.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    // One that is there is kept, not recomputed.
    expect(parse(VALID.replace('{"id"', '{"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":11},"id"')).usage!.total_tokens).toBe(11);
  });

  it('every optional field, and unknown ones anywhere', () => {
    const full = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1765250000,
      model: 'gpt-x',
      system_fingerprint: null,
      service_tier: 'default',
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: { cached_tokens: 0 } },
      choices: [
        { index: 0, message: { role: 'assistant', content: 'a', refusal: null }, finish_reason: 'stop', logprobs: { content: [{ token: 'a', logprob: -0.1, bytes: [97], top_logprobs: [] }] } },
        { index: 1, message: { role: 'assistant', content: null, tool_calls: [JSON.parse(CALL)] }, finish_reason: 'tool_calls', logprobs: null },
      ],
      vendor: { nested: [1, { deeper: true }] },
    };
    expect(parse(JSON.stringify(full))).toEqual(full);
  });

  it(`nesting up to ${MAX_ANSWER_DEPTH} deep`, () => {
    // The answer object is level 1, so an unknown field may hold MAX_ANSWER_DEPTH - 1 arrays.
    const answer = parse(VALID.replace('{"id"', `{"x":${deepArrays(MAX_ANSWER_DEPTH - 1)},"id"`));
    expect(() => JSON.stringify(answer)).not.toThrow();
    expect(() => structuredClone(answer)).not.toThrow();
  });

  it('checkChatCompletion on its own (for routers and tools) gives the same verdicts', () => {
    expect(checkChatCompletion(JSON.parse(VALID)).id).toBe('c');
    expect(() => checkChatCompletion(JSON.parse(withMessage('{"a":{"b":{"c":null}}}')))).toThrow(SecurityError);
  });

  it('never walks unknown fields: a 1,000,000-deep one costs nothing and throws no RangeError', () => {
    let deep: unknown[] = [];
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    const value = JSON.parse(VALID) as Record<string, unknown>;
    value.x = deep;
    (value.choices as Array<Record<string, unknown>>)[0]!.logprobs = deep;
    expect(checkChatCompletion(value).id).toBe('c');
  });
});

describe('jsonNestingExceeds', () => {
  it.each([
    ['1', 0, false],
    ['[]', 1, false],
    ['[]', 0, true],
    ['[[1],{"a":[2]}]', 3, false],
    ['[[1],{"a":[2]}]', 2, true],
    ['{"a":"[[[[{{{{"}', 1, false],
    ['{"a":"\\"[[[["}', 1, false],
    ['{"a":"\\\\"}', 1, false],
    ['["\\\\",[[]]]', 2, true],
    ['"unterminated [[[', 0, false],
  ])('%s with limit %i → %s', (text, limit, exceeds) => {
    expect(jsonNestingExceeds(text, limit)).toBe(exceeds);
  });
});

describe('nothing from the plaintext sets a prototype', () => {
  const nested = VALID.replace('{"id"', '{"extra":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}},"id"').replace(
    '"content":"hi"',
    '"content":"hi","vendor":{"__proto__":{"polluted":true}}',
  );

  it('in unchecked fields, __proto__ stays an own data property through every copy the library makes', () => {
    const answer = parse(nested);
    const extra = answer.extra as Record<string, unknown>;
    expect(Object.getPrototypeOf(answer)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(extra)).toBe(Object.prototype);
    expect(Object.getOwnPropertyNames(extra)).toContain('__proto__');
    // What the client does with an answer: attach _metadata, re-serialize it (createSecureFetch), replay it as chunks (SSE).
    (answer as Record<string, unknown>)._metadata = { payload_id: 'p', is_encrypted: true };
    const roundTrip = JSON.parse(JSON.stringify(answer)) as Record<string, Record<string, unknown>>;
    expect(Object.getPrototypeOf(roundTrip.extra)).toBe(Object.prototype);
    for (const chunk of completionChunks(answer, { includeUsage: true })) JSON.parse(JSON.stringify(chunk));
    const spread = { ...answer };
    expect(Object.getPrototypeOf(spread)).toBe(Object.prototype);
  });
});
