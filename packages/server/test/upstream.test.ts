/** Forwarding to an OpenAI-compatible upstream: a tiny fake one on node:http, real sockets. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { HEADERS } from '@nomyo/core/protocol';
import { startServer, type NomyoServer } from '../src/index.js';
import { CHAT, VECTOR_KEY_FILE, post, sealRequest, secureCompletion } from './helpers.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let seen: Seen[] = [];
let reply: (res: http.ServerResponse, body: any) => void;
let upstream: http.Server;
let upstreamUrl: string;
let router: NomyoServer;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      reply(res, JSON.parse(body));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  router = await startServer({ keyFile: VECTOR_KEY_FILE, upstream: upstreamUrl, upstreamKey: 'sk-upstream', apiKey: 'sk-router' });
});
afterAll(async () => {
  await router.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});
function replyWithCompletion(): void {
  reply = (res, body) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id: 'up-1', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'from upstream' }, finish_reason: 'stop' }] }));
  };
}
beforeEach(() => {
  seen = [];
  replyWithCompletion();
});

const auth = { Authorization: 'Bearer sk-router' };

describe('upstream forwarding', () => {
  it('goes through the process\'s undici dispatcher: one the process sets (a proxy agent, say) applies', async () => {
    const before = getGlobalDispatcher();
    const origins: string[] = [];
    const agent = new Agent();
    setGlobalDispatcher(
      agent.compose((dispatch: Dispatcher['dispatch']) => (opts, handler) => {
        origins.push(`${String(opts.origin)} ${opts.method} ${opts.path}`);
        return dispatch(opts, handler);
      }),
    );
    try {
      const { completion } = await secureCompletion(router.url, CHAT, auth);
      expect(completion).toMatchObject({ id: 'up-1' });
    } finally {
      setGlobalDispatcher(before);
      await agent.close();
    }
    // The test's own client goes through it too: the router's call is the one to the upstream.
    const upstreamOrigin = new URL(upstreamUrl).origin;
    expect(origins.filter((o) => o.startsWith(upstreamOrigin))).toEqual([`${upstreamOrigin} POST /v1/chat/completions`]);
    expect(seen).toHaveLength(1);
  });

  it('posts the decrypted request to {upstream}/chat/completions with the upstream key and no tier', async () => {
    const request = { ...CHAT, temperature: 0.2, security_tier: 'high' };
    const { completion } = await secureCompletion(router.url, request, { ...auth, [HEADERS.securityTier]: 'maximum' });
    expect(completion).toMatchObject({ id: 'up-1', choices: [{ message: { content: 'from upstream' } }] });
    expect(seen).toHaveLength(1);
    const [call] = seen as [Seen];
    expect(call.method).toBe('POST');
    expect(call.url).toBe('/v1/chat/completions');
    expect(call.headers.authorization).toBe('Bearer sk-upstream');
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers['x-security-tier']).toBeUndefined();
    expect(JSON.parse(call.body)).toEqual({ ...CHAT, temperature: 0.2 });
  });

  it('forwards a long request as the bytes JSON.stringify gives, escapes and non-ASCII included', async () => {
    const content = 'Zeile "eins"\n\tÜberweisung 👋 \u0001 \\ end. '.repeat(2000); // a long string for core's byte writer
    const request = { model: 'm', messages: [{ role: 'user', content }], security_tier: 'high' };
    await secureCompletion(router.url, request, auth);
    const { security_tier: _tier, ...forwarded } = request;
    expect(seen.map((s) => s.body)).toEqual([JSON.stringify(forwarded)]);
  });

  it('v1: a 4xx becomes a generic detail with the status class only (its text repeats the request); a 429 keeps its Retry-After', async () => {
    reply = (res, body) => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'error', message: `The model \`${body.model}\` does not exist.`, type: 'NotFoundError', code: 404 }));
    };
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ detail: 'the inference backend refused the request (4xx)' });

    reply = (res) => {
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '7' });
      res.end(JSON.stringify({ error: { message: 'slow down\u001b[31m please' } }));
    };
    const limited = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(await limited.json()).toEqual({ detail: 'the inference backend is rate limiting (4xx)' });

    // A Retry-After that is neither seconds nor an HTTP date is not passed on.
    reply = (res) => {
      res.writeHead(429, { 'Retry-After': 'soon, when test-model is free' });
      res.end();
    };
    const odd = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(odd.headers.get('retry-after')).toBeNull();
  });

  it('turns an upstream 401 into 502, so the caller does not think its own key is wrong', async () => {
    reply = (res) => {
      res.writeHead(401);
      res.end('{"detail":"bad key"}');
    };
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(502);
  });

  it('turns a 5xx or a non-JSON answer into 502 with a safe detail', async () => {
    reply = (res) => {
      res.writeHead(500);
      res.end('Traceback (most recent call last): secret internals');
    };
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ detail: 'inference backend error (500)' });

    reply = (res) => {
      res.writeHead(200);
      res.end('<html>');
    };
    const notJson = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(notJson.status).toBe(502);
  });

  it('passes an upstream 503 on as 503 with its Retry-After (it did nothing with the request: clients retry it when it says)', async () => {
    reply = (res) => {
      res.writeHead(503, { 'Retry-After': '3' });
      res.end('{"detail":"the model is loading"}');
    };
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect([res.status, res.headers.get('retry-after')]).toEqual([503, '3']);
    expect(await res.json()).toEqual({ detail: 'inference backend unavailable (503)' });
  });

  it('an error body that never ends is read no further than its first MiB: the caller is answered, the upstream request closed', async () => {
    let closed = false;
    let sent = 0;
    reply = (res) => {
      res.writeHead(500, { 'Content-Type': 'text/event-stream' });
      res.on('close', () => (closed = true));
      const piece = Buffer.alloc(64 * 1024, 'x');
      const more = () => {
        while (!res.destroyed && sent < 256 * 1024 * 1024 && res.write(piece)) sent += piece.length;
        if (!res.destroyed) res.once('drain', more);
      };
      more();
    };
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ detail: 'inference backend error (500)' });
    await expect.poll(() => closed, { timeout: 5000 }).toBe(true);
    // What the sockets' buffers held, not the body that was on its way: before, all of it was read.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('an event stream to a request that did not ask for one is 502, its connection closed, and the router lives on', async () => {
    let closed = false;
    reply = (res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.on('close', () => (closed = true));
      res.write('data: {"choices":[]}\n\n'); // and never ends
    };
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ detail: 'the inference backend streamed an answer that was not asked for' });
    await expect.poll(() => closed, { timeout: 5000 }).toBe(true);
    // Before, the aborted body's error had no listener and ended the router's process.
    await new Promise((resolve) => setTimeout(resolve, 50));
    replyWithCompletion();
    const next = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(next.status).toBe(200);
  });

  it('an answer nested deeper than a client takes (64) is the upstream\'s fault: 502; 64 deep passes', async () => {
    // The completion, its choices and a choice are 3 levels: `logprobs` holds the rest.
    const nestedTo = (depth: number) => JSON.parse('['.repeat(depth - 3) + ']'.repeat(depth - 3)) as unknown;
    let depth = 64;
    reply = (res, body) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: 'up-1', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'deep' }, finish_reason: 'stop', logprobs: nestedTo(depth) }] }));
    };
    const { completion } = await secureCompletion(router.url, CHAT, auth);
    expect(completion.choices[0].message.content).toBe('deep');
    depth = 65;
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ detail: 'the inference backend sent an answer nested deeper than 64' });
  });

  it('answers 503 when the upstream cannot be reached, 504 when it is too slow', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const dead = await startServer({ keyFile: VECTOR_KEY_FILE, upstream: `http://127.0.0.1:${port}` });
    try {
      const res = await post(dead.url, JSON.stringify(await sealRequest(dead.publicKeyPem, CHAT)));
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ detail: 'inference backend unavailable' });
    } finally {
      await dead.close();
    }

    reply = () => undefined; // never answers
    const impatient = await startServer({ keyFile: VECTOR_KEY_FILE, upstream: upstreamUrl, upstreamTimeoutMs: 200 });
    try {
      const res = await post(impatient.url, JSON.stringify(await sealRequest(impatient.publicKeyPem, CHAT)));
      expect(res.status).toBe(504);
      expect(await res.json()).toEqual({ detail: 'inference backend timed out' });
    } finally {
      await impatient.close();
    }
  });

  it('answers 502 when the upstream closes the connection after the request reached it (the model may have run it: nobody retries a 502)', async () => {
    reply = (res) => void setTimeout(() => res.socket?.destroy(), 50);
    const res = await post(router.url, JSON.stringify(await sealRequest(router.publicKeyPem, CHAT)), auth);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ detail: 'inference backend closed the connection before answering' });
  });

  it('the upstream timeout bounds the time to its first byte and each silence after, not the whole answer: a body that hangs is 504', async () => {
    const slow = await startServer({ keyFile: VECTOR_KEY_FILE, upstream: upstreamUrl, upstreamTimeoutMs: 300 });
    const whole = JSON.stringify({ id: 'up-1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'slowly' }, finish_reason: 'stop' }] });
    try {
      // Headers after 150 ms, then a piece every 150 ms: 900 ms in all, never 300 ms of silence.
      reply = (res) => {
        const pieces = [whole.slice(0, 20), whole.slice(20, 60), whole.slice(60, 100), whole.slice(100)];
        setTimeout(() => {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          const next = () => {
            const piece = pieces.shift()!;
            if (pieces.length === 0) return void res.end(piece);
            res.write(piece);
            setTimeout(next, 150);
          };
          next();
        }, 150);
      };
      const { completion } = await secureCompletion(slow.url, CHAT);
      expect(completion.choices[0].message.content).toBe('slowly');

      // Headers and a piece, then nothing: 504, not a request that hangs.
      reply = (res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(whole.slice(0, 20));
      };
      const t0 = performance.now();
      const res = await post(slow.url, JSON.stringify(await sealRequest(slow.publicKeyPem, CHAT)));
      expect(res.status).toBe(504);
      expect(await res.json()).toEqual({ detail: 'inference backend sent an incomplete response' });
      expect(performance.now() - t0).toBeLessThan(3000);
    } finally {
      await slow.close();
    }
  });
});
