/**
 * The low-level client: one encrypted request, one decrypted answer. Composes keys, protocol,
 * memory and transport; holds no crypto or wire details of its own.
 */
import type { ClientKeyPair } from '../keys/client-keys.js';
import type { ClientKeyHolder } from '../keys/key-holder.js';
import type { ClientKeySource } from '../keys/key-source.js';
import type { ServerKey, ServerKeyCache } from '../keys/server-key.js';
import type { ProtocolOption } from '../keys/protocol-choice.js';
import { SecureByteContext, unlockedWarning } from '../memory/context.js';
import { selectSecureMemory, type SecureMemoryOption } from '../memory/select.js';
import type { SecureMemory, MemoryProtectionInfo } from '../memory/secure-memory.js';
import type { ChatCompletion, SecureMetadata } from '../protocol/completion.js';
import type { ProtocolVersion } from '../protocol/constants.js';
import type { OpenedBody } from '../protocol/body/open.js';
import { openPackage, parsePackage, sealPackage, type EncryptedPackage } from '../protocol/package.js';
import { randomUUID, type Bytes } from '../crypto/subtle.js';
import { Disposal } from './disposal.js';
import type { FetchFn } from '../transport/exchange.js';
import { routerBaseUrl } from '../transport/policy.js';
import type { ChatCompletionStream } from './chat-stream.js';
import { createKeyState } from './key-setup.js';
import { completionMetadata, parseCompletion, serializePayload } from './payload.js';
import { Call, protect, withRetriesAndKeyRefresh, type SendOptions } from './request-flow.js';
import { roundTrip, type Wire } from './round-trip.js';
import { streamAttempt, streamEnd, type StreamContext } from './stream-request.js';
import { optionKeys, refuseUnknownOptions } from './option-keys.js';
import { NextRequestKeys } from './request-keys.js';
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
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  env,
  GENERATE_KEYS_OPTION_KEYS,
  type GenerateKeysOptions,
  type SecureCompletionClientOptions,
} from './options.js';

export type { GenerateKeysOptions, SecureCompletionClientOptions } from './options.js';
export { serializePayload } from './payload.js';

export type { SendOptions } from './request-flow.js';
const SEND_OPTION_KEYS = optionKeys<SendOptions>()(['apiKey', 'securityTier', 'signal', 'timeout']);

/** A checked chat.completion, with what protected it. */
export type SecureChatCompletionResult = ChatCompletion & {
  /** Added by the client after opening and checking the answer; not sent by the router. */
  _metadata: SecureMetadata;
};

/**
 * Sends OpenAI-compatible payloads to a NOMYO router, sealed end to end.
 *
 * @example
 * const client = new SecureCompletionClient({ routerUrl: 'https://router.example:12434' });
 * const answer = await client.sendSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, crypto.randomUUID());
 */
export class SecureCompletionClient {
  /** The router's origin, checked (https, or http with `allowHttp`), without a trailing slash. */
  readonly routerUrl: string;
  /** Milliseconds for one whole exchange (see {@link SecureCompletionClientOptions.timeout}). */
  readonly timeout: number;
  /** Retries of 429, 503, connection failures and timeouts. */
  readonly maxRetries: number;
  /** RSA modulus of the v1 client key pair. */
  readonly keySize: number;
  /** Milliseconds of silence after which a streamed answer fails (see {@link SecureCompletionClientOptions.streamIdleTimeout}). */
  readonly streamIdleTimeout: number;
  /** The `protocol` option: `'auto'`, `1` or `2` (see {@link SecureCompletionClientOptions.protocol}). */
  readonly protocol: ProtocolOption;
  readonly #wire: Wire;
  readonly #onWarning: (message: string) => void;
  readonly #memoryOption: SecureMemoryOption | undefined;
  #memory: Promise<SecureMemory> | undefined;
  readonly #keys: ClientKeyHolder;
  readonly #keySource: ClientKeySource;
  readonly #serverKeys: ServerKeyCache;
  readonly #routerKey: () => Promise<ServerKey>;
  readonly #requestKeys = new NextRequestKeys();
  readonly #disposal = new Disposal();

