/**
 * Unknown options are refused, never ignored: every constructor and every per-call options object
 * names the unknown key and, when one is close, the option it probably meant. Nothing is sent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createSecureFetch,
  InvalidArgumentError,
  SecureChatCompletion,
  SecureCompletionClient,
  type RequestOptions,
  type SecureChatCompletionOptions,
  type SecureCompletionClientOptions,
  type SecureFetchOptions,
} from '../../src/index.js';
import { closestOption, optionKeys, refuseUnknownOptions } from '../../src/client/option-keys.js';
import { CLIENT_OPTION_KEYS } from '../../src/client/options.js';

const ROUTER = 'https://router.invalid';
const SECRET = 'sk-live-DO-NOT-PRINT-0123456789';
const hello = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

// Every request any client here would make: the refusals must come before I/O.
const sent: string[] = [];
const fetch = async (input: RequestInfo | URL): Promise<Response> => {
  sent.push(String(input));
  throw new Error('no request may be sent');
};
const disposers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(disposers.splice(0).map((d) => d()));
  expect(sent).toEqual([]);
});

function lowLevel(): SecureCompletionClient {
  const client = new SecureCompletionClient({ routerUrl: ROUTER, fetch, keyRotationInterval: 0 });
  disposers.push(() => client.dispose());
  return client;
}
function chat(): SecureChatCompletion {
  const client = new SecureChatCompletion({ baseUrl: ROUTER, fetch, keyRotationInterval: 0 });
  disposers.push(() => client.dispose());
  return client;
}

/** The message of the InvalidArgumentError `call` throws or rejects with (a failure otherwise). */
async function refusal(call: () => unknown): Promise<string> {
  let error: unknown;
  try {
    await call();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect(error).toMatchObject({ code: 'ERR_NOMYO_INVALID_ARGUMENT' });
  return (error as Error).message;
}

type Place = readonly [what: string, refuse: (key: string, value: unknown) => unknown];
// Every options object of the public API, with the name its messages start with.
const places: Record<string, Place> = {
  SecureCompletionClient: ['SecureCompletionClient options', (k, v) => new SecureCompletionClient({ routerUrl: ROUTER, fetch, [k]: v })],
  SecureChatCompletion: ['SecureChatCompletion options', (k, v) => new SecureChatCompletion({ baseUrl: ROUTER, fetch, [k]: v })],
  createSecureFetch: ['createSecureFetch options', (k, v) => createSecureFetch({ routerUrl: ROUTER, fetch, [k]: v })],
  generateKeys: ['generateKeys options', (k, v) => lowLevel().generateKeys({ [k]: v })],
  sendSecureRequest: ['sendSecureRequest options', (k, v) => lowLevel().sendSecureRequest(hello, 'id-1', { [k]: v })],
  create: ['create options', (k, v) => chat().create(hello, { [k]: v })],
  'chat.completions.create': ['create options', (k, v) => chat().chat.completions.create(hello, { [k]: v })],
};

// [where, the option as misspelt, what the message suggests (undefined: nothing close)]
const misspellings: Array<[keyof typeof places, string, string | undefined]> = [
  // The issue's four, wherever the option exists.
  ['SecureCompletionClient', 'serverKeyFingerPrint', 'serverKeyFingerprint'],
  ['SecureChatCompletion', 'serverKeyFingerPrint', 'serverKeyFingerprint'],
  ['createSecureFetch', 'serverKeyFingerPrint', 'serverKeyFingerprint'],
  ['SecureChatCompletion', 'baseURL', 'baseUrl'],
  ['createSecureFetch', 'baseURL', 'baseUrl'],
  ['SecureCompletionClient', 'baseURL', 'routerUrl'],
  ['SecureCompletionClient', 'keyRotationIntervall', 'keyRotationInterval'],
  ['SecureChatCompletion', 'keyRotationIntervall', 'keyRotationInterval'],
  ['createSecureFetch', 'keyRotationIntervall', 'keyRotationInterval'],
  ['create', 'timeOut', 'timeout'],
  ['chat.completions.create', 'timeOut', 'timeout'],
  ['sendSecureRequest', 'timeOut', 'timeout'],
  ['SecureCompletionClient', 'timeOut', 'timeout'],
  // The other name of the router, per client.
  ['SecureChatCompletion', 'routerUrl', 'baseUrl'],
  ['SecureCompletionClient', 'baseUrl', 'routerUrl'],
  // snake_case (the Python client's spelling), swapped letters, a letter missing or extra.
  ['SecureChatCompletion', 'api_key', 'apiKey'],
  ['createSecureFetch', 'router_url', 'routerUrl'],
  ['sendSecureRequest', 'security_tier', 'securityTier'],
  ['SecureCompletionClient', 'keySzie', 'keySize'],
  ['SecureCompletionClient', 'alowHttp', 'allowHttp'],
  ['SecureChatCompletion', 'maxRetires', 'maxRetries'],
  ['SecureChatCompletion', 'secureMemmory', 'secureMemory'],
  ['createSecureFetch', 'securitytier', 'securityTier'],
  ['createSecureFetch', 'clinet', 'client'],
  ['SecureChatCompletion', 'protcol', 'protocol'],
  ['createSecureFetch', 'protocolVersion', undefined],
  ['generateKeys', 'saveTofile', 'saveToFile'],
  ['generateKeys', 'passwrod', 'password'],
  ['generateKeys', 'keydir', 'keyDir'],
  ['create', 'apikey', 'apiKey'],
  ['create', 'singal', 'signal'],
  // Far from every option: named, nothing suggested.
  ['SecureCompletionClient', 'colour', undefined],
  ['SecureChatCompletion', 'dangerouslyAllowBrowser', undefined],
  ['createSecureFetch', 'organization', undefined],
  ['generateKeys', 'overwrite', undefined],
  ['sendSecureRequest', 'headers', undefined],
  ['create', 'maxRetries', undefined],
  ['chat.completions.create', 'idempotencyKey', undefined],
  // Short names are suggested only for a near miss (at most a third of the name).
  ['create', 'tim', undefined],
  ['generateKeys', 'key', undefined],
];

describe('unknown options', () => {
  it.each(misspellings)('%s refuses %s, suggesting %s', async (where, key, suggestion) => {
    const [what, refuse] = places[where]!;
    const message = await refusal(() => refuse(key, SECRET));
    expect(message).toBe(`${what}: unknown option ${key}${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`);
  });

  it('never puts a value in the message, however secret', async () => {
    for (const [what, refuse] of Object.values(places)) {
      const message = await refusal(() => refuse('passwordd', SECRET));
      expect(message).not.toContain(SECRET);
      expect(message).toContain(`${what}: unknown option passwordd`);
    }
    const message = await refusal(() => new SecureChatCompletion({ apiKey: SECRET, keyPassword: SECRET, keyPasword: SECRET } as never));
    expect(message).toBe('SecureChatCompletion options: unknown option keyPasword; did you mean keyPassword?');
  });

  it('names every unknown key, up to five, and counts the rest', async () => {
    const two = await refusal(() => new SecureChatCompletion({ baseURL: ROUTER, colour: 1 } as never));
    expect(two).toBe('SecureChatCompletion options: unknown option baseURL; did you mean baseUrl?, unknown option colour');
    const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`junk${i}`, i]));
    const eight = await refusal(() => new SecureCompletionClient(many as never));
    expect(eight).toBe(
      'SecureCompletionClient options: unknown option junk0, unknown option junk1, unknown option junk2, unknown option junk3, ' +
        'unknown option junk4 (and 3 more unknown options)',
    );
  });

  it('shows a key name only printable and bounded', async () => {
    const cases: Array<[string, string]> = [
      ['time\x1b[31mout', '"time\\u{1b}[31mout"'],
      ['api\nKey', '"api\\u{a}Key"'],
      ['key\u202eDir', '"key\\u{202e}Dir"; did you mean keyDir?'],
      ['timeout ', '"timeout\\u{20}"; did you mean timeout?'],
      ['', '""'],
      ['say "hi"', '"say\\u{20}\\u{22}hi\\u{22}"'],
      ['x'.repeat(10_000), `"${'x'.repeat(40)}…"`],
      ['y'.repeat(41), `"${'y'.repeat(40)}…"`],
      ['ключ', '"ключ"'],
    ];
    for (const [key, shown] of cases) {
      const message = await refusal(() => new SecureCompletionClient({ [key]: 1 } as never));
      expect(message).toBe(`SecureCompletionClient options: unknown option ${shown}`);
      expect(message).not.toMatch(/[\p{Cc}\p{Cf}]/u);
    }
  });

  it('refuses symbol keys and non-enumerable own keys; ignores inherited keys; allows undefined values', async () => {
    expect(await refusal(() => new SecureChatCompletion({ [Symbol('tag')]: 1 } as never))).toBe('SecureChatCompletion options: unknown option Symbol(tag)');
    expect(await refusal(() => createSecureFetch({ [Symbol()]: 1 } as never))).toBe('createSecureFetch options: unknown option Symbol("")');
    const hidden = Object.defineProperty({}, 'keyRotationIntervall', { value: 0, enumerable: false });
    expect(await refusal(() => new SecureCompletionClient(hidden))).toMatch(/unknown option keyRotationIntervall; did you mean keyRotationInterval\?$/);

    // Inherited keys are not options of this object (a prototype may hold anything).
    const inherited = new SecureCompletionClient(Object.assign(Object.create({ colour: 'red' }) as object, { routerUrl: ROUTER, fetch }));
    disposers.push(() => inherited.dispose());
    const undefinedValues: SecureChatCompletionOptions = { baseUrl: ROUTER, apiKey: undefined, serverKeyFingerprint: undefined, timeout: undefined, fetch };
    const withUndefined = new SecureChatCompletion(undefinedValues);
    disposers.push(() => withUndefined.dispose());
    // Past the options check, each call stops at its next check, before any I/O.
    await expect(withUndefined.create({ ...hello, security_tier: 'top' as never }, { signal: undefined, timeout: undefined, apiKey: undefined })).rejects.toThrow(/security_tier must be/);
    const pair = await lowLevel().generateKeys({ saveToFile: undefined, keyDir: undefined, password: undefined, keySize: 2048 });
    expect(pair.bits).toBe(2048);
  });

  it('refuses options that are not an object', async () => {
    const notObjects: unknown[] = [null, [], ['routerUrl'], 'https://router.invalid', 42, true, () => ({})];
    for (const value of notObjects) {
      expect(await refusal(() => new SecureCompletionClient(value as never))).toBe('SecureCompletionClient options must be an object');
      expect(await refusal(() => new SecureChatCompletion(value as never))).toBe('SecureChatCompletion options must be an object');
      expect(await refusal(() => createSecureFetch(value as never))).toBe('createSecureFetch options must be an object');
      expect(await refusal(() => lowLevel().generateKeys(value as never))).toBe('generateKeys options must be an object');
      expect(await refusal(() => lowLevel().sendSecureRequest(hello, 'id', value as never))).toBe('sendSecureRequest options must be an object');
      expect(await refusal(() => chat().create(hello, value as never))).toBe('create options must be an object');
    }
  });

  it('still checks values as before', async () => {
    expect(await refusal(() => new SecureChatCompletion({ timeout: -1 }))).toBe('timeout must be a positive number');
    expect(await refusal(() => createSecureFetch({ keySize: 1024 }))).toBe('keySize must be 2048, 3072 or 4096');
    expect(await refusal(() => chat().create(hello, { timeout: 0 }))).toBe('timeout must be a positive number');
  });
});

