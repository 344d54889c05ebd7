/**
 * The low-level client: one encrypted request, one decrypted answer. Composes keys, protocol,
 * memory and transport; holds no crypto or wire details of its own.
 */
import type { ClientKeyHolder, ClientKeyPair } from '../keys/client-keys.js';
import type { ClientKeySource } from '../keys/key-source.js';
import type { ServerKey, ServerKeyCache } from '../keys/server-key.js';
import { chooseProtocol, type ProtocolOption } from '../keys/protocol-choice.js';
import { SecureByteContext } from '../memory/context.js';
import { selectSecureMemory, type SecureMemoryOption } from '../memory/select.js';
import type { SecureMemory, MemoryProtectionInfo } from '../memory/secure-memory.js';
import type { ChatCompletion, SecureMetadata } from '../protocol/completion.js';
import { parseCompletion, serializePayload } from './payload.js';
import {
  AES_KEY_BYTES,
  HEADERS,
  PACKAGE_ALGORITHM,
  PACKAGE_CONTENT_TYPE,
  PATHS,
  V2_ANSWER_ALGORITHM,
  type ProtocolVersion,
  type SecurityTier,
} from '../protocol/constants.js';
import { openPackage, parseJsonPackage, parsePackage, sealPackage, v1Opener, v1Sealing, type EncryptedPackage, type PackageOpener, type Sealing } from '../protocol/package.js';
import { openPackageBody, openPackageBodyInPlace, readPackageBody, type BodyText } from '../protocol/package-bytes.js';
import { answerOpenerV2, requestSealingV2 } from '../protocol/v2.js';
import { randomUUID, type Bytes } from '../crypto/subtle.js';
import { DisposedError, InvalidRequestError, type APIError } from '../errors.js';
import { exchangeBytes, followSignal, untilAborted, type BytesExchange, type Exchange, type FetchFn } from '../transport/http.js';
import { checkApiKey, checkPayloadId, checkSecurityTier, routerBaseUrl } from '../transport/policy.js';
import { withRetries } from '../transport/retry.js';
import { errorFromStatus } from '../transport/status.js';
import { createKeyState } from './key-setup.js';
import { answerBodyBuffers, sealRequest } from './request-body.js';
import { sealedError } from './sealed-error.js';
import { optionKeys, refuseUnknownOptions } from './option-keys.js';
import {
  checkKeyDir,
  checkKeyPassword,
  checkKeySize,
  checkPositive,
  checkProtocol,
  checkTimeout,
  CLIENT_OPTION_KEYS,
  DEFAULT_KEY_DIR,
  DEFAULT_KEY_SIZE,
  DEFAULT_MAX_RETRIES,
  DEFAULT_ROUTER_URL,
  DEFAULT_TIMEOUT_MS,
  env,
  GENERATE_KEYS_OPTION_KEYS,
  type GenerateKeysOptions,
  type SecureCompletionClientOptions,
} from './options.js';

export type { GenerateKeysOptions, SecureCompletionClientOptions } from './options.js';
export { serializePayload } from './payload.js';

export interface SendOptions {
  apiKey?: string | undefined;
  securityTier?: SecurityTier | undefined;
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeout for this call. */
  timeout?: number | undefined;
}
/** An answer body read as fetch's Response.text() reads it: bad UTF-8 becomes U+FFFD (the checks refuse it later). */
const ANSWER_TEXT: BodyText = { fatal: false, parse: parseJsonPackage };

const SEND_OPTION_KEYS = optionKeys<SendOptions>()(['apiKey', 'securityTier', 'signal', 'timeout']);