  /** Checks every option (an unknown one is an InvalidArgumentError); makes no key and sends nothing yet. */
  constructor(options: SecureCompletionClientOptions = {}) {
    refuseUnknownOptions(options, CLIENT_OPTION_KEYS, 'SecureCompletionClient options', { baseUrl: 'routerUrl' });
    const allowHttp = options.allowHttp ?? false;
    this.routerUrl = routerBaseUrl(options.routerUrl ?? env('NOMYO_SERVER_URL') ?? DEFAULT_ROUTER_URL, allowHttp);
    this.timeout = checkTimeout(options.timeout ?? DEFAULT_TIMEOUT_MS);
    this.streamIdleTimeout = checkTimeout(options.streamIdleTimeout ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS);
    this.maxRetries = checkPositive('maxRetries', options.maxRetries ?? DEFAULT_MAX_RETRIES, true);
    this.keySize = checkKeySize(options.keySize ?? DEFAULT_KEY_SIZE);
    this.protocol = options.protocol === undefined ? 'auto' : checkProtocol(options.protocol);
    const fetch: FetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#wire = { fetch, routerUrl: this.routerUrl, ownFetch: options.fetch === undefined };
    this.#onWarning = options.onWarning ?? (() => {});
    this.#memoryOption = options.secureMemory;
    const { routerUrl, protocol, keySize, timeout, maxRetries } = this;
    const keys = createKeyState(options, { routerUrl, protocol, keySize, timeout, maxRetries, fetch, ownFetch: this.#wire.ownFetch, onWarning: this.#onWarning, memory: () => this.#secureMemory() });
    this.#keySource = keys.source;
    this.#keys = keys.holder;
    this.#serverKeys = keys.serverKeys;
    this.#routerKey = keys.routerKey;
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
    this.#disposal.assertUsable();
    return this.#routerKey();
  }

  /**
   * The client's key pair, generated on first use (one pair, however many concurrent callers). Only
   * v1 uses it: v2 requests never ask for one, so calling this is what makes one for a v2 client.
   */
  async keyPair(): Promise<ClientKeyPair> {
    this.#disposal.assertUsable();
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
    this.#disposal.assertUsable();
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
    this.#disposal.assertUsable();
    const pair = await this.#keySource.load(privateKeyPath, publicKeyPath, password ?? this.#keySource.password ?? env('NOMYO_KEY_PASSWORD'));
    await this.#keys.replace(pair);
    return pair;
  }

  /** Serializes and seals `payload` to the router's key as a v1 package. Returns the package object. */
  async encryptPayload(payload: object): Promise<EncryptedPackage> {
    this.#disposal.assertUsable();
    const serverKey = await this.#routerKey();
    const secure = await this.#secureBytes();
    return secure.use(serializePayload(payload, secure), (bytes) => sealPackage(bytes as Bytes, serverKey.key));
  }

  /** Opens a v1 response package (a parsed object or its JSON text) into a checked chat completion. */
  async decryptResponse(body: unknown, payloadId: string, keys?: ClientKeyPair): Promise<SecureChatCompletionResult> {
    this.#disposal.assertUsable();
    const pkg = typeof body === 'string' ? parsePackage(body) : body;
    const pair = keys ?? (await this.#keys.current());
    const secure = await this.#secureBytes();
    return this.#completion({ pkg, plaintext: secure.adopt(await openPackage(pkg, pair.privateKey)) }, payloadId, 1);
  }

  /**
   * Seals `payload`, posts it, and opens the answer. Retries 429, 503, connection failures and timeouts
   * (a fresh package each time); on a 400 refetches the router's key once and, if it changed, retries.
   */
  async sendSecureRequest(payload: object, payloadId: string = randomUUID(), options: SendOptions = {}): Promise<SecureChatCompletionResult> {
    this.#disposal.assertUsable();
    refuseUnknownOptions(options, SEND_OPTION_KEYS, 'sendSecureRequest options');
    const call = new Call(payload, payloadId, options, await this.#secureBytes(), this.timeout);
    try {
      return await withRetriesAndKeyRefresh(this.#context(), call, async () => {
        const protection = await protect(this.#context(), call);
        const exchange = { timeout: call.timeout, signal: call.signal };
        const { opened } = await roundTrip(this.#wire, protection, call.plaintext(), call.headers(), exchange, call.secure);
        return this.#completion(opened!, payloadId, protection.version);
      });
    } finally {
      call.release();
      this.#requestKeys.refill();
    }
  }

  /**
   * Seals `payload` with `stream: true`, posts it, and resolves once the answer has started: a
   * stream of its chunks, as the router seals them (v2), or made from a whole answer (`streamed:
   * false`: a v1 router, or one that does not stream). Retried as {@link sendSecureRequest} is until
   * then, never after. `timeout` counts until the stream's header event; then `streamIdleTimeout`.
   * @example
   * const stream = await client.streamSecureRequest({ model: 'm', messages, stream_options: { include_usage: true } });
   * for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
   */
  async streamSecureRequest(payload: object, payloadId: string = randomUUID(), options: SendOptions = {}): Promise<ChatCompletionStream> {
    this.#disposal.assertUsable();
    refuseUnknownOptions(options, SEND_OPTION_KEYS, 'streamSecureRequest options');
    const controller = new AbortController();
    const call = new Call({ ...payload, stream: true }, payloadId, options, await this.#secureBytes(), this.timeout, controller.signal);
    const done = streamEnd(call, () => this.#requestKeys.refill());
    try {
      // The call (its link to the caller's signal) lives as long as the stream does.
      return await withRetriesAndKeyRefresh(this.#context(), call, () => streamAttempt(this.#context(), call, controller, done));
    } catch (err) {
      done();
      throw err;
    }
  }

  /**
   * Cancels the rotation timer, drops every key and the key password; later calls fail with
   * DisposedError, a second call is harmless. A request under way finishes the attempt it is in
   * with its outcome (a stream already started reads on), but starts no other: where it would (a
   * retry, a key refresh) and where it waits (a backoff, the key fetch, cancelled) it fails with
   * DisposedError at once. CryptoKeys live inside Web Crypto and cannot be zeroed, only dropped; the
   * key bytes the library handles itself (PKCS#8 DER of key files) are zeroed as it goes.
   * @example
   * await using client = new SecureCompletionClient({ keyDir: 'client_keys' });
   */
  async dispose(): Promise<void> {
    this.#disposal.dispose();
    const keys = this.#keys.dispose();
    const source = this.#keySource.dispose();
    const keyFetch = this.#serverKeys.clear();
    const requestKeys = this.#requestKeys.close();
    // Resolves once a rotation or key write already running has settled, the router key's fetch with
    // its trust store's writes too (no key file changes after it), and the next request's key being
    // made is zeroed.
    await Promise.all([keys, source, keyFetch, requestKeys]);
  }

  /** `await using` support: disposes the client at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #context(): StreamContext {
    return {
      routerUrl: this.routerUrl,
      protocol: this.protocol,
      maxRetries: this.maxRetries,
      timeout: this.timeout,
      serverKeys: this.#serverKeys,
      keys: this.#keys,
      requestKeys: this.#requestKeys,
      disposal: this.#disposal,
      wire: this.#wire,
      streamIdleTimeout: this.streamIdleTimeout,
      completion: (opened, payloadId, protocol) => this.#completion(opened, payloadId, protocol),
    };
  }

  /** The opened answer as a checked completion with its `_metadata`; the plaintext is released (zeroed). */
  async #completion(opened: Pick<OpenedBody<object>, 'pkg' | 'plaintext'>, payloadId: string, protocol: ProtocolVersion): Promise<SecureChatCompletionResult> {
    const completion = await (await this.#secureBytes()).use(opened.plaintext, parseCompletion);
    completion._metadata = completionMetadata(opened.pkg, payloadId, protocol);
    return completion as SecureChatCompletionResult;
  }

  async #secureBytes(): Promise<SecureByteContext> {
    return new SecureByteContext(await this.#secureMemory(), (size) => this.#unlockedTold || ((this.#unlockedTold = true), this.#onWarning(unlockedWarning(size))));
  }

  /** Told once a client: a secret the OS would not lock. */
  #unlockedTold = false;

  #secureMemory(): Promise<SecureMemory> {
    this.#memory ??= selectSecureMemory(this.#memoryOption);
    return this.#memory;
  }
}
