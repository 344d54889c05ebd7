/**
 * Trust on first use for router keys (Node only): `<keyDir>/known_routers.json` maps a router
 * origin to the SHA-256 fingerprint of the first key it presented and, once that key's answer has
 * advertised protocol 2, since when (`v2Since`), so that a later answer without it is refused as
 * a downgrade across restarts. Mode 0600, written atomically. Files without `v2Since` (older
 * versions) load as before.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyFileError } from '../../errors.js';
import type { TrustStore } from '../pinning.js';
import { writeFileAtomic } from './atomic-write.js';
import { checkKeyDirectory, checkManagedFile } from './safe-paths.js';

export const KNOWN_ROUTERS_FILE = 'known_routers.json';

interface Entry {
  fingerprint: string;
  firstSeen: string;
  /** When this key's router first advertised protocol 2 (ISO time); absent: never seen to. */
  v2Since?: string;
}
type Routers = Record<string, Entry>;

/**
 * @example
 * const known = new KnownRouters('client_keys');
 * await known.get('https://api.nomyo.ai:12434'); // '3f2a…' or undefined
 */
export class KnownRouters implements TrustStore {
  readonly location: string;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {
    this.location = join(dir, KNOWN_ROUTERS_FILE);
  }

  async get(origin: string): Promise<string | undefined> {
    return (await this.#read())[origin]?.fingerprint;
  }

  /** Remembers `fingerprint` for `origin` (replacing what was there: use only to trust deliberately). */
  set(origin: string, fingerprint: string): Promise<void> {
    return this.#update((routers) => {
      routers[origin] = { fingerprint, firstSeen: new Date().toISOString() };
    });
  }

  /** Whether the router at `origin`, trusted with `fingerprint`, has advertised protocol 2. */
  async spokeV2(origin: string, fingerprint: string): Promise<boolean> {
    const entry = (await this.#read())[origin];
    return entry?.fingerprint === fingerprint && entry.v2Since !== undefined;
  }

  /** Records that the router at `origin` advertised protocol 2 with the trusted key `fingerprint`; nothing for another key. */
  async rememberV2(origin: string, fingerprint: string): Promise<void> {
    if (await this.spokeV2(origin, fingerprint)) return;
    return this.#update((routers) => {
      const entry = routers[origin];
      if (entry?.fingerprint === fingerprint && entry.v2Since === undefined) entry.v2Since = new Date().toISOString();
    });
  }

  /** Forgets `origin`; the next key it presents is trusted on first use again. */
  delete(origin: string): Promise<void> {
    return this.#update((routers) => {
      delete routers[origin];
    });
  }

  #update(change: (routers: Routers) => void): Promise<void> {
    // One writer at a time in this process; another process racing on first use writes the same fact.
    const run = this.#chain.then(async () => {
      const routers = await this.#read();
      change(routers);
      if (!(await checkKeyDirectory(this.dir))) {
        const created = await mkdir(this.dir, { recursive: true, mode: 0o700 });
        if (created !== undefined) await chmod(this.dir, 0o700);
        await checkKeyDirectory(this.dir);
      }
      await writeFileAtomic(this.location, `${JSON.stringify({ version: 1, routers }, null, 2)}\n`, 0o600);
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #read(): Promise<Routers> {
    // Whoever can write here could make any router key trusted: the directory and file are checked first.
    if (!(await checkKeyDirectory(this.dir)) || !(await checkManagedFile(this.location))) return {};
    let text: string;
    try {
      text = await readFile(this.location, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
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
    const routers = (data as { routers?: unknown } | null)?.routers;
    if (typeof routers !== 'object' || routers === null || Array.isArray(routers)) throw corrupt();
    const out: Routers = Object.create(null) as Routers;
    for (const [origin, entry] of Object.entries(routers as Record<string, unknown>)) {
      const { fingerprint, firstSeen, v2Since } = (entry ?? {}) as Partial<Entry>;
      if (typeof fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(fingerprint)) throw corrupt();
      // A damaged downgrade record is not dropped either: that would silently allow a downgrade.
      if (v2Since !== undefined && typeof v2Since !== 'string') throw corrupt();
      out[origin] = { fingerprint, firstSeen: String(firstSeen ?? ''), ...(v2Since === undefined ? {} : { v2Since }) };
    }
    return out;
  }
}
