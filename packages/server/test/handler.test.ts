/**
 * handleSecureCompletion on its own, no HTTP: its three steps (headers, the request opened, the answer
 * sealed) for v1 and v2, what reaches the model, what it does with an upstream's error, and that the
 * request body it takes over is given back exactly once, whatever happens.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HEADERS,
  SEALED_ERROR_FIELD,
  importRsaPrivateKey,
  openAnswerV2,
  openErrorV2,
  openPackage,
  parseSealedError,
  parseServerKey,
  pemToDer,
  requestSealingV2,
  sealPackage,
  sealWith,
  serializePackage,
} from '@nomyo/core/protocol';
import { owned, type OwnedBytes } from '@nomyo/core/internal';
import { HttpError, UpstreamError, type ChatRequest, type CompletionModel } from '../src/index.js';
import { routerBuffers } from '../src/buffers.js';
import { handleSecureCompletion, type SecureCompletionContext } from '../src/handler.js';
import { CHAT, VECTOR_KEY_FILE, VECTOR_PUBLIC_KEY_FILE, clientKey } from './helpers.js';

const encoder = new TextEncoder();
let privateKey: CryptoKey;
let publicKey: CryptoKey;

beforeAll(async () => {
  privateKey = await importRsaPrivateKey(pemToDer(readFileSync(VECTOR_KEY_FILE, 'utf8'), 'PRIVATE KEY'), false);
  publicKey = (await parseServerKey(readFileSync(VECTOR_PUBLIC_KEY_FILE, 'utf8'))).key;
});

/** A body whose releases are counted. */
function body(text: string): OwnedBytes & { releases: () => number } {
  let releases = 0;
  const bytes = encoder.encode(text);
  return Object.assign(owned(bytes, false, () => releases++), { releases: () => releases });
}

const seen: Array<{ request: ChatRequest; payloadId: string; tier: string | undefined }> = [];
const echo: CompletionModel = (request, ctx) => {
  seen.push({ request, payloadId: ctx.payloadId, tier: ctx.securityTier });
  return { id: 'x', object: 'chat.completion', created: 1, model: request.model, choices: [] };
};

function context(headers: Record<string, string>, requestBody: OwnedBytes, model: CompletionModel = echo, exclusive = true): SecureCompletionContext {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { headers: lower, body: requestBody, privateKeys: privateKey, model, signal: new AbortController().signal, protocol: 2, buffers: routerBuffers(exclusive), streaming: { heartbeatMs: 15_000, stallMs: 60_000, onStall: () => {}, onInternalError: () => {}, onDeafModel: () => {} } };
}

async function v2Request(payloadId: string, tier: string | undefined, request: object = CHAT) {
  const k = crypto.getRandomValues(new Uint8Array(32));
  const { sealing, answerKey } = await requestSealingV2(k, publicKey, { payloadId, tier });
  return { text: serializePackage(await sealWith(sealing, encoder.encode(JSON.stringify(request)))), answerKey: await answerKey };
}

const auth = { [HEADERS.authorization]: 'Bearer sk-router' };

