/**
 * Where the client's key pairs come from and go to: memory only, or a key directory (Node).
 * The file code is loaded on first use through `#key-files`, so the browser entry never imports
 * `node:*` and memory-only clients never load it at all.
 */
import { DisposedError } from '../errors.js';
import { generateClientKeyPair, type ClientKeyPair } from './client-keys.js';
import type { PendingKeyPair } from './key-holder.js';
import type { TrustStore } from './pinning.js';
import type { SecureMemory } from '../memory/secure-memory.js';

type KeyFiles = typeof import('#key-files');
let keyFilesModule: Promise<KeyFiles> | undefined;

/** The Node key-file module (or, outside Node, the stub that refuses). */
export function keyFiles(): Promise<KeyFiles> {
  keyFilesModule ??= import('#key-files');
  return keyFilesModule;
}

export interface KeySourceOptions {
  bits: number;
  /** Pairs kept in memory are multi-prime where possible (never those written to files). */
  multiPrime: boolean;
  /** Load the pair here, or generate and save one; rotated pairs are saved here too. */
  keyDir?: string | undefined;
  password?: string | undefined;
  onWarning: (message: string) => void;
  /** The client's secure memory (its `secureMemory` option), where a key file's password's bytes live while it is used. */
  memory?: (() => Promise<SecureMemory>) | undefined;
}

export class ClientKeySource {
  /** Modulus of generated pairs (changes with `generateKeys({ keySize })`). */
  bits: number;
  #password: string | undefined;
  readonly #multiPrime: boolean;
  /** Where rotated pairs are saved; undefined: memory only. */
  saveDir: string | undefined;
  readonly #keyDir: string | undefined;
  readonly #onWarning: (message: string) => void;
  readonly #memory: () => Promise<SecureMemory | undefined>;
  #trustStore: Promise<TrustStore> | undefined;
  #disposed = false;
  /** Writes to a key directory still running: dispose waits for them. */
  readonly #writes = new Set<Promise<unknown>>();
  /** The digest of the private key file this source read or wrote last: a rotation writes only over that one. */
  #fileDigest: string | undefined;

  constructor(options: KeySourceOptions) {
    this.bits = options.bits;
    this.#password = options.password;
    this.#multiPrime = options.multiPrime;
    this.#keyDir = options.keyDir;
    this.saveDir = options.keyDir;
    this.#onWarning = options.onWarning;
    this.#memory = options.memory ?? (async () => undefined);
  }

  /** The first pair: from the key directory (loaded, or generated and saved), else generated in memory. */
  async initial(): Promise<ClientKeyPair> {
    if (this.#keyDir === undefined) return this.#inMemory(this.bits);
    const files = await keyFiles();
    const dir = this.#keyDir;
    const memory = await this.#memory();
    return this.#write(() => files.openKeyDir(dir, { bits: this.bits, password: this.#password, memory, onWarning: this.#onWarning, onDigest: this.#remember, beforeWrite: () => this.#assertNotDisposed() }));
  }

  /**
   * The next pair for a rotation. Saving it needs an extractable private key, kept inside Web Crypto
   * until activation, which writes the files and re-imports the key non-extractable.
   */
  async prepare(): Promise<PendingKeyPair> {
    const dir = this.saveDir;
    if (dir === undefined) {
      const pair = await this.#inMemory(this.bits);
      return { activate: async () => pair };
    }
    const [files, pair, memory] = await Promise.all([keyFiles(), generateClientKeyPair(this.bits, { extractable: true }), this.#memory()]);
    // Checked again when activated: a source disposed meanwhile never writes (nor without its password).
    const activate = async () => {
      try {
        return await files.saveKeyFiles(dir, pair, { password: this.#password, memory, beforeWrite: () => this.#assertNotDisposed(), replacing: this.#fileDigest, onWritten: this.#remember });
      } catch (err) {
        if (!(err instanceof files.KeyFileChangedError)) throw err;
        // Another process or client, or `nomyo keys change-password`, wrote the key meanwhile: its file is left
        // as it is, and this client's pairs stay in memory from now on.
        this.saveDir = undefined;
        this.#onWarning(`${err.message}; this client's key rotations stay in memory from now on (restart it to use the file's key)`);
        return this.#inMemory(this.bits);
      }
    };
    return { activate: () => this.#write(activate) };
  }

  /**
   * A fresh pair for `generateKeys`: saved to `saveDir` when given (never over an existing key),
   * and then later rotations are saved there too; else memory only from now on.
   */
  async generate(bits: number, saveDir: string | undefined, password: string | undefined): Promise<ClientKeyPair> {
    let pair: ClientKeyPair;
    if (saveDir === undefined) {
      pair = await this.#inMemory(bits);
    } else {
      const files = await keyFiles();
      await files.assertNoKeyPair(saveDir);
      const fresh = await generateClientKeyPair(bits, { extractable: true });
      const memory = await this.#memory();
      pair = await this.#write(() => files.saveKeyFiles(saveDir, fresh, { password, memory, exclusive: true, beforeWrite: () => this.#assertNotDisposed(), onWritten: this.#remember }));
      this.#password = password;
    }
    this.saveDir = saveDir;
    this.bits = bits;
    return pair;
  }

  /** A pair from the user's files for `loadKeys`; those files are never written, so rotations of it stay in memory. */
  async load(privateKeyPath: string, publicKeyPath: string | undefined, password: string | undefined): Promise<ClientKeyPair> {
    const pair = await (await keyFiles()).loadKeyFiles(privateKeyPath, publicKeyPath, { password, onWarning: this.#onWarning, memory: await this.#memory() });
    this.saveDir = undefined;
    return pair;
  }

  get password(): string | undefined {
    return this.#password;
  }

  /**
   * Forgets the password (a JS string: it cannot be zeroed, only dropped) and stops saving: no write
   * starts from now on. Resolves when the writes already running have finished (a key file is never
   * left half-written); a second call is harmless.
   */
  async dispose(): Promise<void> {
    this.#disposed = true;
    this.#password = undefined;
    this.saveDir = undefined;
    await Promise.allSettled([...this.#writes]);
  }

  /** Notes which private key file this source read or wrote (its digest, taken from the very bytes). */
  readonly #remember = (digest: string): void => {
    this.#fileDigest = digest;
  };

  /** A pair that is never written: multi-prime when allowed, for faster answers. */
  #inMemory(bits: number): Promise<ClientKeyPair> {
    return generateClientKeyPair(bits, { multiPrime: this.#multiPrime });
  }

  #assertNotDisposed(): void {
    if (this.#disposed) throw new DisposedError('this client was disposed; create a new one');
  }

  /**
   * Runs a write to a key directory, unless disposed; dispose waits for it. A save checks again once
   * its key is encrypted, before touching a file; one that has begun writing finishes (never half a pair).
   */
  #write<T>(write: () => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(new DisposedError('this client was disposed; create a new one'));
    const running = write();
    this.#writes.add(running);
    const forget = () => this.#writes.delete(running);
    running.then(forget, forget);
    return running;
  }

  /** The trust-on-first-use store in the key directory, or undefined without one. */
  trustStore(): (() => Promise<TrustStore>) | undefined {
    const dir = this.#keyDir;
    if (dir === undefined) return undefined;
    return () => {
      this.#trustStore ??= keyFiles().then((files) => new files.KnownRouters(dir, this.#onWarning));
      return this.#trustStore;
    };
  }
}
