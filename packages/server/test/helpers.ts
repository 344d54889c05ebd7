/** Shared test plumbing: a client key, and sealing/opening with core's protocol module over real fetch. */
import { fileURLToPath } from 'node:url';
import {
  HEADERS,
  PACKAGE_CONTENT_TYPE,
  PATHS,
  derToPem,
  generateRsaKeyPair,
  openPackage,
  parseServerKey,
  sealPackage,
  type EncryptedPackage,
} from '@nomyo/core/protocol';

// The vector key as a router's key file is kept: mode 0600 (a checkout's 0644 would be warned of).
export { VECTOR_KEY_FILE } from '@nomyo/test-support/keys';
export const VECTOR_PUBLIC_KEY_FILE = fileURLToPath(new URL('../../../test-vectors/v1/keys/server_4096.pub.pem', import.meta.url));

export interface ClientKey {
  pair: CryptoKeyPair;
  pem: string;
}

let cached: Promise<ClientKey> | undefined;
/** One 2048-bit client key per test file: fast, and the protocol's minimum. */
export function clientKey(): Promise<ClientKey> {
  cached ??= (async () => {
    // One whose PEM holds a "/", so that the tests of X-Public-Key's escaping have one to escape
    // (about one key in 500 has none).
    for (;;) {
      const pair = await generateRsaKeyPair(2048, false);
      const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
      const pem = derToPem(spki, 'PUBLIC KEY');
      if (pem.includes('/')) return { pair, pem };
    }
  })();
  return cached;
}

/** Python's urllib.parse.quote: like encodeURIComponent but leaves `/` raw. */
export function pythonQuote(text: string): string {
  return encodeURIComponent(text).replace(/%2F/g, '/');
}

export async function sealRequest(serverPem: string, request: unknown): Promise<EncryptedPackage> {
  const { key } = await parseServerKey(serverPem);
  return sealPackage(new TextEncoder().encode(JSON.stringify(request)), key);
}

/** POSTs to the secure path with the protocol headers (each overridable; `undefined` drops it). */
export async function post(baseUrl: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string | undefined> = {}): Promise<Response> {
  const { pem } = await clientKey();
  const all: Record<string, string | undefined> = {
    [HEADERS.contentType]: PACKAGE_CONTENT_TYPE,
    [HEADERS.payloadId]: crypto.randomUUID(),
    [HEADERS.publicKey]: encodeURIComponent(pem),
    ...headers,
  };
  const sent = Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
  return fetch(baseUrl + PATHS.secureCompletion, { method: 'POST', headers: sent, body });
}

/** Seals `request` to the server, posts it, and opens the answer with the client key. */
export async function secureCompletion(
  baseUrl: string,
  request: unknown,
  headers: Record<string, string | undefined> = {},
): Promise<{ res: Response; pkg: EncryptedPackage; completion: Record<string, any> }> {
  const serverPem = await (await fetch(baseUrl + PATHS.publicKey)).text();
  const pkg = await sealRequest(serverPem, request);
  const res = await post(baseUrl, JSON.stringify(pkg), headers);
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  const answer = (await res.json()) as EncryptedPackage;
  const { pair } = await clientKey();
  const plaintext = await openPackage(answer, pair.privateKey);
  return { res, pkg: answer, completion: JSON.parse(new TextDecoder().decode(plaintext)) as Record<string, any> };
}

export const CHAT = { model: 'test-model', messages: [{ role: 'user', content: 'hello there world' }] };
