/**
 * Step three of a secure completion (handler.ts): the model's output sealed as the request's answer,
 * v1 to the caller's key, v2 with the key derived from the request's own, or as a streamed v2 answer
 * (answer-stream.ts) when the model gives chunks; and an error whose text came from the upstream,
 * sealed for a v2 caller alone.
 */
import {
  MAX_ANSWER_DEPTH,
  SEALED_ERROR_FIELD,
  answerSealingV2,
  errorSealingV2,
  sealWith,
  sealedErrorBytes,
  v1Sealing,
  StreamSealer,
  type Sealing,
  type AesKey,
  type HkdfKey,
} from '@nomyo/core/protocol';
import { sealBody, stringifyJsonBytes } from '@nomyo/core/internal';
import type { RouterBuffers } from './buffers.js';
import { streamResponse, type AnswerStreamOptions } from './answer-stream.js';
import { isCheckedOutput } from './envelope.js';
import { HttpError, nestedTooDeep, type UpstreamError } from './http-error.js';
import { detailResponse, jsonResponse, type RouterResponse } from './respond.js';

/** How the answer to one opened request is sealed. */
export interface AnswerSealer {
  /** The 200 response: the model's output (a chat.completion, normally), sealed. */
  seal(completion: unknown): Promise<RouterResponse>;
  /** The response to an upstream error: its reason sealed for a v2 caller, the generic detail alone for v1. */
  refuse(err: UpstreamError): Promise<RouterResponse>;
  /** The 200 response streaming `chunks` (chat.completion.chunk objects), each sealed as it comes: v2 only. */
  stream(chunks: AsyncIterable<unknown>, options: AnswerStreamOptions): Promise<RouterResponse>;
}

const processedAt = () => ({ processed_at: Math.floor(Date.now() / 1000) });

/** v1: the answer sealed to the caller's key (X-Public-Key); an upstream error's reason cannot be told safely. */
export function v1Sealer(recipient: CryptoKey, buffers: RouterBuffers): AnswerSealer {
  return {
    seal: async (completion) => sealAnswer(completion, await v1Sealing(recipient, processedAt()), buffers),
    refuse: async (err) => detailResponse(err.status, err.detail, { ...err.headers }),
    stream: () => Promise.reject(new Error('v1 answers never stream: the request reached the model without stream')),
  };
}

/**
 * v2: the answer, and an upstream error's reason, sealed with the request's answer key (derived
 * while the model works); a stream's records with keys derived from its `K` (`kdfKey`) and a fresh
 * salt. For a request that asks to stream (`streams`), those keys are derived at once, while the
 * upstream is called: they are on the way to the first token.
 */
export function v2Sealer(answerKey: Promise<AesKey>, kdfKey: HkdfKey, payloadId: string, buffers: RouterBuffers, streams: boolean): AnswerSealer {
  // Once the upstream request is on its way (setImmediate: after this turn's I/O), not before it.
  let streamSealer = streams ? new Promise<void>((resolve) => setImmediate(resolve)).then(() => StreamSealer.start(kdfKey, payloadId)) : undefined;
  streamSealer?.catch(() => undefined); // awaited when the model streams; never left unhandled
  return {
    stream: async (chunks, options) => streamResponse(await (streamSealer ??= StreamSealer.start(kdfKey, payloadId)), chunks, options),
    seal: async (completion) => sealAnswer(completion, answerSealingV2(await answerKey, payloadId, processedAt()), buffers),
    async refuse(err) {
      const plaintext = sealedErrorBytes(err.sealed);
      try {
        const sealed = await sealWith(errorSealingV2(await answerKey, payloadId), plaintext);
        return jsonResponse(err.status, { detail: err.detail, [SEALED_ERROR_FIELD]: sealed }, { ...err.headers });
      } finally {
        plaintext.fill(0);
      }
    },
  };
}

/**
 * The output's JSON (its long strings straight into the bytes), sealed into a body: where the JSON
 * was written when the body buffers are the request's alone (a large one), else into a body buffer.
 */
async function sealAnswer(completion: unknown, sealing: Sealing, buffers: RouterBuffers): Promise<RouterResponse> {
  const json = stringifyJsonBytes(completion, {
    into: buffers.completions,
    maxBytes: Number.MAX_SAFE_INTEGER,
    tooLarge: () => new Error('the completion is too large'), // never: no cap on what the model says
    // An upstream's answer was measured as it was read (upstream.ts); a custom model's is here.
    maxDepth: isCheckedOutput(completion) ? undefined : { limit: MAX_ANSWER_DEPTH, error: () => new HttpError(502, nestedTooDeep('an answer')) },
  });
  if (json === undefined) throw new Error('the model produced no completion');
  const body = await sealBody(sealing, json, buffers.bodies);
  return { status: 200, headers: { 'Content-Type': 'application/json' }, body: body.bytes, release: () => body.release() };
}