describe('handleSecureCompletion', () => {
  it.each([true, false])('v2: opens the request bound to its headers, gives the model the request, seals its output for that request (exclusive bodies: %s)', async (exclusive) => {
    seen.length = 0;
    const { text, answerKey } = await v2Request('id-1', 'high');
    const b = body(text);
    const response = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-1', [HEADERS.securityTier]: 'high' }, b, echo, exclusive));
    expect(response.status).toBe(200);
    expect(seen).toEqual([{ request: CHAT, payloadId: 'id-1', tier: 'high' }]);
    const opened = await openAnswerV2(JSON.parse(new TextDecoder().decode(response.body)), answerKey, 'id-1');
    expect(JSON.parse(new TextDecoder().decode(opened))).toMatchObject({ object: 'chat.completion', model: 'test-model' });
    response.release?.();
    expect(b.releases()).toBe(1);
  });

  it('v1: seals the output to the X-Public-Key sent', async () => {
    const { pair, pem } = await clientKey();
    const b = body(serializePackage(await sealPackage(encoder.encode(JSON.stringify(CHAT)), publicKey)));
    const response = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-2', [HEADERS.publicKey]: encodeURIComponent(pem) }, b));
    expect(response.status).toBe(200);
    const opened = await openPackage(JSON.parse(new TextDecoder().decode(response.body)), pair.privateKey);
    expect(JSON.parse(new TextDecoder().decode(opened))).toMatchObject({ object: 'chat.completion' });
    expect(b.releases()).toBe(1);
  });

  it.each([
    ['no payload id', auth, 400],
    ['a tier that is none', { ...auth, [HEADERS.payloadId]: 'id-3', [HEADERS.securityTier]: 'top' }, 400],
    ['a v1 request without X-Public-Key', { ...auth, [HEADERS.payloadId]: 'id-3' }, 400],
  ])('refuses %s before opening anything, and gives the body back once', async (_what, headers, status) => {
    seen.length = 0;
    const b = body(serializePackage(await sealPackage(encoder.encode(JSON.stringify(CHAT)), publicKey)));
    const err = await handleSecureCompletion(context(headers, b)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(status);
    expect(b.releases()).toBe(1);
    expect(seen).toEqual([]);
  });

  it('refuses a v2 request whose headers changed on the way (another payload id), the body given back once', async () => {
    const { text } = await v2Request('id-4', undefined);
    const b = body(text);
    const err = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-5' }, b)).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, detail: 'decryption failed: the package is not authentic or not for this key' });
    expect(b.releases()).toBe(1);
  });

  it('an upstream error: its reason sealed for the v2 caller alone, the generic detail in the clear', async () => {
    const { text, answerKey } = await v2Request('id-6', undefined);
    const upstream: CompletionModel = () => {
      throw new UpstreamError(400, 'the inference backend refused the request (4xx)', { message: 'The model `secret` does not exist.', type: 'NotFoundError', code: 404, status: 404 });
    };
    const response = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-6' }, body(text), upstream));
    expect(response.status).toBe(400);
    const json = JSON.parse(new TextDecoder().decode(response.body)) as Record<string, unknown>;
    expect(json.detail).toBe('the inference backend refused the request (4xx)');
    expect(JSON.stringify(json)).not.toContain('secret');
    const error = parseSealedError(await openErrorV2(json[SEALED_ERROR_FIELD], answerKey, 'id-6'));
    expect(error).toEqual({ message: 'The model `secret` does not exist.', type: 'NotFoundError', code: 404, status: 404 });
  });

  it.each([
    ['no model', { messages: CHAT.messages }, 400, 'the request needs a model string'],
    ['stream not a boolean', { ...CHAT, stream: 'yes' }, 400, 'stream must be a boolean'],
    ['tools not an array', { ...CHAT, tools: {} }, 400, 'tools must be an array'],
  ])('a v2 request that opens but is no chat request (%s): its reason sealed for its sender, a detail in the clear that says nothing of it', async (_what, request, status, reason) => {
    seen.length = 0;
    const { text, answerKey } = await v2Request('id-10', undefined, request);
    const b = body(text);
    const response = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-10' }, b));
    expect(response.status).toBe(status);
    const json = JSON.parse(new TextDecoder().decode(response.body)) as Record<string, unknown>;
    expect(json.detail).toBe('the request was refused once opened (4xx): the reason is sealed for its sender');
    const error = parseSealedError(await openErrorV2(json[SEALED_ERROR_FIELD], answerKey, 'id-10'));
    expect(error).toEqual({ message: reason, type: 'invalid_request_error', code: null, status });
    expect(seen).toEqual([]);
    expect(b.releases()).toBe(1);
  });

  it("a custom model's answer nested deeper than a client takes (64) is the model's fault: a 502 in the clear; 64 deep is sealed", async () => {
    const nested = (depth: number): CompletionModel => (request) => ({
      id: 'x', object: 'chat.completion', created: 1, model: request.model, choices: [],
      // The answer's own object is one level: arrays for the rest.
      x: JSON.parse('['.repeat(depth - 1) + ']'.repeat(depth - 1)) as unknown,
    });
    const deep = await v2Request('id-8', undefined);
    const err = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-8' }, body(deep.text), nested(65))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 502, detail: 'the inference backend sent an answer nested deeper than 64' });
    const fine = await v2Request('id-9', undefined);
    const response = await handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-9' }, body(fine.text), nested(64)));
    expect(response.status).toBe(200);
    const opened = await openAnswerV2(JSON.parse(new TextDecoder().decode(response.body)), fine.answerKey, 'id-9');
    expect(JSON.stringify(JSON.parse(new TextDecoder().decode(opened)).x)).toBe('['.repeat(63) + ']'.repeat(63));
    response.release?.();
  });

  it('any other failure of the model is thrown (dispatch answers it without its text)', async () => {
    const { text } = await v2Request('id-7', undefined);
    const failing: CompletionModel = () => {
      throw new TypeError('boom');
    };
    await expect(handleSecureCompletion(context({ ...auth, [HEADERS.payloadId]: 'id-7' }, body(text), failing))).rejects.toThrow(TypeError);
  });
});
