/** `nomyo keys ...`: create, inspect and re-protect the client's key files; trust a router's key. */
import { parseArgs } from 'node:util';
import { SecureCompletionClient } from '../client/secure-completion-client.js';
import { checkKeyPassword, checkKeySize, DEFAULT_KEY_DIR } from '../client/options.js';
import { fingerprintBase64, spkiFingerprint } from '../crypto/fingerprint.js';
import { encryptPrivateKeyPem, isEncryptedPem, readPrivateKeyPem } from '../crypto/pkcs8-pbes2.js';
import { derToPemBytes, pemToDer } from '../crypto/pem.js';
import type { Bytes } from '../crypto/subtle.js';
import { InvalidArgumentError, KeyFileError, SecurityError } from '../errors.js';
import { keyPairFromPkcs8 } from '../keys/key-material.js';
import { writeFileAtomic } from '../keys/files/atomic-write.js';
import { generateKeyFiles, keyFilePaths, loadKeyFiles, readKeyFile } from '../keys/files/key-files.js';
import { withKeyDirLock } from '../keys/files/dir-lock.js';
import { assertNoKeyPair, settleKeyDir } from '../keys/files/key-dir.js';
import { KnownRouters } from '../keys/files/known-routers.js';
import { checkKeyDirectory, checkManagedFile } from '../keys/files/safe-paths.js';
import { PLAIN_HTTP_RISK, plainHttpRefused, refusedArguments } from './arguments.js';
import { passwordFromEnv, promptHidden, promptNewPassword } from './password.js';

export const KEYS_USAGE = `usage: nomyo keys generate [--dir DIR] [--size 4096|3072|2048] [--password-env VAR | --no-password]
       nomyo keys fingerprint [--dir DIR | --url URL [--allow-http]]
       nomyo keys change-password [--dir DIR] [--password-env VAR] [--new-password-env VAR | --no-password]
       nomyo keys trust --url URL [--fingerprint FP] [--dir DIR] [--allow-http] [--allow-v1]
  DIR defaults to ${DEFAULT_KEY_DIR}. Passwords come from the environment variable named by
  --password-env (else NOMYO_KEY_PASSWORD) or a prompt without echo; never from the command line.
  trust: accept a router's current key for trust on first use (after it replaced its key). With
  --fingerprint, only if it is that key (the one its operator published): else nothing is stored.
  A router that spoke protocol 2 before and does not advertise it now is refused (an intermediary
  may strip it) unless --allow-v1 says its operator really turned protocol 2 off.`;

const OPTIONS = {
  dir: { type: 'string', default: DEFAULT_KEY_DIR },
  size: { type: 'string', default: '4096' },
  url: { type: 'string' },
  fingerprint: { type: 'string' },
  'allow-http': { type: 'boolean', default: false },
  'allow-v1': { type: 'boolean', default: false },
  'password-env': { type: 'string' },
  'new-password-env': { type: 'string' },
  'no-password': { type: 'boolean', default: false },
} as const;
type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

export async function keys(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  let values: Values;
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, strict: true }));
  } catch (err) {
    // Named by its kind only: what was typed may be a password (`generate hunter2`, `--password=…`).
    process.stderr.write(`nomyo keys: ${refusedArguments(err)}\n${KEYS_USAGE}\n`);
    return 2;
  }
  const trustOnly = values.fingerprint !== undefined ? '--fingerprint' : values['allow-v1'] ? '--allow-v1' : undefined;
  if (trustOnly !== undefined && command !== 'trust') {
    process.stderr.write(`nomyo keys: ${trustOnly} is for trust only\n${KEYS_USAGE}\n`);
    return 2;
  }
  // Only where --url is used: fingerprint and trust.
  const plainHttp = command === 'fingerprint' || command === 'trust' ? plainHttpRefused(values.url, values['allow-http'], PLAIN_HTTP_RISK.routerKey) : undefined;
  if (plainHttp) {
    process.stderr.write(`nomyo keys: ${plainHttp}\n`);
    return 2;
  }
  switch (command) {
    case 'generate':
      return generate(values);
    case 'fingerprint':
      return fingerprint(values);
    case 'change-password':
      return changePassword(values);
    case 'trust':
      return trust(values);
    default:
      process.stderr.write(`${KEYS_USAGE}\n`);
      return 2;
  }
}

/** The password protecting a new file: --no-password, --password-env, NOMYO_KEY_PASSWORD, else a prompt. */
async function newPassword(flag: '--password-env' | '--new-password-env', values: Values, fallbackEnv: boolean): Promise<string | undefined> {
  if (values['no-password']) return undefined;
  const envVar = values[flag.slice(2) as 'password-env' | 'new-password-env'];
  if (envVar !== undefined) return checkKeyPassword(passwordFromEnv(envVar, flag));
  const fromEnv = process.env.NOMYO_KEY_PASSWORD;
  if (fallbackEnv && fromEnv) return checkKeyPassword(fromEnv);
  return checkKeyPassword(await promptNewPassword('New password for the private key'));
}

/** The password of an existing file, asked for only when the file is encrypted. */
async function currentPassword(pem: Uint8Array, values: Values): Promise<string | undefined> {
  if (!isEncryptedPem(pem)) return undefined;
  if (values['password-env'] !== undefined) return passwordFromEnv(values['password-env'], '--password-env');
  return process.env.NOMYO_KEY_PASSWORD || (await promptHidden('Password of the private key: '));
}

