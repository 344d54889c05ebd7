// What every server runtime must do with @nomyo/core, in steps. Imported by client.mjs (Node, Deno,
// Bun: all steps in one process) and by worker.mjs (workerd: one step per request, so the host can
// time each one). Plain JavaScript: it runs unbuilt in every runtime and in the Worker bundle.
import { SecureChatCompletion, SecurityError, getMemoryProtection } from '@nomyo/core';

/** The runtime this module is running in, by feature detection. */
export function describeRuntime() {
  const g = globalThis;
  if (g.Deno) return { name: 'deno', version: g.Deno.version.deno };
  if (g.Bun) return { name: 'bun', version: g.Bun.version };
  if (g.navigator?.userAgent === 'Cloudflare-Workers') return { name: 'workerd', version: null };
  return { name: 'node', version: g.process.versions.node };
}

const ask = (content) => ({ model: 'runtime-test', messages: [{ role: 'user', content }] });
const newClient = (url, options = {}) => new SecureChatCompletion({ baseUrl: url, allowHttp: true, maxRetries: 0, ...options });

async function timed(label, client) {
  const content = `${label} from ${describeRuntime().name}`;
  const started = performance.now();
  const answer = await client.create(ask(content));
  const ms = performance.now() - started;
  return { sent: content, content: answer.choices[0].message.content, ms, protocol: answer._metadata.protocol };
}

/** The client of the latest firstRequest(), kept for the steps that follow it. */
let current;

/**
 * A fresh client's first request. With `keySize`: protocol v1, whose answers are sealed to the
 * client's own key, so the time includes generating the pair (the router key fetch runs beside it).
 * Without: the default protocol, v2 where the router offers it, which needs no client key.
 */
export async function firstRequest(url, keySize) {
  await current?.dispose();
  current = newClient(url, keySize ? { keySize, protocol: 1 } : {});
  const result = await timed(`first ${keySize ? `v1 ${keySize}` : 'default protocol'}`, current);
  return keySize ? { ...result, primes: (await current.client.keyPair()).primes } : result;
}

/** One more request with the same client: the cost every later request pays. */
export function oneRequest() {
  return timed('again', current);
}

/**
 * A streamed answer with the current client (v2 where the router speaks it): its chunks' contents
 * joined, and its metadata. Each record is opened as it arrives, with the keys derived for it.
 */
export async function streamedRequest() {
  const content = `streamed from ${describeRuntime().name}`;
  const stream = await current.create({ ...ask(content), stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return { sent: content, content: text, streamed: stream._metadata.streamed, protocol: stream._metadata.protocol };
}

/**
 * A request whose sealed body is over 64 KiB, which the client sends otherwise than a small one (in
 * Node.js as a stream of copied pieces, with `redirect: 'error'`): whether its answer echoes it whole.
 */
export async function largeRequest() {
  const content = `large from ${describeRuntime().name} ${'x'.repeat(70_000)}`;
  const answer = await current.create(ask(content));
  return { echoed: answer.choices[0].message.content === `echo: ${content}`, length: content.length };
}

/** A request the router answers with a tampered package (the test's hook keys on the API key). */
export async function tamperedRequest(tamperKey) {
  try {
    await current.create(ask('tamper with my answer'), { apiKey: tamperKey });
    return { accepted: true };
  } catch (err) {
    return { name: err.name, code: err.code, securityError: err instanceof SecurityError };
  }
}

/** A pair generated into keyDir and loaded from it by a second client: 'ok', or the error. */
export async function keyFiles(url, keyDir) {
  try {
    const writer = newClient(url, { keySize: 2048, keyDir });
    await writer.create(ask('save my key'));
    const reader = newClient(url, { keySize: 2048, keyDir });
    const answer = await reader.create(ask('load my key'));
    const same = (await writer.client.keyPair()).fingerprint === (await reader.client.keyPair()).fingerprint;
    await Promise.all([writer.dispose(), reader.dispose()]);
    return same && answer.choices[0].message.content === 'echo: load my key' ? 'ok' : { name: 'Mismatch', message: 'the loaded key is not the saved one' };
  } catch (err) {
    return { name: err.name, message: err.message };
  }
}

export async function protection() {
  return getMemoryProtection();
}

export async function dispose() {
  await current?.dispose();
  current = undefined;
}
