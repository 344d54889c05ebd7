/**
 * The low-level client: one encrypted request, one decrypted answer. Composes keys, protocol,
 * memory and transport; holds no crypto or wire details of its own.
 */
import { generateClientKeyPair, ClientKeyHolder, type ClientKeyPair } from '../keys/client-keys.js';
import { parseServerKey, ServerKeyCache, type ServerKey } from '../keys/server-key.js';
import { SecureByteContext } from '../memory/context.js';
import { selectSecureMemory, type SecureMemoryOption } from '../memory/select.js';
import type { SecureMemory, MemoryProtectionInfo } from '../memory/secure-memory.js';
import { checkChatCompletion, type ChatCompletion, type SecureMetadata } from '../protocol/completion.js';
import {
  HEADERS,
  MAX_REQUEST_PLAINTEXT_BYTES,
  PACKAGE_ALGORITHM,
  PACKAGE_CONTENT_TYPE,
  PATHS,
  type SecurityTier,
} from '../protocol/constants.js';
import { openPackage, parsePackage, sealPackage, serializePackage, type EncryptedPackage } from '../protocol/package.js';
import { randomUUID, type Bytes } from '../crypto/subtle.js';
import { APIUserAbortError, DisposedError, InvalidArgumentError, InvalidRequestError, SecurityError } from '../errors.js';
import { exchange, type FetchFn } from '../transport/http.js';
import { checkApiKey, checkSecurityTier, routerBaseUrl } from '../transport/policy.js';
import { isRetryable, retryDelayMs, sleep } from '../transport/retry.js';
import { errorFromStatus } from '../transport/status.js';
import {
  checkKeySize,
  checkPositive,
  DEFAULT_KEY_SIZE,
  DEFAULT_MAX_RETRIES,
  DEFAULT_ROUTER_URL,
  DEFAULT_SERVER_KEY_TTL_MS,
  DEFAULT_TIMEOUT_MS,
  env,
} from './options.js';

export interface SecureCompletionClientOptions {
  /** The router's origin. Default: `NOMYO_SERVER_URL`, else https://api.nomyo.ai:12434. */
  routerUrl?: string;
  /** Allow `http:` URLs (local testing only). A warning goes to `onWarning`. */
  allowHttp?: boolean;
  /** `true` (default): @nomyo/native when installed, else zeroing; `'require-native'`; `false`: off. */
  secureMemory?: SecureMemoryOption;
  /** RSA modulus of the client's key pair: 4096 (default) or 2048. */
  keySize?: number;
  /** Milliseconds for one whole HTTP exchange, answer body included. Default 120 000. */
  timeout?: number;
  /** Retries on 429, 503 and connection failures. Default 2. */
  maxRetries?: number;
  /** How long the router's key is trusted before it is fetched again, in ms. Default 1 h. */
  serverKeyTtl?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: FetchFn;
  /** Receives warnings; the library never writes to the console. */
  onWarning?: (message: string) => void;
}

export interface SendOptions {
  apiKey?: string | undefined;
  securityTier?: SecurityTier | undefined;
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeout for this call. */
  timeout?: number | undefined;
}

export type SecureChatCompletionResult = ChatCompletion & { _metadata: SecureMetadata };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Sends OpenAI-compatible payloads to a NOMYO router, sealed end to end.
 *
 * @example
 * const client = new SecureCompletionClient({ routerUrl: 'https://router.example:12434' });
 * const answer = await client.sendSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, crypto.randomUUID());
 */
export class SecureCompletionClient {
  readonly routerUrl: string;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly keySize: number;
  readonly #fetch: FetchFn;
  readonly #onWarning: (message: string) => void;
  readonly #memoryOption: SecureMemoryOption | undefined;
  #memory: Promise<SecureMemory> | undefined;
  readonly #keys: ClientKeyHolder;
  readonly #serverKeys: ServerKeyCache;
  #disposed = false;

