/** Environment variables, read the same way in every runtime. */

/**
 * An environment variable where the runtime has an environment (Node, Deno, Bun), else undefined.
 * Empty counts as unset. So does a variable the runtime forbids reading (Deno without
 * --allow-env throws): options then fall back to their defaults instead of failing.
 */
export function env(name: string): string | undefined {
  let value: string | undefined;
  try {
    value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
  } catch {
    return undefined;
  }
  return value === '' ? undefined : value;
}

/** True in Node.js (and runtimes that present themselves as it): where core's Node-only imports (`#primes`, `#gcm`) resolve. */
export function inNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';
}

/** The longest timer JavaScript runtimes keep (2^31 - 1 ms, about 24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
