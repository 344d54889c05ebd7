/**
 * Property: for any decrypted plaintext, parseCompletion either returns a value of the exported
 * ChatCompletion type or throws SecurityError, never anything else; and it refuses exactly what a
 * hand-written reading of the rules (independent of ./schema.ts) refuses.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseCompletion } from '../../src/client/payload.js';
import { MAX_ANSWER_DEPTH } from '../../src/protocol/constants.js';
import { SecurityError } from '../../src/errors.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = Record<string, unknown>;

// ---- The rules, written out by hand --------------------------------------------------------

const own = (o: Obj, key: string) => Object.prototype.hasOwnProperty.call(o, key);
const get = (o: Obj, key: string) => (own(o, key) ? o[key] : undefined);
const isObject = (v: unknown): v is Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !own(v as Obj, '__proto__') && !own(v as Obj, 'constructor') && !own(v as Obj, 'prototype');
const isString = (v: unknown) => typeof v === 'string';
const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isStringOrNull = (v: unknown) => v === null || typeof v === 'string';
const absentOr = (o: Obj, key: string, ok: (v: unknown) => boolean) => !own(o, key) || ok(o[key]);

function isToolCall(v: unknown): boolean {
  if (!isObject(v) || !isString(get(v, 'id'))) return false;
  const type = get(v, 'type');
  const [field, name, input] = type === 'function' ? ['function', 'name', 'arguments'] : type === 'custom' ? ['custom', 'name', 'input'] : [];
  if (field === undefined) return false;
  const call = get(v, field);
  return isObject(call) && isString(get(call, name!)) && isString(get(call, input!));
}

/**
 * `wire`: the rules for what may arrive (content absent, `object`, a choice's `index` and usage's
 * `total_tokens` absent, `usage` null); false: the exported type, in which the check has filled
 * them in (or removed a null usage).
 */
function isMessage(v: unknown, wire: boolean): boolean {
  if (!isObject(v) || get(v, 'role') !== 'assistant') return false;
  const calls = get(v, 'tool_calls');
  // null: none, on the wire; removed in the exported type.
  if (own(v, 'tool_calls') && !(calls === null ? wire : Array.isArray(calls) && calls.every(isToolCall))) return false;
  if (!absentOr(v, 'refusal', isStringOrNull)) return false;
  if (own(v, 'content')) return isStringOrNull(v.content);
  return wire;
}

const isIndex = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;

function isChoice(v: unknown, wire: boolean): boolean {
  if (!isObject(v)) return false;
  const indexOk = wire ? absentOr(v, 'index', isIndex) : isIndex(get(v, 'index'));
  return indexOk && own(v, 'finish_reason') && isStringOrNull(v.finish_reason) && isMessage(get(v, 'message'), wire);
}

function isUsage(v: unknown, wire: boolean): boolean {
  if (!isObject(v) || !isNumber(get(v, 'prompt_tokens')) || !isNumber(get(v, 'completion_tokens'))) return false;
  if (!own(v, 'total_tokens')) return wire && Number.isFinite((v.prompt_tokens as number) + (v.completion_tokens as number));
  return isNumber(v.total_tokens);
}

function isCompletion(v: unknown, wire: boolean): boolean {
  if (!isObject(v)) return false;
  const choices = get(v, 'choices');
  return (
    // The envelope: checked when present (the check never fills in id, created or model).
    absentOr(v, 'id', isString) &&
    (wire ? absentOr(v, 'object', isString) : isString(get(v, 'object'))) &&
    absentOr(v, 'created', isNumber) &&
    absentOr(v, 'model', isString) &&
    Array.isArray(choices) &&
    choices.length > 0 &&
    choices.every((c) => isChoice(c, wire)) &&
    (wire ? absentOr(v, 'usage', (u) => u === null || isUsage(u, true)) : absentOr(v, 'usage', (u) => isUsage(u, false))) &&
    absentOr(v, 'system_fingerprint', isStringOrNull) &&
    absentOr(v, 'service_tier', isStringOrNull)
  );
}

function depth(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(depth));
}

// ---- Generated answers ----------------------------------------------------------------------

// Short strings, with the keys the check cares about mixed in, so mutations hit them often.
const KEYS = ['id', 'object', 'created', 'model', 'choices', 'index', 'message', 'finish_reason', 'role', 'content', 'tool_calls', 'refusal', 'usage', 'total_tokens', 'type', 'function', 'custom', 'name', 'arguments', 'input', '__proto__', 'constructor', 'prototype'];
const key = fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 }));
const text = fc.string({ maxLength: 8 });
const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;