describe('createSecureFetch router and client options', () => {
  it('takes the router as baseUrl too, like SecureChatCompletion', () => {
    expect(createSecureFetch({ baseUrl: 'https://a.invalid:8443/' }).client.routerUrl).toBe('https://a.invalid:8443');
    expect(createSecureFetch({ routerUrl: 'https://b.invalid' }).client.routerUrl).toBe('https://b.invalid');
    expect(createSecureFetch({ baseUrl: 'https://c.invalid', routerUrl: 'https://c.invalid' }).client.routerUrl).toBe('https://c.invalid');
    expect(createSecureFetch({ baseUrl: 'https://d.invalid', routerUrl: undefined }).client.routerUrl).toBe('https://d.invalid');
    expect(() => createSecureFetch({ baseUrl: 'http://e.invalid' })).toThrow(/refusing plain http/);
  });

  it("an option given as undefined is not given: the SDK's timeout and retries stay the defaults", () => {
    for (const options of [{}, { timeout: undefined, maxRetries: undefined }]) {
      const { client } = createSecureFetch({ baseUrl: 'https://a.invalid', ...options });
      expect([client.timeout, client.maxRetries]).toEqual([600_000, 0]);
    }
  });

  it('refuses baseUrl and routerUrl that differ, without echoing them', async () => {
    const message = await refusal(() => createSecureFetch({ baseUrl: 'https://a.invalid', routerUrl: 'https://b.invalid' }));
    expect(message).toBe('createSecureFetch options: baseUrl and routerUrl both name the router but differ; give one');
  });

  it('refuses client options next to a given client, which would ignore them', async () => {
    const client = lowLevel();
    const message = await refusal(() => createSecureFetch({ client, baseUrl: ROUTER, keySize: 2048, keyPassword: SECRET }));
    expect(message).toBe('createSecureFetch options: with client given, keySize, keyPassword, baseUrl would be ignored; set them on that client instead');
    expect(await refusal(() => createSecureFetch({ client, maxRetries: 0 }))).toMatch(/with client given, maxRetries would be ignored/);
    // What the fetch itself uses, and unset client options, are fine.
    const ok = createSecureFetch({ client, apiKey: 'sk-x', securityTier: 'high', routerUrl: undefined });
    expect(ok.client).toBe(client);
  });
});

