/**
 * What an upstream sends, made a whole chat.completion (or chat.completion.chunk) before it is
 * sealed. OpenAI-compatible servers differ in the envelope around an answer: some leave out
 * `created`, a choice's `index`, or more (docs/deployment.md, "Upstreams"). The router fills in what
 * is missing, and only that:
 * - `id`: one generated per answer (every chunk of a stream shares it);
 * - `object`: "chat.completion", or "chat.completion.chunk" for a chunk;
 * - `created`: the router's time when the request arrived, in seconds;
 * - `model`: the model the request asked for;
 * - `choices[i].index`: the choice's position;
 * - in a chunk, a choice's `delta`: `{}` (left out by some upstreams in a chunk that only ends the
 *   choice), and a tool call piece's `index`: from its id, else as the next call or the last
 *   (left out by some that send one call a chunk). The protocol has both required, and clients refuse a chunk without them.
 *
 * A field that is missing or null is filled in; one that is there is never changed, nor are
 * content, tool calls, `usage` or fields the router does not know. Two exceptions: a chunk's
 * `usage: null` (some upstreams send it on every chunk) is dropped, as the protocol has `usage` an
 * object where present, and a client that holds to that would refuse the chunk; and an empty
 * `object` (Azure's first chunk has `""`) is filled in as a missing one. Then the answer is
 * checked as the client will check it (core's checkChatCompletion, checkChatCompletionChunk): what
 * cannot be a completion at all (no `choices`, a message that is not one, a chunk of another
 * `object`) is an UpstreamError, so the reason goes to a v2 caller sealed, like any upstream failure.
 */
import { randomUUID } from 'node:crypto';
import { checkChatCompletion, checkChatCompletionChunk } from '@nomyo/core/protocol';
import { UpstreamError } from './http-error.js';
import type { ChatRequest, CompletionModel } from './types.js';

/** The fields filled in for one answer. */
export interface Envelope {
  readonly id: string;
  readonly created: number;
  readonly model: string | undefined;
  /** A stream's tool calls, for each choice: what a left-out index is filled in from. */
  readonly toolCalls: Map<unknown, ToolCalls>;
}

/** One choice's tool calls so far: their indexes by id, how many, the last one a piece went to. */
interface ToolCalls {
  readonly ids: Map<string, number>;
  count: number;
  last: number;
}

/** The envelope for the answer to `request`, made when the request arrives. */
export function envelopeFor(request: ChatRequest): Envelope {
  return {
    id: `chatcmpl-${randomUUID().replaceAll('-', '')}`,
    created: Math.floor(Date.now() / 1000),
    model: typeof request.model === 'string' ? request.model : undefined,
    toolCalls: new Map(),
  };
}

/** `model`'s output with its envelope made whole: a completion, or each chunk of a stream as it comes. */
export function normalisingModel(model: CompletionModel): CompletionModel {
  return async (request, context) => {
    const envelope = envelopeFor(request);
    const output = await model(request, context);
    // A refusal here is the upstream's answer failing: counted as such (metrics).
    const refused = () => context.upstream && (context.upstream.failure ??= 'malformed');
    if (isAsyncIterable(output)) return normalisedChunks(output, envelope, refused);
    try {
      return normaliseCompletion(output, envelope);
    } catch (err) {
      refused();
      throw err;
    }
  };
}

/** A whole answer's envelope filled in, then checked; an UpstreamError when it is no chat.completion. */
export function normaliseCompletion(value: unknown, envelope: Envelope): unknown {
  fill(value, envelope, 'chat.completion');
  checked(value, 'chat.completion', checkChatCompletion);
  checkedOutputs.add(value as object);
  return value;
}

/** A streamed chunk's envelope filled in, then checked; an UpstreamError when it is no chat.completion.chunk. */
export function normaliseChunk(value: unknown, envelope: Envelope): unknown {
  fill(value, envelope, 'chat.completion.chunk');
  checked(value, 'chat.completion.chunk', checkChatCompletionChunk);
  checkedOutputs.add(value as object);
  return value;
}

/**
 * The completions and chunks normalised here: an upstream's, checked as they were normalised, their
 * nesting as their text was read (upstream.ts, upstream-stream.ts). Their writers do not check them
 * again (chunk-json.ts, answer-sealer.ts); a custom model's output is checked there.
 */
const checkedOutputs = new WeakSet<object>();

/** Whether `output` passed normaliseCompletion's or normaliseChunk's check (an object nobody else holds: parsed from the upstream's text). */
export function isCheckedOutput(output: unknown): boolean {
  return typeof output === 'object' && output !== null && checkedOutputs.has(output);
}

/**
 * Each chunk normalised as it is taken: an iterator over the model's, not an async generator, whose
 * every chunk cost two more turns of the event loop and their promises. A refused chunk closes the
 * model's iterator, as `return` does (the stream's writer calls it when the client goes away).
 */
