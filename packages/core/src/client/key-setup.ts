/**
 * The client's key state from its options: where its pairs come from (memory or `keyDir`), how
 * they rotate, and the router key with its pinning and downgrade memory. Kept apart so the client
 * only composes. Nothing here makes a key pair: the holder makes one when a v1 request first asks.
 */
import { ClientKeyHolder } from '../keys/key-holder.js';
import { ClientKeySource } from '../keys/key-source.js';
import { describeFingerprint, ServerKeyPinning } from '../keys/pinning.js';
import { ProtocolMemory, type ProtocolOption } from '../keys/protocol-choice.js';
import type { SecureMemory } from '../memory/secure-memory.js';
import { parseServerKey, ServerKeyCache, type ServerKey } from '../keys/server-key.js';
import { APIUserAbortError } from '../errors.js';
import { HEADERS, PATHS } from '../protocol/constants.js';
import { exchange, type FetchFn } from '../transport/exchange.js';
import { withRetries } from '../transport/retry.js';
import { errorFromStatus } from '../transport/status.js';
import {
  checkKeyDir,
  checkKeyPassword,
  checkPositive,
  DEFAULT_KEY_ROTATION_MS,
  DEFAULT_SERVER_KEY_TTL_MS,
  env,
  type SecureCompletionClientOptions,
} from './options.js';

export interface KeyState {
  source: ClientKeySource;
  holder: ClientKeyHolder;
  serverKeys: ServerKeyCache;
  /** The router's key outside a request (which retries its fetch as one of its attempts), with a request's retries. */
  routerKey: () => Promise<ServerKey>;
}

interface Transport {
  routerUrl: string;
  protocol: ProtocolOption;
  keySize: number;
  timeout: number;
  maxRetries: number;
  fetch: FetchFn;
  /** `fetch` calls the runtime's own (no fetch option was given). */
  ownFetch: boolean;
  onWarning: (message: string) => void;
  /** The client's secure memory: a key file's password's bytes live there while it is used. */
  memory: () => Promise<SecureMemory>;
}

export function createKeyState(options: SecureCompletionClientOptions, t: Transport): KeyState {
  const keyDir = checkKeyDir(options.keyDir);
  // The password matters only where keys are written: a short NOMYO_KEY_PASSWORD must not break memory-only clients.
  const password = keyDir === undefined ? undefined : checkKeyPassword(options.keyPassword ?? env('NOMYO_KEY_PASSWORD'));
  const source = new ClientKeySource({ bits: t.keySize, multiPrime: options.multiPrimeKeys ?? true, keyDir, password, onWarning: t.onWarning, memory: t.memory });
  const holder = new ClientKeyHolder(() => source.initial(), {
    rotationInterval: checkPositive('keyRotationInterval', options.keyRotationInterval ?? DEFAULT_KEY_ROTATION_MS, true),
    prepare: () => source.prepare(),
    onError: (err) => t.onWarning(`key rotation failed, the current key stays in use: ${err instanceof Error ? err.message : String(err)}`),
  });
  const trustStore = source.trustStore();
  const pinning = new ServerKeyPinning(t.routerUrl, options.serverKeyFingerprint, trustStore);
  const protocols = new ProtocolMemory(t.routerUrl, t.protocol, trustStore);
  const ttl = checkPositive('serverKeyTtl', options.serverKeyTtl ?? DEFAULT_SERVER_KEY_TTL_MS);
  // Neither a pin nor a trust store: a changed key is followed (how router key rotation works), and said.
  const followsKeyChanges = options.serverKeyFingerprint === undefined && trustStore === undefined;
  let followed: string | undefined;
  // Every fetch (the first, a TTL refresh, a refresh after a 400) is checked before the key can be
  // used: the key itself, then (for that trusted key) a downgrade of the protocols it advertises.
  // Cancelled once its response is in (the client disposed): no check, and no trust store write, after it.
  const stillWanted = (signal: AbortSignal) => {
    if (signal.aborted) throw new APIUserAbortError('the router key fetch was cancelled');
  };
  const serverKeys = new ServerKeyCache(async (signal) => {
    const key = await fetchServerKey(t, signal);
    stillWanted(signal);
    await pinning.check(key);
    stillWanted(signal);
    await protocols.check(key);
    if (followsKeyChanges && followed !== undefined && followed !== key.fingerprint) t.onWarning(keyChanged(t.routerUrl, followed, key.fingerprint));
    followed = key.fingerprint;
    return key;
  }, ttl);
  return { source, holder, serverKeys, routerKey: () => withRetries(() => serverKeys.get(), t.maxRetries) };
}

/**
 * What a client without a pin or key directory says when it follows a new router key: a deliberate
 * rotation looks like this, and so does a TLS-terminating proxy that substitutes its own key.
 */
function keyChanged(origin: string, before: string, after: string): string {
  return (
    `the router ${origin} now presents key ${describeFingerprint(after)} instead of ${describeFingerprint(before)}; it is used from now on. ` +
    `If the router did not rotate its key, something on the way may have substituted its own: pin the router's key with ` +
    `serverKeyFingerprint, or keep a keyDir (trust on first use), and a changed key is refused instead`
  );
}

/**
 * GET the router's key, once: whoever waits for it retries it (a request as one of its attempts,
 * request-flow.ts; fetchServerPublicKey as a request), so that retries never nest.
 */
async function fetchServerKey(t: Transport, signal: AbortSignal): Promise<ServerKey> {
  const response = await exchange(t.fetch, t.routerUrl + PATHS.publicKey, { method: 'GET' }, { timeout: t.timeout, signal, ownFetch: t.ownFetch });
  if (response.status !== 200) throw errorFromStatus(response.status, response.text, response.headers);
  return parseServerKey(response.text, response.headers.get(HEADERS.protocol));
}
