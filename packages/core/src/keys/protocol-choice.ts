/**
 * Which wire version a request is sent with (docs/protocol.md, "Choosing the version on the client"), and the
 * downgrade memory: once a router (by its origin) has been seen advertising protocol 2, with any of
 * its keys, a key response without it is refused, since an intermediary can strip X-Nomyo-Protocol
 * to force v1. Checked where the router's key is fetched, before anything is sent.
 */
import type { ProtocolVersion } from '../protocol/constants.js';
import { SecurityError } from '../errors.js';
import { trustCommand, type TrustStore } from './pinning.js';
import type { ServerKey } from './server-key.js';

/** The `protocol` option: `'auto'` (v2 where the router advertises it), `1` (v1 only) or `2` (v2 or nothing). */
export type ProtocolOption = 'auto' | ProtocolVersion;

/**
 * The version to send to the router whose key response was `key`.
 * @throws SecurityError for `protocol: 2` when the router does not advertise 2 (nothing is sent).
 */
export function chooseProtocol(option: ProtocolOption, key: ServerKey, origin: string): ProtocolVersion {
  const v2 = key.protocols.includes(2);
  if (option === 1) return 1;
  if (v2) return 2;
  if (option === 2) {
    throw new SecurityError(
      `protocol: 2 is required, but the router ${origin} does not advertise protocol 2 (no "X-Nomyo-Protocol: 1, 2" on its key response); ` +
        `nothing was sent. Use protocol: 'auto' or 1 for a router that speaks only v1.`,
    );
  }
  return 1;
}

/**
 * The downgrade memory of one client for one router origin: in memory for its life, and in its trust
 * store when it has one. It is the router's, not one key's: a rotation (docs/deployment.md) brings a
 * new key that an intermediary could otherwise strip of X-Nomyo-Protocol on its first fetch.
 */
export class ProtocolMemory {
  /** Fingerprints of this router's keys whose answers advertised protocol 2, in this client's life. */
  readonly #spokeV2 = new Set<string>();

  constructor(
    private readonly origin: string,
    private readonly option: ProtocolOption,
    private readonly store?: () => Promise<TrustStore>,
  ) {}

  /**
   * Remembers a key response that advertises protocol 2; refuses one that does not, from a router
   * that did before with any of its keys (unless the client sends v1 only, `protocol: 1`, which is
   * the deliberate way to accept it).
   * @throws SecurityError naming what happened and how to accept it.
   */
  async check(key: ServerKey): Promise<void> {
    const { fingerprint } = key;
    if (key.protocols.includes(2)) {
      // Told to the store at every fetch, not once a client: a store emptied meanwhile (`nomyo keys
      // trust --allow-v1` while this router still speaks v2) learns it again. It writes only what it lacks.
      const store = this.store && (await this.store());
      await store?.rememberV2?.(this.origin, fingerprint);
      this.#spokeV2.add(fingerprint);
      return;
    }
    if (this.option === 1) return;
    // Where the memory comes from: this client's life, or the trust store (across restarts).
    let storedIn: string | undefined;
    if (this.#spokeV2.size === 0) {
      const store = this.store && (await this.store());
      if (!store || !(await store.spokeV2?.(this.origin))) return;
      storedIn = store.location;
    }
    const seen = storedIn === undefined ? 'earlier in this client' : `before (remembered in ${storedIn})`;
    const retrust = storedIn === undefined ? 'create a new client' : `re-trust the router with \`${trustCommand(this.origin)} --allow-v1\` and the same --dir`;
    throw new SecurityError(
      `the router ${this.origin} advertised protocol 2 ${seen}, but its key response now (key sha256 ${fingerprint}) does not: ` +
        `refused as a possible downgrade by an intermediary that strips X-Nomyo-Protocol (a new key does not reset this: a rotation ` +
        `keeps protocol 2); nothing was sent. If the router really stopped speaking protocol 2, accept it deliberately: pass ` +
        `protocol: 1 (v1 only), or ${retrust}.`,
    );
  }
}
