/** Options, defaults and environment lookups shared by both clients. */
import { MAX_TIMER_MS } from '../env.js';
import { RSA_DEFAULT_BITS } from '../protocol/constants.js';
import { MIN_PASSWORD_LENGTH } from '../crypto/pkcs8-pbes2.js';
import { InvalidArgumentError } from '../errors.js';
import { optionKeys } from './option-keys.js';
import type { ProtocolOption } from '../keys/protocol-choice.js';
import type { SecureMemoryOption } from '../memory/select.js';
import type { FetchFn } from '../transport/exchange.js';

/** The options of {@link SecureCompletionClient}; {@link SecureChatCompletion} and {@link createSecureFetch} take them too. */
export interface SecureCompletionClientOptions {
  /** The router's origin. Default: `NOMYO_SERVER_URL`, else https://api.nomyo.ai:12434. */
  routerUrl?: string | undefined;
  /** Allow `http:` URLs (local testing only). A warning goes to `onWarning`. */
  allowHttp?: boolean | undefined;
  /** `true` (default): @nomyo/native when installed, else zeroing; `'require-native'`; `false`: off. */
  secureMemory?: SecureMemoryOption | undefined;
  /** RSA modulus of the client's key pair: 4096 (default), 3072 or 2048. */
  keySize?: number | undefined;
  /**
   * `true` (default): a 4096-bit pair that stays in memory is made of four 1024-bit primes (RFC 8017
   * multi-prime) where the runtime allows (Node.js), which opens every v1 answer faster (how much
   * depends on the OpenSSL of the runtime: docs/performance.md).
   * `false`: always standard two-prime keys (FIPS 186-5). Pairs written to `keyDir` are always two-prime.
   */
  multiPrimeKeys?: boolean | undefined;
  /**
   * Node.js only: keep the client's key pair in this directory (`private_key.pem` 0600,
   * `public_key.pem` 0644, directory 0700). The pair there is loaded, or generated and saved when
   * the directory holds none; rotated pairs are saved there too. A key that exists but cannot be
   * opened is an error, never replaced. Also holds `known_routers.json` (trust on first use of
   * router keys). Processes may share one: they write it one at a time, holding `nomyo.lock`
   * there. Without it, keys live in memory only.
   */
  keyDir?: string | undefined;
  /** Password of the private key file in `keyDir` (at least 8 characters). Default: `NOMYO_KEY_PASSWORD`; none: the file is not encrypted. */
  keyPassword?: string | undefined;
  /** Milliseconds before the client's key pair is replaced by a fresh one (prepared in the background). Default 24 h; 0 never rotates. */
  keyRotationInterval?: number | undefined;
  /**
   * Pins the router's key: the SHA-256 of its SPKI DER, as 64 hex digits or `sha256:` + base64
   * (what `nomyo keys fingerprint --url` prints). Any other key is refused before anything is sent.
   * A list pins each of its keys: a router's old and new key while it rotates (docs/deployment.md).
   */
  serverKeyFingerprint?: string | readonly string[] | undefined;
  /**
   * Milliseconds for one whole HTTP exchange, response body included; for a streamed answer, until
   * its header event. Default 120 000. A request that must first fetch the router's key waits as
   * long for it too, before its exchange begins.
   */
  timeout?: number | undefined;
  /**
   * A streamed answer from which nothing arrives for this many ms, not even a heartbeat, fails with
   * APIConnectionTimeoutError. Only the time a read waits counts: a caller that takes its time
   * between chunks finds what came meanwhile. Default 60 000.
   */
  streamIdleTimeout?: number | undefined;
  /**
   * Retries on 429, 503, connection failures (not a TLS certificate refused: the same on every try)
   * and timeouts. Default 2. A retry waits the router's `Retry-After` and up to a fifth more (one
   * over a minute is not waited: its error is thrown), else (none, or 0) backs off from 0.5 s,
   * doubling, with jitter.
   */
  maxRetries?: number | undefined;
  /** How long the router's key is trusted before it is fetched again, in ms. Default 1 h. */
  serverKeyTtl?: number | undefined;
  /**
   * A fetch implementation (default: the global one): a proxy agent's, or a test's. It is called
   * with the full URL and a `RequestInit` whose `redirect` is `'manual'` (`'error'` in Node.js for a
   * body of 64 KiB or more), which it must honour: a redirect must never move a request. It sees sealed
   * packages and the headers (the API key among them), never a plaintext. The timeouts and the
   * caller's abort hold even for one that drops `init.signal`: the call ends on time, and a
   * stream's body is cancelled.
   *
   * The body it gets is a `Uint8Array` copy of its own. The buffer a package is sealed in comes from
   * a pool and goes back, for another request's bytes, as soon as the exchange ends, while a fetch
   * may still read its body after that (node-fetch reads it as the socket takes it; a router may
   * answer before it has read all of it). A copy can be kept, read late or sent again without ever
   * carrying another request's bytes; it costs a large body one more copy than the runtime's own
   * fetch, which gets it as a stream of pieces copied as they are sent.
   */
  fetch?: FetchFn | undefined;
  /** Receives warnings; the library never writes to the console. */
  onWarning?: ((message: string) => void) | undefined;
  /**
   * The wire protocol version to send. `'auto'` (default): v2 when the router's key response
   * advertises it (`X-Nomyo-Protocol: 1, 2`), else v1. `2`: v2 only; a router that does not advertise
   * it is refused (SecurityError) before anything is sent: the downgrade-proof setting for routers you
   * know speak v2. `1`: always v1 (as routers deployed before v2 speak it). What v2 protects that v1
   * does not, and how a downgrade is refused: docs/protocol.md ("Overview", "Choosing the version on
   * the client"). Anything but `'auto'`, `1` or `2` is an InvalidArgumentError.
   * @example
   * new SecureChatCompletion({ baseUrl: 'https://llm.internal:12434', protocol: 2 });
   */
  protocol?: ProtocolOption | undefined;
}

