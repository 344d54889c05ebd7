/**
 * Where the client's key pairs come from and go to: memory only, or a key directory (Node).
 * The file code is loaded on first use through `#key-files`, so the browser entry never imports
 * `node:*` and memory-only clients never load it at all.
 */
import { generateClientKeyPair, type ClientKeyPair } from './client-keys.js';
import type { PendingKeyPair } from './key-holder.js';
import type { TrustStore } from './pinning.js';

type KeyFiles = typeof import('#key-files');
let keyFilesModule: Promise<KeyFiles> | undefined;

/** The Node key-file module (or, outside Node, the stub that refuses). */
export function keyFiles(): Promise<KeyFiles> {
  keyFilesModule ??= import('#key-files');
  return keyFilesModule;
}

export interface KeySourceOptions {
  bits: number;
  /** Load the pair here, or generate and save one; rotated pairs are saved here too. */
  keyDir?: string | undefined;
  password?: string | undefined;
  onWarning: (message: string) => void;
}

export class ClientKeySource {
  /** Modulus of generated pairs (changes with `generateKeys({ keySize })`). */
  bits: number;
  #password: string | undefined;
  /** Where rotated pairs are saved; undefined: memory only. */
  saveDir: string | undefined;
  readonly #keyDir: string | undefined;
  readonly #onWarning: (message: string) => void;
  #trustStore: Promise<TrustStore> | undefined;

  constructor(options: KeySourceOptions) {
    this.bits = options.bits;
    this.#password = options.password;
    this.#keyDir = options.keyDir;
    this.saveDir = options.keyDir;
    this.#onWarning = options.onWarning;
  }

  /** The first pair: from the key directory (loaded, or generated and saved), else generated in memory. */
  async initial(): Promise<ClientKeyPair> {
    if (this.#keyDir === undefined) return generateClientKeyPair(this.bits);
    const files = await keyFiles();
    return files.openKeyDir(this.#keyDir, { bits: this.bits, password: this.#password, onWarning: this.#onWarning });
  }

  /**
   * The next pair for a rotation. Saving it needs an extractable private key, kept inside Web Crypto
   * until activation, which writes the files and re-imports the key non-extractable.
   */
  async prepare(): Promise<PendingKeyPair> {
    const dir = this.saveDir;
    if (dir === undefined) {
      const pair = await generateClientKeyPair(this.bits);
      return { activate: async () => pair };
    }
    const [files, pair] = await Promise.all([keyFiles(), generateClientKeyPair(this.bits, true)]);
    return { activate: () => files.saveKeyFiles(dir, pair, { password: this.#password }) };
  }

  /**
   * A fresh pair for `generateKeys`: saved to `saveDir` when given (never over an existing key),
   * and then later rotations are saved there too; else memory only from now on.
   */
  async generate(bits: number, saveDir: string | undefined, password: string | undefined): Promise<ClientKeyPair> {
    let pair: ClientKeyPair;
    if (saveDir === undefined) {
      pair = await generateClientKeyPair(bits);
    } else {
      const files = await keyFiles();
      await files.assertNoKeyPair(saveDir);
      pair = await files.generateKeyFiles(saveDir, bits, { password });
      this.#password = password;
    }
    this.saveDir = saveDir;
    this.bits = bits;
    return pair;
  }

  /** A pair from the user's files for `loadKeys`; those files are never written, so rotations of it stay in memory. */
  async load(privateKeyPath: string, publicKeyPath: string | undefined, password: string | undefined): Promise<ClientKeyPair> {
    const pair = await (await keyFiles()).loadKeyFiles(privateKeyPath, publicKeyPath, password);
    this.saveDir = undefined;
    return pair;
  }

  get password(): string | undefined {
    return this.#password;
  }

  /** Forgets the password (a JS string: it cannot be zeroed, only dropped) and stops saving. */
  dispose(): void {
    this.#password = undefined;
    this.saveDir = undefined;
  }

  /** The trust-on-first-use store in the key directory, or undefined without one. */
  trustStore(): (() => Promise<TrustStore>) | undefined {
    const dir = this.#keyDir;
    if (dir === undefined) return undefined;
    return () => {
      this.#trustStore ??= keyFiles().then((files) => new files.KnownRouters(dir));
      return this.#trustStore;
    };
  }
}
