/**
 * Options bags are checked against the keys their interface declares: in a security library a
 * misspelt option (`serverKeyFingerPrint`) must be an error, never a silent no-op.
 */
import { InvalidArgumentError } from '../errors.js';

/** Names the compiler says are missing from a key list (shown in the type error). */
type Unlisted<T, K extends readonly unknown[]> = [Exclude<keyof T, K[number]>] extends [never] ? unknown : { readonly unlisted: Exclude<keyof T, K[number]> };

/**
 * The keys of `T`, from a list the compiler checks both ways: each entry must be a key of `T`
 * (`K extends (keyof T)[]`), and each key of `T` must be listed (else the `unlisted` error). So the
 * list cannot drift from the interface. Curried so `T` is given and the list is inferred.
 * @example const KEYS = optionKeys<{ a?: number; b?: string }>()(['a', 'b']);
 */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(keys: K & Unlisted<T, K>): readonly (keyof T & string)[] => keys;
}

/** How many unknown keys one message names; the rest are counted. */
const MAX_NAMED = 5;
/** Key names come from user code and may be anything: shown at most this many characters long. */
const MAX_NAME_CHARS = 40;

/**
 * Throws InvalidArgumentError unless `options` is a plain options object (not null, an array or a
 * primitive) whose own keys (string and symbol, enumerable or not) are all in `allowed`.
 * Inherited keys are not looked at. Values are never read here, so they never reach a message
 * (they may be secrets such as `apiKey`); `undefined` values of known keys are fine.
 *
 * @param what names the options object in the message, e.g. `SecureChatCompletion options`
 * @param hints names that are not options here but mean one, e.g. `{ routerUrl: 'baseUrl' }`
 * @example refuseUnknownOptions(options, CLIENT_OPTION_KEYS, 'SecureCompletionClient options');
 * // InvalidArgumentError: SecureCompletionClient options: unknown option serverKeyFingerPrint; did you mean serverKeyFingerprint?
 */
export function refuseUnknownOptions(options: unknown, allowed: readonly string[], what: string, hints: Readonly<Record<string, string>> = {}): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${what} must be an object`);
  }
  const unknown = Reflect.ownKeys(options).filter((key) => typeof key === 'symbol' || !allowed.includes(key));
  if (unknown.length === 0) return;
  const named = unknown.slice(0, MAX_NAMED).map((key) => {
    const suggestion = typeof key === 'string' ? hintFor(key, hints) ?? closestOption(key, allowed) : undefined;
    return `unknown option ${displayKey(key)}${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`;
  });
  const more = unknown.length > MAX_NAMED ? ` (and ${unknown.length - MAX_NAMED} more unknown options)` : '';
  throw new InvalidArgumentError(`${what}: ${named.join(', ')}${more}`);
}

/**
 * The own keys of `options` that are set (value not `undefined`) among `keys`: for options that
 * are mutually exclusive with another.
 */
export function givenKeys(options: object, keys: readonly string[]): string[] {
  return keys.filter((key) => Object.hasOwn(options, key) && (options as Record<string, unknown>)[key] !== undefined);
}

/** Compared without case, `_` and `-`: `baseURL`, `base_url` and `BaseUrl` all mean `baseUrl`. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

function hintFor(key: string, hints: Readonly<Record<string, string>>): string | undefined {
  const wanted = normalize(key);
  return Object.entries(hints).find(([name]) => normalize(name) === wanted)?.[1];
}

/**
 * The allowed name `key` was probably meant to be: the same name but for case, `_` or `-`, else the
 * nearest by Damerau-Levenshtein distance when it is at most 2 and at most a third of the name.
 */
export function closestOption(key: string, allowed: readonly string[]): string | undefined {
  const wanted = normalize(key);
  const same = allowed.find((name) => normalize(name) === wanted);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of allowed) {
    const candidate = normalize(name);
    const limit = Math.min(2, Math.floor(candidate.length / 3));
    if (Math.abs(candidate.length - wanted.length) > limit) continue;
    const distance = editDistance(wanted, candidate);
    if (distance <= limit && distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/** Damerau-Levenshtein distance (optimal string alignment: insert, delete, substitute, swap neighbours). */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      current.push(d);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}

// Controls, format characters (bidi overrides, zero-width), separators, surrogates, unassigned.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Cn}]/u;

/**
 * A key name fit for a message: a plain identifier as is; anything else quoted, at most
 * {@link MAX_NAME_CHARS} characters, with spaces and unprintable characters written as `\u{…}`.
 */
function displayKey(key: string | symbol): string {
  if (typeof key === 'symbol') return `Symbol(${displayKey(key.description ?? '')})`;
  if (/^[A-Za-z_$][\w$]*$/.test(key) && key.length <= MAX_NAME_CHARS) return key;
  const chars = Array.from(key);
  const shown = chars
    .slice(0, MAX_NAME_CHARS)
    .map((c) => (UNPRINTABLE.test(c) || c === '"' || c === '\\' ? `\\u{${c.codePointAt(0)!.toString(16)}}` : c))
    .join('');
  return `"${shown}${chars.length > MAX_NAME_CHARS ? '…' : ''}"`;
}
