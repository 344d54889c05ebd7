/** What the `nomyo` commands say of arguments they refuse, never repeating them (one may be a secret). */

/** What parseArgs refused, by its error code. */
const PARSE_ERRORS: Record<string, string> = {
  ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL: 'an argument that is no option',
  ERR_PARSE_ARGS_UNKNOWN_OPTION: 'an unknown option',
  ERR_PARSE_ARGS_INVALID_OPTION_VALUE: 'an option without its value, or with one it takes none',
};

/** The kind of argument parseArgs refused, named by its kind only: what was typed may be a password or an API key. */
export function refusedArguments(err: unknown): string {
  return `${PARSE_ERRORS[(err as { code?: string }).code ?? ''] ?? 'invalid arguments'} (not repeated here: it may be a secret)`;
}

/** Why plain http is refused: a chat sends the API key; a key fetch sends none, but gets a key anything on the way may have swapped. */
export const PLAIN_HTTP_RISK = {
  apiKey: 'which sends the API key unencrypted',
  routerKey: 'over which anything on the way can hand over its own key as the router\'s',
} as const;

/**
 * Refuses a plain-http router URL without `--allow-http` in the flag's own terms (the library's
 * message names its option, `allowHttp`), saying what it would risk; undefined when it may be used.
 */
export function plainHttpRefused(url: string | undefined, allowHttp: boolean | undefined, risk: string): string | undefined {
  if (allowHttp || !url || !/^http:/i.test(url.trim())) return undefined;
  return `the router URL is plain http, ${risk}: pass --allow-http (for local testing only)`;
}

/**
 * A library error's message in a command's terms: each client option it names
 * (`serverKeyFingerprint must be…`, `…; use apiKey`) as the flag that set it (`--fingerprint must
 * be…`, `…; use --api-key`).
 */
export function inFlagTerms(message: string, flags: Readonly<Record<string, string>>): string {
  return message.replace(/\b[A-Za-z_]+\b/g, (word) => (Object.hasOwn(flags, word) ? flags[word]! : word));
}
