/**
 * What a client with a key directory knows about routers (Node only), in `<keyDir>/known_routers.json`:
 * - `routers`: trust on first use, each router origin to the SHA-256 fingerprint of the first key
 *   it presented;
 * - `spokeV2`: each origin to the fingerprints of its keys whose answers advertised protocol 2, and
 *   since when, so that a later answer without it, with any key, is refused as a downgrade across
 *   restarts and rotations.
 *   Recorded whatever made the client trust the key (a pin, trust on first use, an entry from
 *   before), so a pinned client with a key directory keeps it too.
 * Mode 0600, written atomically. Files from older versions load: without `spokeV2`, or with the
 * fact kept as `v2Since` in the router's entry (moved to `spokeV2` on the next write).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyFileError } from '../../errors.js';
import type { TrustStore } from '../pinning.js';
import { writeFileAtomic } from './atomic-write.js';
import { withKeyDirLock } from './dir-lock.js';
import { checkKeyDirectory, checkManagedFile, ensureKeyDirectory } from './safe-paths.js';

export const KNOWN_ROUTERS_FILE = 'known_routers.json';

interface Entry {
  fingerprint: string;
  firstSeen: string;
}
/** The file's contents: trusted keys, and the keys seen advertising protocol 2 (origin → fingerprint → ISO time). */
interface Known {
  routers: Record<string, Entry>;
  spokeV2: Record<string, Record<string, string>>;
}

/**
 * @example
 * const known = new KnownRouters('client_keys');
 * await known.get('https://api.nomyo.ai:12434'); // '3f2a…' or undefined
 */
export class KnownRouters implements TrustStore {
  readonly location: string;
  #warnedUnwritable = false;

  /** @param onWarning told once when what a router said cannot be written (a directory this process cannot write) */
  constructor(
    private readonly dir: string,
    private readonly onWarning?: (message: string) => void,
  ) {
    this.location = join(dir, KNOWN_ROUTERS_FILE);
  }