async function generate(values: Values): Promise<number> {
  const bits = checkKeySize(Number(values.size));
  await assertNoKeyPair(values.dir);
  const password = await newPassword('--password-env', values, true);
  const pair = await generateKeyFiles(values.dir, bits, { password, exclusive: true });
  const { privateKeyPath, publicKeyPath } = keyFilePaths(values.dir);
  process.stderr.write(`wrote ${privateKeyPath} (RSA-${bits}, ${password ? 'encrypted' : 'NOT encrypted'}, 0600) and ${publicKeyPath} (0644)\n`);
  printFingerprint(pair.fingerprint);
  return 0;
}

async function fingerprint(values: Values): Promise<number> {
  if (values.url !== undefined) {
    const client = new SecureCompletionClient({ routerUrl: values.url, allowHttp: values['allow-http'], keyRotationInterval: 0 });
    try {
      const key = await client.fetchServerPublicKey();
      process.stderr.write(`router ${client.routerUrl}: RSA-${key.bits}\n`);
      printFingerprint(key.fingerprint);
    } finally {
      await client.dispose();
    }
    return 0;
  }
  const { privateKeyPath, publicKeyPath } = keyFilePaths(values.dir);
  const publicPem = await readKeyFile(publicKeyPath);
  if (publicPem) {
    printFingerprint(await spkiFingerprint(pemToDer(publicPem, 'PUBLIC KEY')));
    return 0;
  }
  // No public file: derive it from the private key (which may need its password).
  const privatePem = await readKeyFile(privateKeyPath);
  if (!privatePem) throw new KeyFileError(`no key pair in ${values.dir}`);
  const password = await currentPassword(privatePem, values);
  privatePem.fill(0);
  const pair = await loadKeyFiles(privateKeyPath, undefined, { password });
  printFingerprint(pair.fingerprint);
  return 0;
}

async function changePassword(values: Values): Promise<number> {
  const { privateKeyPath } = keyFilePaths(values.dir);
  // The checks every other use of a key directory makes: one others may write to is refused, and a
  // link in place of the key file is left as it is, never replaced by a file of ours.
  await checkKeyDirectory(values.dir);
  await checkManagedFile(privateKeyPath);
  // Bytes throughout, never text: a key stored in the clear would be a string, which cannot be zeroed.
  const pem = await readKeyFile(privateKeyPath);
  if (!pem) throw new KeyFileError(`no private key file at ${privateKeyPath}`);
  let pkcs8: Bytes | undefined;
  let next: string | Uint8Array | undefined;
  try {
    pkcs8 = await readPrivateKeyPem(pem, await currentPassword(pem, values));
    const pair = await keyPairFromPkcs8(pkcs8); // refuse to re-protect something that is not a usable key
    const password = await newPassword('--new-password-env', values, false);
    next = password === undefined ? derToPemBytes(pkcs8, 'PRIVATE KEY') : await encryptPrivateKeyPem(pkcs8, password);
    const written = next;
    // Written holding the directory's lock, and only over the file that was read: a client of this
    // directory may have rotated the key while the passwords were asked for.
    await withKeyDirLock(values.dir, async (stillHeld) => {
      const now = await readKeyFile(privateKeyPath);
      const unchanged = now?.equals(pem) === true;
      now?.fill(0);
      if (!unchanged) throw new KeyFileError(`${privateKeyPath} changed while the passwords were asked for (a client rotated its key?): run change-password again`);
      await stillHeld();
      await writeFileAtomic(privateKeyPath, written, 0o600);
      // The backup of a rotation cut off, a key given up under the old password, goes now too.
      await settleKeyDir(values.dir, pair, stillHeld);
    });
    process.stderr.write(`rewrote ${privateKeyPath} (${password ? 'encrypted' : 'NOT encrypted'}); the key itself is unchanged\n`);
  } finally {
    pem.fill(0);
    pkcs8?.fill(0);
    if (next instanceof Uint8Array) next.fill(0);
  }
  return 0;
}

async function trust(values: Values): Promise<number> {
  if (values.url === undefined) throw new InvalidArgumentError('trust needs --url URL');
  // A key the router presents is fetched under the pin, when one is given: a different one is refused.
  const expected = values.fingerprint === undefined ? {} : { serverKeyFingerprint: values.fingerprint };
  const client = new SecureCompletionClient({ routerUrl: values.url, allowHttp: values['allow-http'], keyRotationInterval: 0, ...expected });
  try {
    const key = await client.fetchServerPublicKey();
    const known = new KnownRouters(values.dir);
    const before = await known.get(client.routerUrl);
    const v2 = key.protocols.includes(2);
    // What an intermediary stripping X-Nomyo-Protocol would make of a re-trust: refused, nothing stored.
    const dropsV2 = !v2 && (await known.spokeV2(client.routerUrl));
    if (dropsV2 && !values['allow-v1']) {
      throw new SecurityError(
        `the router ${client.routerUrl} spoke protocol 2 before (remembered in ${known.location}), but its key response now does not ` +
          `advertise it: possibly an intermediary that strips X-Nomyo-Protocol; nothing was stored. If its operator really turned ` +
          `protocol 2 off, run trust again with --allow-v1.`,
      );
    }
    await known.set(client.routerUrl, key.fingerprint);
    if (v2) await known.rememberV2(client.routerUrl, key.fingerprint);
    if (dropsV2) await known.forgetV2(client.routerUrl);
    process.stderr.write(
      `${known.location}: ${client.routerUrl} now trusted with RSA-${key.bits} key${before && before !== key.fingerprint ? ` (replaces ${before})` : ''}, ` +
        `protocol ${v2 ? '2 advertised (a later answer without it is refused)' : `2 not advertised (v1 only${dropsV2 ? '; that it spoke 2 before is forgotten' : ''})`}\n`,
    );
    printFingerprint(key.fingerprint);
  } finally {
    await client.dispose();
  }
  return 0;
}

function printFingerprint(hex: string): void {
  process.stdout.write(`${hex}\n${fingerprintBase64(hex)}\n`);
}