// Mostly what every server answers with; now and then another string, which the check refuses.
const role = fc.oneof({ weight: 9, arbitrary: fc.constant('assistant') }, { weight: 1, arbitrary: text });
const toolCall = fc.oneof(
  fc.record({ id: text, type: fc.constant('function'), function: fc.record({ name: text, arguments: text }) }),
  fc.record({ id: text, type: fc.constant('custom'), custom: fc.record({ name: text, input: text }) }),
);
const message = fc.oneof(
  fc.record({ role, content: fc.option(text, { nil: null }), refusal: fc.option(text, { nil: null }), tool_calls: fc.constant(null) }, { requiredKeys: ['role', 'content'] }),
  fc.record({ role, content: fc.option(text, { nil: null }), tool_calls: fc.array(toolCall, { minLength: 1, maxLength: 3 }) }, { requiredKeys: ['role', 'tool_calls'] }),
);
const choice = fc.record(
  { index: fc.nat(5), message, finish_reason: fc.option(fc.constantFrom('stop', 'length', 'tool_calls'), { nil: null }), logprobs: json },
  { requiredKeys: ['index', 'message', 'finish_reason'] },
);
const usage = fc.record(
  { prompt_tokens: fc.nat(), completion_tokens: fc.nat(), total_tokens: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { requiredKeys: ['prompt_tokens', 'completion_tokens'] },
);
const completion = fc.record(
  {
    id: text,
    object: fc.constant('chat.completion'),
    created: fc.integer(),
    model: text,
    choices: fc.array(choice, { minLength: 1, maxLength: 3 }),
    usage,
    system_fingerprint: fc.option(text, { nil: null }),
    service_tier: fc.option(text, { nil: null }),
  },
  { requiredKeys: ['id', 'object', 'created', 'model', 'choices'] },
) as fc.Arbitrary<Json>;

/** Every value inside `root` with its parent and key, for picking one to mutate. */
function slots(root: Json): Array<[Json[] | Record<string, Json>, string | number]> {
  const out: Array<[Json[] | Record<string, Json>, string | number]> = [];
  const walk = (v: Json) => {
    if (typeof v !== 'object' || v === null) return;
    for (const k of Object.keys(v)) {
      out.push([v, Array.isArray(v) ? Number(k) : k]);
      walk((v as Record<string, Json>)[k]!);
    }
  };
  walk(root);
  return out;
}

// Own data properties only, as JSON.parse makes them: assignment would set a prototype for "__proto__".
const define = (o: object, k: string | number, value: unknown) => Object.defineProperty(o, k, { value, writable: true, enumerable: true, configurable: true });
const nest = (n: number, inner: Json): Json => (n === 0 ? inner : [nest(n - 1, inner)]);

// Values one step off a valid one; INFINITY becomes the JSON number 1e400, which JSON.parse reads as Infinity.
const INFINITY = '<1e400>';
const nearMiss = fc.constantFrom<Json>(-1, 0.5, 2 ** 53, 1.7e308, '0', '', null, [], {}, true, 'function', 'custom', 'assistant', 'chat.completion', INFINITY);
type Mutation = { at: number; op: 'delete' | 'replace' | 'add' | 'wrap' | 'nest'; key: string; value: Json; levels: number };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('delete', 'replace', 'add', 'wrap', 'nest'),
  key,
  value: fc.oneof(json, nearMiss),
  levels: fc.integer({ min: MAX_ANSWER_DEPTH - 12, max: MAX_ANSWER_DEPTH + 4 }),
});

function mutate(original: Json, mutations: Mutation[]): Json {
  const root = JSON.parse(JSON.stringify(original)) as Json;
  for (let m of mutations) {
    const all = slots(root);
    if (all.length === 0) break;
    const [parent, k] = all[m.at % all.length]!;
    const old = (parent as Record<string | number, Json>)[k]!;
    // A copy: constantFrom hands out the same [] and {} every time, and one added into itself makes a cycle.
    m = { ...m, value: JSON.parse(JSON.stringify(m.value)) as Json };
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(k as number, 1);
      else delete parent[k as string];
    } else if (m.op === 'replace') define(parent, k, m.value);
    else if (m.op === 'wrap') define(parent, k, [old]);
    else if (m.op === 'nest') define(parent, k, nest(m.levels, old));
    else if (typeof old === 'object' && old !== null && !Array.isArray(old)) define(old, m.key, m.value);
    else if (!Array.isArray(parent)) define(parent, m.key, m.value);
  }
  return root;
}

const answer: fc.Arbitrary<Json> = fc.oneof(
  { weight: 2, arbitrary: completion },
  { weight: 5, arbitrary: fc.tuple(completion, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([c, ms]) => mutate(c, ms)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json> },
);

describe('parseCompletion on generated answers', () => {
  it('returns a ChatCompletion or throws SecurityError, never anything else, and agrees with the rules', () => {
    let passed = 0;
    let refused = 0;
    fc.assert(
      fc.property(answer, (value) => {
        const plaintext = JSON.stringify(value).replaceAll(`"${INFINITY}"`, '1e400');
        const raw: unknown = JSON.parse(plaintext);
        const valid = depth(raw) <= MAX_ANSWER_DEPTH && isCompletion(raw, true);
        let result: unknown;
        try {
          result = parseCompletion(new TextEncoder().encode(plaintext));
        } catch (e) {
          if (!(e instanceof SecurityError)) throw e;
          expect(e.message).toMatch(/^the decrypted answer is not a chat.completion: /);
          expect(valid).toBe(false);
          refused++;
          return;
        }
        expect(valid).toBe(true);
        expect(isCompletion(result, false)).toBe(true);
        expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
        passed++;
      }),
      { numRuns: 10_000 },
    );
    // Both verdicts are exercised in earnest, so neither side of the property is vacuous.
    expect(passed).toBeGreaterThan(2_000);
    expect(refused).toBeGreaterThan(2_000);
    expect(({} as Obj).polluted).toBeUndefined();
  });
});