describe('option key lists', () => {
  it('match their interfaces (the compiler checks both ways; this shows what it refuses)', () => {
    // @ts-expect-error a key the interface lacks
    optionKeys<RequestOptions>()(['signal', 'timeout', 'apiKey', 'timeOut']);
    // @ts-expect-error a key of the interface left out
    optionKeys<RequestOptions>()(['signal', 'timeout']);
    expect(optionKeys<RequestOptions>()(['signal', 'timeout', 'apiKey'])).toEqual(['signal', 'timeout', 'apiKey']);
    // Every key of the client's options is accepted by the clients built on it.
    const all: Required<SecureCompletionClientOptions> = Object.fromEntries(CLIENT_OPTION_KEYS.map((k) => [k, undefined])) as never;
    const { routerUrl: _, ...chatOptions } = all;
    const fetchOptions: SecureFetchOptions = { ...all, baseUrl: ROUTER };
    const clients = [
      new SecureCompletionClient({ ...all, routerUrl: ROUTER }),
      new SecureChatCompletion({ ...chatOptions, baseUrl: ROUTER }).client,
      createSecureFetch(fetchOptions).client,
    ];
    expect(clients.map((c) => c.routerUrl)).toEqual([ROUTER, ROUTER, ROUTER]);
    disposers.push(...clients.map((c) => () => c.dispose()));
  });

  it('suggests by case, separators, then edit distance within bounds', () => {
    const allowed = ['timeout', 'keySize', 'apiKey', 'fetch'];
    expect(closestOption('TIMEOUT', allowed)).toBe('timeout');
    expect(closestOption('key-size', allowed)).toBe('keySize');
    expect(closestOption('timeuot', allowed)).toBe('timeout'); // swapped neighbours: one edit
    expect(closestOption('tmeot', allowed)).toBe('timeout'); // two edits in seven letters
    expect(closestOption('tmet', allowed)).toBeUndefined(); // three
    expect(closestOption('fech', allowed)).toBe('fetch'); // one edit in five letters
    expect(closestOption('fh', allowed)).toBeUndefined();
    expect(closestOption('x'.repeat(100_000), allowed)).toBeUndefined();
    expect(() => refuseUnknownOptions({ a: 1 }, ['a'], 'x')).not.toThrow();
  });
});
