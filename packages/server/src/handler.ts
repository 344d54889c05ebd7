/**
 * POST /v1/chat/secure_completion, in three steps: the headers (request-headers.ts), the request
 * opened with the router's key (open-request.ts, which also says how to seal its answer), and the
 * answer: the model's output sealed (answer-sealer.ts), whole, or as a stream when the model gives
 * chunks (it does only for a v2 request that asks to stream), or has been silent for a heartbeat
 * interval on a request that asks to stream (stream-commit.ts). Every refusal is an HttpError whose detail
 * is our own text, never engine output or plaintext; an upstream error's own text goes only to a v2
 * caller, sealed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { PrivateKeys, ProtocolVersion } from '@nomyo/core/protocol';
import type { OwnedBytes } from '@nomyo/core/internal';
import type { RouterBuffers } from './buffers.js';
import type { AnswerStreamOptions, LogFields } from './answer-stream.js';
import { UpstreamError } from './http-error.js';
import { heeding } from './model-abort.js';
import { openRequest } from './open-request.js';
import { readRequestHeaders } from './request-headers.js';
import type { RouterResponse } from './respond.js';
import { isAsyncIterable } from './envelope.js';
import { lateChunks, settlesWithin } from './stream-commit.js';
import type { CompletionModel, UpstreamReport } from './types.js';

/** One secure completion's context. Its API key was checked before its body was read (dispatch.ts). */
export interface SecureCompletionContext {
  headers: IncomingHttpHeaders;
  /** The request body, taken over: released once opened (or refused). */
  body: OwnedBytes;
  /** The router's key, then those it also accepts (a rotation's): each is tried in turn. */
  privateKeys: PrivateKeys;
  model: CompletionModel;
  signal: AbortSignal;
  /** The highest protocol version this router speaks: 2 opens v2 packages too, 1 refuses them. */
  protocol: ProtocolVersion;
  buffers: RouterBuffers;
  /** A streamed answer's heartbeat, and where it reports an internal error's name, and a model deaf to its signal. */
  streaming: AnswerStreamOptions;
  /** Told the version of the opened package, and handed to the model to report its upstream call (logs and metrics). */
  facts?: { protocol: ProtocolVersion | null; readonly upstream: UpstreamReport };
  /** The request's log fields (its `seq`), for a line logged of it; its payload id is added here. */
  logFields?: LogFields;
}

export async function handleSecureCompletion(ctx: SecureCompletionContext): Promise<RouterResponse> {
  let headers;
  try {
    headers = readRequestHeaders(ctx.headers);
  } catch (err) {
    ctx.body.release();
    throw err;
  }
  const opened = await openRequest(ctx.body, headers, ctx);
  if (ctx.facts) ctx.facts.protocol = opened.protocol;
  if ('refusal' in opened) return opened.sealer.refuse(opened.refusal);
  const { request, sealer } = opened;
  let completion: unknown;
  const streaming = { ...ctx.streaming, upstream: ctx.facts?.upstream };
  try {
    const answer = ctx.model(request, { payloadId: headers.payloadId, securityTier: headers.tier, signal: ctx.signal, upstream: ctx.facts?.upstream });
    // A model deaf to its signal is left behind once it aborts (model-abort.ts), not waited for.
    const started = heeding(Promise.resolve(answer), ctx.signal, () => ctx.streaming.onDeafModel({ ...ctx.logFields, payload_id: headers.payloadId }));
    // A stream whose model is silent for a heartbeat interval is committed to (stream-commit.ts).
    if (request.stream === true && !(await settlesWithin(started, ctx.streaming.heartbeatMs))) return sealer.stream(lateChunks(started, request), streaming);
    completion = await started;
  } catch (err) {
    if (err instanceof UpstreamError) return sealer.refuse(err);
    throw err;
  }
  if (!isAsyncIterable(completion)) return sealer.seal(completion);
  if (request.stream !== true) throw new Error('the model streamed an answer nobody asked to stream');
  return sealer.stream(completion, streaming);
}