/** `SecureCompletionClient.generateKeys` options. */
export interface GenerateKeysOptions {
  /** Node.js only: also write the pair to `keyDir` (never over an existing key). Default false. */
  saveToFile?: boolean | undefined;
  /** Where to save. Default `client_keys`. */
  keyDir?: string | undefined;
  /** Encrypt the saved private key (at least 8 characters). Default: the client's `keyPassword`. */
  password?: string | undefined;
  /** RSA modulus. Default: the client's `keySize`. */
  keySize?: number | undefined;
}

// Every key of the interfaces above, checked both ways by the compiler: an option added there must be listed here.
export const CLIENT_OPTION_KEYS = optionKeys<SecureCompletionClientOptions>()([
  'routerUrl',
  'allowHttp',
  'secureMemory',
  'keySize',
  'multiPrimeKeys',
  'keyDir',
  'keyPassword',
  'keyRotationInterval',
  'serverKeyFingerprint',
  'timeout',
  'streamIdleTimeout',
  'maxRetries',
  'serverKeyTtl',
  'fetch',
  'onWarning',
  'protocol',
]);
export const GENERATE_KEYS_OPTION_KEYS = optionKeys<GenerateKeysOptions>()(['saveToFile', 'keyDir', 'password', 'keySize']);

export const DEFAULT_ROUTER_URL = 'https://api.nomyo.ai:12434';
export const DEFAULT_TIMEOUT_MS = 120_000;
export { STREAM_IDLE_TIMEOUT_MS as DEFAULT_STREAM_IDLE_TIMEOUT_MS } from '../protocol/constants.js';
export const DEFAULT_MAX_RETRIES = 2;
export const DEFAULT_SERVER_KEY_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_KEY_SIZE = RSA_DEFAULT_BITS;
export const DEFAULT_KEY_ROTATION_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_KEY_DIR = 'client_keys';

export { env } from '../env.js';

export function checkProtocol(value: unknown): ProtocolOption {
  if (value !== 'auto' && value !== 1 && value !== 2) throw new InvalidArgumentError("protocol must be 'auto', 1 or 2");
  return value;
}

export function checkKeySize(bits: number): number {
  if (bits !== 2048 && bits !== 3072 && bits !== 4096) throw new InvalidArgumentError('keySize must be 2048, 3072 or 4096');
  return bits;
}

export function checkPositive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) throw new InvalidArgumentError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  return value;
}

/** A password for writing key files: at least 8 characters. Checked up front so a rotation cannot fail on it later. */
export function checkKeyPassword(password: string | undefined): string | undefined {
  if (password === undefined) return undefined;
  if (typeof password !== 'string' || [...password].length < MIN_PASSWORD_LENGTH) {
    throw new InvalidArgumentError(`the key password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  return password;
}

export function checkKeyDir(dir: string | undefined): string | undefined {
  if (dir !== undefined && (typeof dir !== 'string' || dir === '' || dir.includes('\0'))) throw new InvalidArgumentError('keyDir must be a non-empty path');
  return dir;
}

/** A timeout the runtime's timers can keep: at most MAX_TIMER_MS (a longer one would fire at once). */
export function checkTimeout(ms: number): number {
  checkPositive('timeout', ms);
  if (ms > MAX_TIMER_MS) throw new InvalidArgumentError(`timeout must be at most ${MAX_TIMER_MS} ms`);
  return ms;
}
