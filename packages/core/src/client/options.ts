/** Defaults and environment lookups shared by both clients. */
import { RSA_DEFAULT_BITS } from '../protocol/constants.js';
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_ROUTER_URL = 'https://api.nomyo.ai:12434';
export const DEFAULT_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_RETRIES = 2;
export const DEFAULT_SERVER_KEY_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_KEY_SIZE = RSA_DEFAULT_BITS;

/** An environment variable where the runtime has an environment (Node, Deno, Bun), else undefined. */
export function env(name: string): string | undefined {
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
  return value === '' ? undefined : value;
}

export function checkKeySize(bits: number): number {
  if (bits !== 2048 && bits !== 3072 && bits !== 4096) throw new InvalidArgumentError('keySize must be 2048, 3072 or 4096');
  return bits;
}

export function checkPositive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) throw new InvalidArgumentError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  return value;
}