export type SecureChatCompletionResult = ChatCompletion & { _metadata: SecureMetadata };

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
  /** The `protocol` option: `'auto'`, `1` or `2` (see {@link SecureCompletionClientOptions.protocol}). */
  readonly protocol: ProtocolOption;
  readonly #fetch: FetchFn;
  /** No fetch option: requests go to the runtime's own fetch (see transport/http.ts, sendInit). */
  readonly #ownFetch: boolean;
  readonly #onWarning: (message: string) => void;
  readonly #memoryOption: SecureMemoryOption | undefined;
  #memory: Promise<SecureMemory> | undefined;
  readonly #keys: ClientKeyHolder;
  readonly #keySource: ClientKeySource;
  readonly #serverKeys: ServerKeyCache;
  #disposed = false;

  constructor(options: SecureCompletionClientOptions = {}) {
    refuseUnknownOptions(options, CLIENT_OPTION_KEYS, 'SecureCompletionClient options', { baseUrl: 'routerUrl' });
    const allowHttp = options.allowHttp ?? false;
    this.routerUrl = routerBaseUrl(options.routerUrl ?? env('NOMYO_SERVER_URL') ?? DEFAULT_ROUTER_URL, allowHttp);
    this.timeout = checkTimeout(options.timeout ?? DEFAULT_TIMEOUT_MS);
    this.maxRetries = checkPositive('maxRetries', options.maxRetries ?? DEFAULT_MAX_RETRIES, true);
    this.keySize = checkKeySize(options.keySize ?? DEFAULT_KEY_SIZE);
    this.protocol = options.protocol === undefined ? 'auto' : checkProtocol(options.protocol);
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#ownFetch = options.fetch === undefined;
    this.#onWarning = options.onWarning ?? (() => {});
    this.#memoryOption = options.secureMemory;
    const keys = createKeyState(options, {
      routerUrl: this.routerUrl,
      protocol: this.protocol,
      keySize: this.keySize,
      timeout: this.timeout,
      maxRetries: this.maxRetries,
      fetch: this.#fetch,
      onWarning: this.#onWarning,
    });
    this.#keySource = keys.source;
    this.#keys = keys.holder;
    this.#serverKeys = keys.serverKeys;
    if (this.routerUrl.startsWith('http:')) {
      this.#onWarning(`allowHttp: requests to ${this.routerUrl} travel over plain HTTP; the API key and headers are readable on the network`);
    }
  }

  /** The memory protection in use (resolved at first use: the addon is looked for then). */
  async memoryProtection(): Promise<MemoryProtectionInfo> {
    return (await this.#secureMemory()).info();
  }

  /**
   * The router's public key, fetched and validated (SPKI PEM, RSA >= 2048 bits, pinning, no protocol
   * downgrade), then cached. `protocols` lists the versions its answer advertised.
   */
  async fetchServerPublicKey(): Promise<ServerKey> {
    this.#assertUsable();
    return this.#serverKeys.get();
  }

  /**
   * The client's key pair, generated on first use (one pair, however many concurrent callers). Only
   * v1 uses it: v2 requests never ask for one, so calling this is what makes one for a v2 client.
   */
  async keyPair(): Promise<ClientKeyPair> {
    this.#assertUsable();
    return this.#keys.current();
  }

  /**
   * Makes a new key pair and uses it from the next request on (requests in flight finish with theirs).
   * With `saveToFile` (Node.js) it is written to `keyDir` first, and later rotations are saved there.
   * @example
   * const pair = await client.generateKeys({ saveToFile: true, keyDir: 'client_keys', password: process.env.KEY_PASSWORD });
   * console.log(pair.fingerprint);
   */
  async generateKeys(options: GenerateKeysOptions = {}): Promise<ClientKeyPair> {
    this.#assertUsable();
    refuseUnknownOptions(options, GENERATE_KEYS_OPTION_KEYS, 'generateKeys options');
    const bits = checkKeySize(options.keySize ?? this.keySize);
    const saveDir = options.saveToFile ? checkKeyDir(options.keyDir ?? DEFAULT_KEY_DIR) : undefined;
    const password = saveDir === undefined ? undefined : checkKeyPassword(options.password ?? this.#keySource.password);
    const pair = await this.#keySource.generate(bits, saveDir, password);
    await this.#keys.replace(pair);
    return pair;
  }

  /**
   * Node.js only: uses the pair in these PEM files from the next request on. The public key is
   * derived from the private key when no path is given; a given one must match. The files are
   * never written: later rotations of a loaded pair stay in memory (`keyRotationInterval: 0` keeps it).
   * @throws KeyPasswordError for a wrong or missing password; KeyFileError for a missing, corrupt,
   * non-RSA or under-2048-bit key, or a public key that does not match.
   * @example
   * await client.loadKeys('client_keys/private_key.pem', undefined, process.env.NOMYO_KEY_PASSWORD);
   */
  async loadKeys(privateKeyPath: string, publicKeyPath?: string, password?: string): Promise<ClientKeyPair> {
    this.#assertUsable();
    const pair = await this.#keySource.load(privateKeyPath, publicKeyPath, password ?? this.#keySource.password ?? env('NOMYO_KEY_PASSWORD'));
    await this.#keys.replace(pair);
    return pair;
  }

  /** Serializes and seals `payload` to the router's key as a v1 package. Returns the package object. */
  async encryptPayload(payload: object): Promise<EncryptedPackage> {
    this.#assertUsable();
    const serverKey = await this.#serverKeys.get();
    const ctx = new SecureByteContext(await this.#secureMemory());
    return ctx.use(serializePayload(payload, ctx), (bytes) => sealPackage(bytes as Bytes, serverKey.key));
  }

  /** Opens a v1 response package (a parsed object or its JSON text) into a checked chat completion. */
  async decryptResponse(body: unknown, payloadId: string, keys?: ClientKeyPair): Promise<SecureChatCompletionResult> {
    this.#assertUsable();
    const pkg = typeof body === 'string' ? parsePackage(body) : body;
    const pair = keys ?? (await this.#keys.current());
    return this.#completion(await openPackage(pkg, pair.privateKey), pkg, payloadId, 1);
  }

  /**
   * Seals `payload`, posts it, and opens the answer. Retries 429, 503 and connection failures
   * (a fresh package each time); on a 400 refetches the router's key once and, if it changed, retries.
   */
  async sendSecureRequest(payload: object, payloadId: string = randomUUID(), options: SendOptions = {}): Promise<SecureChatCompletionResult> {
    this.#assertUsable();
    checkPayloadId(payloadId);
    refuseUnknownOptions(options, SEND_OPTION_KEYS, 'sendSecureRequest options');
    checkApiKey(options.apiKey);
    const tier = checkSecurityTier(options.securityTier);
    const timeout = checkTimeout(options.timeout ?? this.timeout);
    const ctx = new SecureByteContext(await this.#secureMemory());
    // Serialized here, so a payload that is not an object or too large is refused before anything is
    // sent; zeroed as soon as it is sealed, so no plaintext copy waits out the round trip. A retry
    // (a fresh package) serializes the payload again.
    let first: Uint8Array | undefined = serializePayload(payload, ctx, true);
    const plaintext = (): Uint8Array => {
      const bytes = first ?? serializePayload(payload, ctx, true);
      first = undefined;
      return bytes;
    };
    const link = followSignal(options.signal);
    const signal = link.signal;
    try {
      const post = () => this.#post(plaintext, payloadId, { ...options, signal, securityTier: tier, timeout });
      let keyRefreshed = false;
      return await withRetries(async () => {
        try {
          return await post();
        } catch (err) {
          // The router could not open the package: its key may have changed. Fetch it once, and
          // send again only if it really is another key.
          if (!(err instanceof InvalidRequestError) || keyRefreshed) throw err;
          keyRefreshed = true;
          const before = this.#serverKeys.peek()?.fingerprint;
          const after = await untilAborted(this.#serverKeys.refresh(), signal);
          if (after.fingerprint === before) throw err;
          return post();
        }
      }, this.maxRetries, signal);
    } finally {
      if (first) ctx.release(first);
      link.release();
    }
  }

  /**
   * Cancels the rotation timer, drops every key and the key password; later calls fail with
   * DisposedError, a second call is harmless. CryptoKeys live inside Web Crypto and cannot be zeroed,
   * only dropped; the key bytes the library handles itself (PKCS#8 DER of key files) are zeroed as it goes.
   * @example
   * await using client = new SecureCompletionClient({ keyDir: 'client_keys' });
   */
  async dispose(): Promise<void> {
    this.#disposed = true;
    const keys = this.#keys.dispose();
    const source = this.#keySource.dispose();
    this.#serverKeys.clear();
    // Resolves once a rotation or key write already running has settled: no key file changes after it.
    await Promise.all([keys, source]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /**
   * One attempt: the router's key (and with it the version to send), a fresh package, the POST, the
   * answer opened. The client key pair is asked for only when v1 is sent: v2 never makes one.
   */
  async #post(plaintext: () => Uint8Array, payloadId: string, options: SendOptions & { timeout: number }): Promise<SecureChatCompletionResult> {
    // Shared by concurrent callers, so one caller's abort stops its wait, not the shared work.
    // `protocol: 1` knows it needs the pair before the key answer: both are made side by side.
    const pair = this.protocol === 1 ? this.#keys.current() : undefined;
    const [serverKey, early] = await untilAborted(Promise.all([this.#serverKeys.get(), pair]), options.signal);
    const version = chooseProtocol(this.protocol, serverKey, this.routerUrl);
    const headers: Record<string, string> = { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, [HEADERS.payloadId]: payloadId };
    if (options.apiKey) headers[HEADERS.authorization] = `Bearer ${options.apiKey}`;
    if (options.securityTier) headers[HEADERS.securityTier] = options.securityTier;
    if (version === 2) return this.#postV2(plaintext, payloadId, serverKey, headers, options);
    const keys = early ?? (await untilAborted(this.#keys.current(), options.signal));
    headers[HEADERS.publicKey] = keys.publicKeyHeader;
    const answer = await this.#roundTrip(await v1Sealing(serverKey.key), plaintext, headers, options, v1Opener(keys.privateKey));
    return this.#completion(answer.plaintext, answer.pkg, payloadId, 1);
  }

  /**
   * v2: a fresh `K` in secure memory seals the request bound to its payload id and tier (exactly the
   * headers sent), and is zeroed as soon as it is wrapped and its keys imported. Only the answer key
   * derived from it outlives that, and only until this request's answer is opened.
   */
  async #postV2(
    plaintext: () => Uint8Array,
    payloadId: string,
    serverKey: ServerKey,
    headers: Record<string, string>,
    options: SendOptions & { timeout: number },
  ): Promise<SecureChatCompletionResult> {
    const ctx = new SecureByteContext(await this.#secureMemory());
    const binding = { payloadId, tier: options.securityTier };
    const { sealing, answerKey } = await ctx.use(ctx.randomBytes(AES_KEY_BYTES), (k) => requestSealingV2(k as Bytes, serverKey.key, binding));
    const opener = answerOpenerV2(answerKey, payloadId);
    const answer = await this.#roundTrip(sealing, plaintext, headers, options, opener, (error) => sealedError(error, answerKey, payloadId));
    return this.#completion(answer.plaintext, answer.pkg, payloadId, 2);
  }

  /**
   * Seals `plaintext()` (then zeroes it) straight into a request body, posts it, and opens a 200 answer from its bytes
   * with `opener`: no JSON text of either body, no base64 string of either ciphertext. Large bodies
   * are sealed and opened in place, in secure memory, small ones go through the wire buffers
   * (request-body.ts). A non-200 answer is an APIError: `openError`'s (v2: the error sealed for this
   * request), else the one its status and `detail` say.
   */
  async #roundTrip(
    sealing: Sealing,
    plaintext: () => Uint8Array,
    headers: Record<string, string>,
    options: SendOptions & { timeout: number },
    opener: PackageOpener,
    openError?: (answer: Exchange) => Promise<APIError | undefined>,
  ): Promise<{ pkg: unknown; plaintext: Uint8Array }> {
    const ctx = new SecureByteContext(await this.#secureMemory());
    const request = await sealRequest(ctx, sealing, plaintext());
    let sent = false;
    const release = () => {
      if (!sent) request.free();
      sent = true;
    };
    const answerBuffers = answerBodyBuffers(ctx);
    let answer: BytesExchange;
    try {
      const init = { method: 'POST', headers, body: request.body as Bytes };
      answer = await exchangeBytes(this.#fetch, this.routerUrl + PATHS.secureCompletion, init, { ...options, buffers: answerBuffers, onSent: release, ownFetch: this.#ownFetch });
    } finally {
      release();
    }
    if (answer.status !== 200 || !answer.bytes) throw (await openError?.(answer)) ?? errorFromStatus(answer.status, answer.body, answer.headers);
    const { buffer, length } = answer.bytes;
    let owned = true;
    try {
      const body = buffer.subarray(0, length);
      const read = readPackageBody(body, ANSWER_TEXT);
      const opened = answerBuffers.secure(buffer) ? await openPackageBodyInPlace(body, read, opener) : undefined;
      if (opened) {
        // Opened in the answer's own (secure) buffer, at its start: releasing the plaintext releases that.
        owned = false;
        return { pkg: read.pkg, plaintext: ctx.head(buffer as Uint8Array<ArrayBuffer>, opened.plaintext.length) };
      }
      const buffers = { alloc: (size: number) => ctx.alloc(size), free: (bytes: Uint8Array) => ctx.release(bytes) };
      return { pkg: read.pkg, plaintext: (await openPackageBody(body, read, opener, buffers)).plaintext };
    } finally {
      if (owned) answerBuffers.free(buffer);
    }
  }

  /** The decrypted answer as a checked completion with its `_metadata`; the plaintext bytes are zeroed. */
  async #completion(plaintext: Uint8Array, pkg: unknown, payloadId: string, protocol: ProtocolVersion): Promise<SecureChatCompletionResult> {
    const memory = await this.#secureMemory();
    const completion = await new SecureByteContext(memory).use(plaintext, (bytes) => parseCompletion(bytes));
    const processedAt = (pkg as { processed_at?: unknown }).processed_at;
    completion._metadata = {
      payload_id: payloadId,
      processed_at: typeof processedAt === 'number' ? processedAt : undefined,
      is_encrypted: true,
      encryption_algorithm: protocol === 2 ? V2_ANSWER_ALGORITHM : PACKAGE_ALGORITHM,
      protocol,
    };
    return completion as SecureChatCompletionResult;
  }

  #secureMemory(): Promise<SecureMemory> {
    this.#memory ??= selectSecureMemory(this.#memoryOption);
    return this.#memory;
  }

  #assertUsable(): void {
    if (this.#disposed) throw new DisposedError('this client was disposed; create a new one');
  }
}
