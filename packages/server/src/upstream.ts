/**
 * Forwarding to an OpenAI-compatible upstream: `POST {base}/chat/completions` with the decrypted
 * request. Upstream failures become safe router errors: 4xx (except 401) pass through with the
 * upstream's (sanitized) message, 5xx become 502, an unreachable or silent upstream 503.
 */
import { jsonBytes, sanitizeDetail } from '@nomyo/core/protocol';
import { HttpError } from './http-error.js';
import { linkedController } from './signals.js';
import type { ChatRequest, CompletionModel, ModelContext } from './types.js';

export interface UpstreamOptions {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
}

/** `detail`, or OpenAI's `error.message`, or the raw text. */
function upstreamMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { detail?: unknown; error?: { message?: unknown } } | null;
    const message = body?.detail ?? body?.error?.message;
    if (message !== undefined) return sanitizeDetail(typeof message === 'string' ? message : JSON.stringify(message));
  } catch {
    // Not JSON: fall through to the text itself.
  }
  return sanitizeDetail(text);
}

function timedOut(signal: AbortSignal): boolean {
  return (signal.reason as Error | undefined)?.name === 'TimeoutError';
}

async function exchange(url: string, init: RequestInit, signal: AbortSignal): Promise<{ status: number; retryAfter: string | null; text: string }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal });
  } catch {
    throw new HttpError(503, timedOut(signal) ? 'inference backend timed out' : 'inference backend unavailable');
  }
  try {
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
  } catch {
    throw new HttpError(timedOut(signal) ? 503 : 502, 'inference backend sent an incomplete answer');
  }
}

export function upstreamModel(options: UpstreamOptions): CompletionModel {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;

  return async (request: ChatRequest, context: ModelContext): Promise<unknown> => {
    // The tier is a router concern; a stray field from an old client must not reach the backend.
    const { security_tier: _tier, ...forwarded } = request;
    const controller = linkedController([context.signal], options.timeoutMs);
    // The plaintext request as bytes, long strings written straight in (a 10 MiB document makes no
    // 10 MiB JSON string), zeroed once the exchange is over, which a string could not be.
    const body = jsonBytes(forwarded);
    let answer: Awaited<ReturnType<typeof exchange>>;
    try {
      answer = await exchange(url, { method: 'POST', headers, body }, controller.signal);
    } finally {
      controller.abort(); // releases the timer and the links to the caller's signal; no more of the body is sent
      body.fill(0);
    }
    const { status, retryAfter, text } = answer;
    // A 401 from upstream is the router's own key failing, not the caller's: passing it through
    // would tell the caller its API key is wrong.
    if (status === 401) throw new HttpError(502, 'inference backend refused the router credentials');
    if (status >= 400 && status < 500) {
      const detail = upstreamMessage(text) ?? `inference backend refused the request (${status})`;
      throw new HttpError(status, detail, retryAfter ? { 'Retry-After': retryAfter } : {});
    }
    if (status !== 200) throw new HttpError(502, `inference backend error (${status})`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(502, 'inference backend sent an answer that is not JSON');
    }
  };
}