  async get(origin: string): Promise<string | undefined> {
    return (await this.#read()).routers[origin]?.fingerprint;
  }

  /**
   * Trusts `fingerprint` for `origin`, replacing what was there: use only to trust deliberately
   * (`nomyo keys trust`). What the store knows of protocol 2 stays (see {@link forgetV2}).
   */
  set(origin: string, fingerprint: string): Promise<void> {
    return this.#update((known) => {
      known.routers[origin] = { fingerprint, firstSeen: new Date().toISOString() };
    });
  }

  /** Forgets that the router at `origin` spoke protocol 2: the way to accept one that really stopped (`nomyo keys trust --allow-v1`). */
  forgetV2(origin: string): Promise<void> {
    return this.#update((known) => {
      delete known.spokeV2[origin];
    });
  }

  /**
   * Trusts `fingerprint` for `origin` on first use, unless a key is trusted for it already (read
   * again under the write lock), and resolves to the one trusted now. What it knows of protocol 2 stays.
   */
  async trustFirst(origin: string, fingerprint: string): Promise<string> {
    let trusted = fingerprint;
    try {
      await this.#update((known) => {
        const entry = known.routers[origin];
        if (entry) trusted = entry.fingerprint;
        else known.routers[origin] = { fingerprint, firstSeen: new Date().toISOString() };
        return entry === undefined;
      });
    } catch (err) {
      // Trusted for this process alone, the key would be trusted anew at every start: refused.
      if (!isUnwritable(err)) throw err;
      throw new KeyFileError(
        `cannot trust the router ${origin} on first use: ${this.location} cannot be written (${err.code}), the key directory is not ` +
          `writable by this process; nothing was sent. Pin its key (serverKeyFingerprint, nomyo --fingerprint), or trust it once ` +
          `with \`nomyo keys trust --url ${origin} --dir ${this.dir}\` while the directory is writable`,
        { cause: err },
      );
    }
    return trusted;
  }

  /** Whether the router at `origin` has advertised protocol 2, with any of its keys. */
  async spokeV2(origin: string): Promise<boolean> {
    return Object.keys((await this.#read()).spokeV2[origin] ?? {}).length > 0;
  }

  /**
   * Records that the router at `origin` advertised protocol 2 with the key `fingerprint`, which the
   * caller trusts for whatever reason (a pin, trust on first use): with or without an entry in `routers`.
   */
  async rememberV2(origin: string, fingerprint: string): Promise<void> {
    if ((await this.#read()).spokeV2[origin]?.[fingerprint] !== undefined) return;
    try {
      await this.#update((known) => {
        const keys = (known.spokeV2[origin] ??= Object.create(null) as Record<string, string>);
        keys[fingerprint] ??= new Date().toISOString();
      });
    } catch (err) {
      // The client remembers it for its life (protocol-choice.ts); only the next process will not.
      if (!isUnwritable(err)) throw err;
      if (!this.#warnedUnwritable) {
        this.#warnedUnwritable = true;
        this.onWarning?.(
          `${this.location} cannot be written (${err.code}): that ${origin} speaks protocol 2 is remembered in this process only, ` +
            `so a restarted client would not refuse a downgrade to v1 (pass protocol: 2, or make the key directory writable)`,
        );
      }
    }
  }

  /** Forgets `origin`: the next key it presents is trusted on first use again, and nothing says it spoke protocol 2. */
  delete(origin: string): Promise<void> {
    return this.#update((known) => {
      delete known.routers[origin];
      delete known.spokeV2[origin];
    });
  }

  /**
   * Reads, changes and writes the file holding the key directory's lock (dir-lock.ts), one change at
   * a time whichever client or process makes it; `change` returning false writes nothing. Without
   * it, two clients sharing a key directory each wrote what they had read, and one's router was
   * forgotten (its changed key then trusted anew).
   */
  async #update(change: (known: Known) => boolean | void): Promise<void> {
    await ensureKeyDirectory(this.dir);
    await withKeyDirLock(this.dir, async (stillHeld) => {
      const known = await this.#read();
      if (change(known) === false) return;
      await stillHeld();
      await writeFileAtomic(this.location, `${JSON.stringify({ version: 1, ...known }, null, 2)}\n`, 0o600);
    });
  }

  async #read(): Promise<Known> {
    const known: Known = { routers: Object.create(null) as Known['routers'], spokeV2: Object.create(null) as Known['spokeV2'] };
    // Whoever can write here could make any router key trusted: the directory and file are checked first.
    if (!(await checkKeyDirectory(this.dir)) || !(await checkManagedFile(this.location))) return known;
    let text: string;
    try {
      text = await readFile(this.location, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return known;
      throw new KeyFileError(`cannot read ${this.location}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
    // A damaged trust store is never rewritten from scratch: that would silently trust any key.
    const corrupt = () => new KeyFileError(`${this.location} is corrupt: fix it or remove it (every router is then trusted on first use again)`);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw corrupt();
    }
    const { routers, spokeV2 = {} } = (data ?? {}) as { routers?: unknown; spokeV2?: unknown };
    if (!isRecord(routers) || !isRecord(spokeV2)) throw corrupt();
    // A damaged downgrade record is not dropped either: that would silently allow a downgrade.
    const rememberV2 = (origin: string, fingerprint: string, since: unknown) => {
      if (!isFingerprint(fingerprint) || typeof since !== 'string') throw corrupt();
      (known.spokeV2[origin] ??= Object.create(null) as Record<string, string>)[fingerprint] = since;
    };
    for (const [origin, entry] of Object.entries(routers)) {
      const { fingerprint, firstSeen, v2Since } = (entry ?? {}) as Partial<Entry> & { v2Since?: unknown };
      if (!isFingerprint(fingerprint)) throw corrupt();
      known.routers[origin] = { fingerprint, firstSeen: String(firstSeen ?? '') };
      // Written by an older version, in the entry itself.
      if (v2Since !== undefined) rememberV2(origin, fingerprint, v2Since);
    }
    for (const [origin, keys] of Object.entries(spokeV2)) {
      if (!isRecord(keys)) throw corrupt();
      for (const [fingerprint, since] of Object.entries(keys)) rememberV2(origin, fingerprint, since);
    }
    return known;
  }
}

/** A write refused because this process may not write the directory (a read-only volume, another owner's mode). */
function isUnwritable(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFingerprint(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}