  constructor(options: SecureCompletionClientOptions = {}) {
    const allowHttp = options.allowHttp ?? false;
    this.routerUrl = routerBaseUrl(options.routerUrl ?? env('NOMYO_SERVER_URL') ?? DEFAULT_ROUTER_URL, allowHttp);
    this.timeout = checkPositive('timeout', options.timeout ?? DEFAULT_TIMEOUT_MS);
    this.maxRetries = checkPositive('maxRetries', options.maxRetries ?? DEFAULT_MAX_RETRIES, true);
    this.keySize = checkKeySize(options.keySize ?? DEFAULT_KEY_SIZE);
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#onWarning = options.onWarning ?? (() => {});
    this.#memoryOption = options.secureMemory;
    this.#keys = new ClientKeyHolder(() => generateClientKeyPair(this.keySize));
    const ttl = checkPositive('serverKeyTtl', options.serverKeyTtl ?? DEFAULT_SERVER_KEY_TTL_MS);
    this.#serverKeys = new ServerKeyCache(() => this.#fetchServerKey(), ttl);
    if (this.routerUrl.startsWith('http:')) {
      this.#onWarning(`allowHttp: requests to ${this.routerUrl} travel over plain HTTP; the API key and headers are readable on the network`);
    }
  }

  /** The memory protection in use (resolved at first use: the addon is looked for then). */
  async memoryProtection(): Promise<MemoryProtectionInfo> {
    return (await this.#secureMemory()).info();
  }

  /** The router's public key, fetched and validated (SPKI PEM, RSA >= 2048 bits), then cached. */
  async fetchServerPublicKey(): Promise<ServerKey> {
    this.#assertUsable();
    return this.#serverKeys.get();
  }

  /** The client's key pair, generated on first use (one pair, however many concurrent callers). */
  async keyPair(): Promise<ClientKeyPair> {
    this.#assertUsable();
    return this.#keys.current();
  }

  /** Serializes and seals `payload` to the router's key. Returns the package object. */
  async encryptPayload(payload: object): Promise<EncryptedPackage> {
    this.#assertUsable();
    const serverKey = await this.#serverKeys.get();
    const memory = await this.#secureMemory();
    return new SecureByteContext(memory).use(serializePayload(payload), (bytes) => sealPackage(bytes as Bytes, serverKey.key));
  }

  /** Opens a response package (a parsed object or its JSON text) into a checked chat completion. */
  async decryptResponse(body: unknown, payloadId: string, keys?: ClientKeyPair): Promise<SecureChatCompletionResult> {
    this.#assertUsable();
    const pkg = typeof body === 'string' ? parsePackage(body) : body;
    const pair = keys ?? (await this.#keys.current());
    const memory = await this.#secureMemory();
    const plaintext = await openPackage(pkg, pair.privateKey);
    const completion = await new SecureByteContext(memory).use(plaintext, (bytes) => parseCompletion(bytes));
    const processedAt = (pkg as { processed_at?: unknown }).processed_at;
    completion._metadata = {
      payload_id: payloadId,
      processed_at: typeof processedAt === 'number' ? processedAt : undefined,
      is_encrypted: true,
      encryption_algorithm: PACKAGE_ALGORITHM,
    };
    return completion as SecureChatCompletionResult;
  }

  /**
   * Seals `payload`, posts it, and opens the answer. Retries 429, 503 and connection failures
   * (a fresh package each time); on a 400 refetches the router's key once and, if it changed, retries.
   */
  async sendSecureRequest(payload: object, payloadId: string = randomUUID(), options: SendOptions = {}): Promise<SecureChatCompletionResult> {
    this.#assertUsable();
    checkApiKey(options.apiKey);
    const tier = checkSecurityTier(options.securityTier);
    const timeout = checkPositive('timeout', options.timeout ?? this.timeout);
    const memory = await this.#secureMemory();
    const plaintext = serializePayload(payload);
    return new SecureByteContext(memory).use(plaintext, async (bytes) => {
      let keyRefreshed = false;
      for (let attempt = 0; ; ) {
        try {
          return await this.#post(bytes as Bytes, payloadId, { ...options, securityTier: tier, timeout });
        } catch (err) {
          if (err instanceof InvalidRequestError && !keyRefreshed) {
            keyRefreshed = true;
            const before = this.#serverKeys.peek()?.fingerprint;
            const after = await this.#serverKeys.refresh();
            if (after.fingerprint !== before) continue;
            throw err;
          }
          attempt++;
          const delay = attempt <= this.maxRetries && isRetryable(err) ? retryDelayMs(attempt, err) : undefined;
          if (delay === undefined) throw err;
          await sleep(delay, options.signal).catch((reason: unknown) => {
            throw new APIUserAbortError('request aborted by the caller', { cause: reason });
          });
        }
      }
    });
  }

  /** Drops keys and cached state; later calls fail with DisposedError. A second call is harmless. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    this.#keys.dispose();
    this.#serverKeys.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #post(plaintext: Bytes, payloadId: string, options: SendOptions & { timeout: number }): Promise<SecureChatCompletionResult> {
    const [serverKey, keys] = await Promise.all([this.#serverKeys.get(), this.#keys.current()]);
    const headers: Record<string, string> = {
      [HEADERS.contentType]: PACKAGE_CONTENT_TYPE,
      [HEADERS.payloadId]: payloadId,
      [HEADERS.publicKey]: keys.publicKeyHeader,
    };
    if (options.apiKey) headers[HEADERS.authorization] = `Bearer ${options.apiKey}`;
    if (options.securityTier) headers[HEADERS.securityTier] = options.securityTier;
    // The body is ciphertext: it goes to fetch as a string, which fetch encodes once. (Bytes would
    // cost one more copy of the whole package inside fetch, and zeroing ciphertext protects nothing.)
    const body = serializePackage(await sealPackage(plaintext, serverKey.key));
    const answer = await exchange(this.#fetch, this.routerUrl + PATHS.secureCompletion, { method: 'POST', headers, body }, options);
    if (answer.status !== 200) throw errorFromStatus(answer.status, answer.body, answer.headers);
    return this.decryptResponse(answer.body, payloadId, keys);
  }

  async #fetchServerKey(): Promise<ServerKey> {
    for (let attempt = 0; ; ) {
      try {
        const answer = await exchange(this.#fetch, this.routerUrl + PATHS.publicKey, { method: 'GET' }, { timeout: this.timeout });
        if (answer.status !== 200) throw errorFromStatus(answer.status, answer.body, answer.headers);
        return await parseServerKey(answer.body);
      } catch (err) {
        attempt++;
        const delay = attempt <= this.maxRetries && isRetryable(err) ? retryDelayMs(attempt, err) : undefined;
        if (delay === undefined) throw err;
        await sleep(delay);
      }
    }
  }

  #secureMemory(): Promise<SecureMemory> {
    this.#memory ??= selectSecureMemory(this.#memoryOption);
    return this.#memory;
  }

  #assertUsable(): void {
    if (this.#disposed) throw new DisposedError('this client was disposed; create a new one');
  }
}

/** The payload's UTF-8 JSON, refused above the protocol's limit before anything is encrypted. */
export function serializePayload(payload: object): Uint8Array<ArrayBuffer> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new InvalidArgumentError('payload must be a JSON object');
  const json = JSON.stringify(payload);
  // A UTF-8 byte count is at least the UTF-16 length: refuse early without encoding huge strings.
  if (json.length > MAX_REQUEST_PLAINTEXT_BYTES) throw payloadTooLarge();
  const bytes = encoder.encode(json);
  if (bytes.length > MAX_REQUEST_PLAINTEXT_BYTES) {
    bytes.fill(0);
    throw payloadTooLarge();
  }
  return bytes;
}

function payloadTooLarge(): InvalidArgumentError {
  return new InvalidArgumentError(`the serialized request exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
}

function parseCompletion(bytes: Uint8Array): ChatCompletion & { _metadata?: SecureMetadata } {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new SecurityError('the decrypted answer is not UTF-8 JSON');
  }
  return checkChatCompletion(value);
}
