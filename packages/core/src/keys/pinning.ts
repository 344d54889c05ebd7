/**
 * Server-key pinning: an explicit fingerprint (`serverKeyFingerprint`), or trust on first use with
 * a store that remembers the first key seen per router origin (kept in the key directory, Node).
 * Checked every time the router's key is fetched, refreshes included, before the key is used.
 */
import { decodeBase64 } from '../protocol/base64.js';
import { fingerprintBase64, toHex } from '../crypto/fingerprint.js';
import { InvalidArgumentError, SecurityError } from '../errors.js';
import type { ServerKey } from './server-key.js';

/** The command that re-trusts `origin`'s key, as a user can run it (an http: router needs --allow-http). */
export function trustCommand(origin: string): string {
  return `nomyo keys trust --url ${origin}${origin.startsWith('http:') ? ' --allow-http' : ''}`;
}

/** Remembers one fingerprint per router origin (trust on first use). */
export interface TrustStore {
  /** Where the store lives, for error messages (a file path). */
  readonly location: string;
  /** The fingerprint trusted for `origin`, if any. */
  get(origin: string): Promise<string | undefined>;
  /** Trusts `fingerprint` for `origin`, replacing what was there. What the store knows of protocol 2 stays. */
  set(origin: string, fingerprint: string): Promise<void>;
  /**
   * Trust on first use: trusts `fingerprint` for `origin` unless a key is trusted for it already
   * (another client, or process, got there first), and resolves to the one trusted now. Keeps what
   * the store knows of protocol 2. Stores without it are given {@link set}.
   */
  trustFirst?(origin: string, fingerprint: string): Promise<string>;
  /**
   * Whether the router at `origin` advertised protocol 2 with any of its keys (downgrade protection
   * across restarts and key rotations). Stores without it remember nothing.
   */
  spokeV2?(origin: string): Promise<boolean>;
  /**
   * Records that the router at `origin` advertised protocol 2 with the key `fingerprint`, whatever made
   * the client trust that key: a pin, trust on first use, or an entry from before.
   */
  rememberV2?(origin: string, fingerprint: string): Promise<void>;
}

/**
 * A fingerprint as lowercase hex: accepts 64 hex digits (colons allowed, any case) or `sha256:`
 * followed by the base64 of the 32 bytes.
 * @throws InvalidArgumentError for anything else.
 * @example
 * parseFingerprint('sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
 */
export function parseFingerprint(pin: string): string {
  if (typeof pin !== 'string') throw new InvalidArgumentError('serverKeyFingerprint must be a string, or a list of them');
  const text = pin.trim();
  if (/^sha256:/i.test(text)) {
    let bytes: Uint8Array | undefined;
    try {
      const b64 = text.slice(7);
      bytes = decodeBase64(b64.length % 4 === 0 ? b64 : b64 + '='.repeat(4 - (b64.length % 4)));
    } catch {
      bytes = undefined;
    }
    if (bytes?.length !== 32) throw malformed();
    return toHex(bytes);
  }
  const hex = text.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw malformed();
  return hex;
}

/** One fingerprint, or a list of one or more (each as {@link parseFingerprint} takes it). */
function parsePins(pin: string | readonly string[]): readonly string[] {
  if (!Array.isArray(pin)) return [parseFingerprint(pin as string)];
  if (pin.length === 0) throw new InvalidArgumentError('serverKeyFingerprint must name at least one key');
  return [...new Set(pin.map((one: string) => parseFingerprint(one)))];
}

function malformed(): InvalidArgumentError {
  return new InvalidArgumentError('serverKeyFingerprint must be a SHA-256 fingerprint: 64 hex digits, or "sha256:" and base64');
}

/** Both spellings, for people comparing against `nomyo keys fingerprint` or another tool. */
export function describeFingerprint(hex: string): string {
  return `${hex} (${fingerprintBase64(hex)})`;
}

export class ServerKeyPinning {
  readonly #pins: readonly string[] | undefined;

  /**
   * @param origin the router origin the key belongs to
   * @param pin an explicit fingerprint, or several (a key rotation's old and new key); when set, the
   *   trust store is neither read nor written
   * @param store trust on first use, when there is a key directory
   */
  constructor(
    private readonly origin: string,
    pin?: string | readonly string[],
    private readonly store?: () => Promise<TrustStore>,
  ) {
    this.#pins = pin === undefined ? undefined : parsePins(pin);
  }

  /** Throws SecurityError unless `key` is a pinned (or the first-seen) key of this router. */
  async check(key: ServerKey): Promise<void> {
    if (this.#pins !== undefined) {
      if (!this.#pins.includes(key.fingerprint)) {
        throw new SecurityError(
          `the router ${this.origin} presented key ${describeFingerprint(key.fingerprint)}, which does not match serverKeyFingerprint ` +
            `${this.#pins.map(describeFingerprint).join(' or ')}; nothing was sent`,
        );
      }
      return;
    }
    if (!this.store) return;
    const store = await this.store();
    let known = await store.get(this.origin);
    if (known === undefined) {
      // First use: not `set`, which would replace a key another client trusted meanwhile.
      if (!store.trustFirst) return store.set(this.origin, key.fingerprint);
      known = await store.trustFirst(this.origin, key.fingerprint);
    }
    if (known !== key.fingerprint) {
      throw new SecurityError(
        `the router ${this.origin} changed its key: trusted ${describeFingerprint(known)} (first seen, stored in ${store.location}), ` +
          `now presents ${describeFingerprint(key.fingerprint)}; nothing was sent. If the router replaced its key deliberately, accept ` +
          `the new one: run \`${trustCommand(this.origin)}\` with the same --dir, remove its entry from ${store.location}, ` +
          `or pass serverKeyFingerprint: '${key.fingerprint}'`,
      );
    }
  }
}