function normalisedChunks(chunks: AsyncIterable<unknown>, envelope: Envelope, refused: () => void): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const inner = chunks[Symbol.asyncIterator]();
      const normalised = (next: IteratorResult<unknown>): IteratorResult<unknown> | Promise<never> => {
        if (next.done) return next;
        try {
          return { done: false, value: normaliseChunk(next.value, envelope) };
        } catch (err) {
          refused();
          // A chunk refused: the model's stream is closed before the error goes on.
          return Promise.resolve(inner.return?.()).then(
            () => Promise.reject(err),
            () => Promise.reject(err),
          );
        }
      };
      return {
        next: () => inner.next().then(normalised),
        return: async (value?: unknown) => (await inner.return?.(value)) ?? { done: true, value },
      };
    },
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const missing = (o: Record<string, unknown>, key: string): boolean => o[key] === undefined || o[key] === null;

function fill(value: unknown, envelope: Envelope, object: string): void {
  if (!isRecord(value)) return; // the check refuses it
  if (missing(value, 'id')) value.id = envelope.id;
  // Azure's first chunk (its prompt's content filter results, no choices) has `object: ""`.
  if (missing(value, 'object') || value.object === '') value.object = object;
  if (missing(value, 'created')) value.created = envelope.created;
  if (missing(value, 'model') && envelope.model !== undefined) value.model = envelope.model;
  if (object === 'chat.completion.chunk' && value.usage === null) delete value.usage;
  if (!Array.isArray(value.choices)) return;
  value.choices.forEach((choice: unknown, position) => {
    if (!isRecord(choice)) return;
    if (missing(choice, 'index')) choice.index = position;
    if (object === 'chat.completion.chunk') fillDelta(choice, envelope);
  });
}

function fillDelta(choice: Record<string, unknown>, envelope: Envelope): void {
  if (missing(choice, 'delta')) choice.delta = {};
  if (!isRecord(choice.delta)) return; // the check refuses it
  // Servers that write every field of their models (pydantic's None as null) send `role`,
  // `tool_calls`, a piece's `id`, `type` or `function.name` as null: absent, as the check reads them.
  dropNulls(choice.delta, 'role', 'tool_calls');
  const calls = choice.delta.tool_calls;
  if (!Array.isArray(calls)) return;
  let state = envelope.toolCalls.get(choice.index);
  if (!state) envelope.toolCalls.set(choice.index, (state = { ids: new Map(), count: 0, last: 0 }));
  for (const call of calls) {
    if (!isRecord(call)) continue;
    dropNulls(call, 'id', 'type');
    if (isRecord(call.function)) dropNulls(call.function, 'name', 'arguments');
    state.last = toolCallIndex(state, call);
  }
}

function dropNulls(o: Record<string, unknown>, ...keys: string[]): void {
  for (const key of keys) if (o[key] === null) delete o[key];
}

/**
 * A tool call piece's index, filled in where it was left out: a piece with an id seen before goes to
 * that call; one with a new id, or with a function's name but no id (a call's first piece), is the
 * next call; any other piece goes on with the last call (0 before any). An empty id is no id, as
 * openai-node has it. Not the piece's position in its chunk: upstreams that leave the index out send
 * one call a chunk, and each would be call 0.
 */
function toolCallIndex(state: ToolCalls, call: Record<string, unknown>): number {
  const id = typeof call.id === 'string' && call.id !== '' ? call.id : undefined;
  if (typeof call.index === 'number') {
    if (id !== undefined && !state.ids.has(id)) state.ids.set(id, call.index);
    state.count = Math.max(state.count, call.index + 1);
    return call.index;
  }
  if (!missing(call, 'index')) return state.last; // the check refuses it
  const named = isRecord(call.function) && typeof call.function.name === 'string' && call.function.name !== '';
  let index = id === undefined ? undefined : state.ids.get(id);
  if (index === undefined && (id !== undefined || named)) {
    index = state.count++;
    if (id !== undefined) state.ids.set(id, index);
  }
  call.index = index ?? state.last;
  return call.index as number;
}

/** `value` if `check` passes it; else an UpstreamError whose sealed reason names the schema path (never a value). */
function checked(value: unknown, kind: string, check: (value: unknown) => unknown): unknown {
  try {
    check(value);
  } catch (err) {
    // The check's message is "<what it is not>: <schema path> must be <what>": the path is what helps.
    const reason = (err as Error).message;
    throw new UpstreamError(502, 'the inference backend sent an answer that is not a chat completion', {
      message: `the inference backend sent no ${kind}: ${reason.slice(reason.indexOf(': ') + 2)}`,
      type: 'upstream_error',
      code: null,
      status: 502,
    });
  }
  return value;
}

/** Whether a model's output is a stream of chunks (else it is a whole answer). */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}
