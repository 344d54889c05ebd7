/**
 * The values of nomyo-server's flags, parsed and checked before the router starts: each refusal is a
 * UsageError that names its flag (exit status 2), never echoing a secret.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { MAX_TIMER_MS } from '@nomyo/core/internal';

/** A flag's value refused: said with the usage, exit status 2. */
export class UsageError extends Error {}

export function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(value);
}

/** Seconds (decimals allowed) as milliseconds; at least `minMs`. */
export function seconds(name: string, value: string | undefined, minMs = 0): number | undefined {
  if (value === undefined) return undefined;
  const exact = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : NaN;
  // Rounded to the millisecond, but a positive value never to 0, which would turn a timeout off.
  const ms = exact > 0 ? Math.max(1, Math.round(exact)) : exact;
  // A timer waits at most MAX_TIMER_MS: a longer wait would be cut to 1 ms by Node.js.
  if (!(ms >= minMs && ms <= MAX_TIMER_MS)) throw new UsageError(`--${name} must be a number of seconds${minMs > 0 ? ' above 0' : ''}, at most ${Math.floor(MAX_TIMER_MS / 1000)}`);
  return ms;
}

export function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} must be ${allowed.join(' or ')}`);
  return value as T;
}

export function protocolVersion(value: string | undefined): 1 | 2 | undefined {
  if (value === undefined) return undefined;
  if (value !== '1' && value !== '2') throw new UsageError('--protocol must be 1 or 2');
  return Number(value) as 1 | 2;
}

/**
 * NOMYO_UPSTREAM_KEY, for a router with an upstream: set but empty (a deployment's secret that did
 * not arrive) is refused, as NOMYO_SERVER_API_KEY is, where it would fail every request with a 502.
 */
export function upstreamKeyFromEnv(upstream: string | undefined): string | undefined {
  const key = process.env.NOMYO_UPSTREAM_KEY;
  if (key === '' && upstream !== undefined) throw new UsageError('NOMYO_UPSTREAM_KEY is empty: give the upstream\'s key, or unset it for an upstream that needs none');
  return upstream === undefined ? undefined : key;
}

/**
 * A key file flag's path, checked before the router starts: no directory, and readable by this
 * process (a pipe is fine: `--key-file <(vault read …)`). The router's own key may be absent
 * (`mustExist` false: it is generated there).
 */
export function checkKeyFileFlag(name: string, file: string, mustExist: boolean): void {
  try {
    if (statSync(file).isDirectory()) throw new UsageError(`--${name}: ${file} is a directory`);
    accessSync(file, constants.R_OK);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (!mustExist && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UsageError(`--${name}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A flag's file, as bytes: a private key is never made a string (which nothing can zero). */
export function readFlagFile(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`--${name}: cannot read ${file}: ${(err as Error).message}`);
  }
}
