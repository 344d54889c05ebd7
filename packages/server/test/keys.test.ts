/** The server key file: generated once (0600), then the same key across restarts. */
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { secretPiece, stringsMadeDuring } from '@nomyo/test-support/secrets';
import { HEADERS, PATHS } from '@nomyo/core/protocol';
import { SecureChatCompletion } from '@nomyo/core';
import { createServer, startServer } from '../src/index.js';
import { createKeyFile, loadKeyFile } from '../src/keys.js';
import { CHAT, secureCompletion } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nomyo-server-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('keyFile', () => {
  it('is written 0600 when absent and reused after a restart', async () => {
    const keyFile = join(dir, 'nested', 'server.pem');
    const first = await startServer({ keyFile, keySize: 2048 });
    const fingerprint = first.fingerprint;
    await first.close();
    const written = readFileSync(keyFile, 'utf8');
    expect(written).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    if (process.platform !== 'win32') expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const second = await startServer({ keyFile, keySize: 2048 });
    try {
      expect(second.fingerprint).toBe(fingerprint);
      expect((await secureCompletion(second.url, CHAT)).completion.object).toBe('chat.completion');
    } finally {
      await second.close();
    }
    expect(readFileSync(keyFile, 'utf8')).toBe(written);
  });

  it('replicas that start at once on one absent key file all use the key the first of them wrote', async () => {
    const keyFile = join(dir, 'race', 'server.pem');
    const started = await Promise.allSettled(Array.from({ length: 4 }, () => startServer({ keyFile, keySize: 2048 })));
    const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    await Promise.all(servers.map((s) => s.close()));
    expect(started.map((s) => (s.status === 'rejected' ? String(s.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(new Set(servers.map((s) => s.fingerprint)).size).toBe(1);
    expect(readdirSync(join(dir, 'race'))).toEqual(['server.pem']); // nothing half written left
  });

  it('acceptKeyFiles: requests sealed to an accepted key open, v1 and v2, whole and streamed; only the key file\'s key is served', async () => {
    const oldFile = join(dir, 'rotation-old.pem');
    const old = await startServer({ keyFile: oldFile, keySize: 2048 });
    const [oldPem, oldFingerprint] = [old.publicKeyPem, old.fingerprint];
    await old.close();
    // A client that still holds the old key, as its cache would: the key response rewritten to it.
    const stale = async (input: string, init: RequestInit): Promise<Response> => {
      const res = await fetch(input, init);
      if (!input.endsWith(PATHS.publicKey)) return res;
      return new Response(oldPem, { status: 200, headers: { [HEADERS.protocol]: res.headers.get(HEADERS.protocol) ?? '' } });
    };
    const ask = (protocol: 1 | 2, server: { url: string }) => new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, keySize: 2048, protocol, maxRetries: 0, fetch: stale });
    const hi = { model: 'm', messages: [{ role: 'user', content: 'still here' }] };

    const rotated = await startServer({ keyFile: join(dir, 'rotation-new.pem'), keySize: 2048, acceptKeyFiles: [oldFile, oldFile] });
    try {
      expect(rotated.acceptedFingerprints).toEqual([oldFingerprint]);
      expect(await (await fetch(rotated.url + '/healthz')).json()).toMatchObject({ key_fingerprint: rotated.fingerprint, accepted_key_fingerprints: [oldFingerprint] });
      expect(await (await fetch(rotated.url + PATHS.publicKey)).text()).toBe(rotated.publicKeyPem);
      expect(rotated.fingerprint).not.toBe(oldFingerprint);
      for (const protocol of [1, 2] as const) {
        expect((await ask(protocol, rotated).create(hi)).choices[0]?.message.content).toBe('echo: still here');
      }
      let streamed = '';
      for await (const chunk of await ask(2, rotated).create({ ...hi, stream: true })) streamed += chunk.choices[0]?.delta.content ?? '';
      expect(streamed).toBe('echo: still here');
    } finally {
      await rotated.close();
    }
    // A served key also listed stays accepted once the router serves another (rotateKey).
    const both = await startServer({ keyFile: oldFile, acceptKeyFiles: [join(dir, 'rotation-new.pem'), oldFile] });
    try {
      const newFingerprint = both.acceptedFingerprints[0];
      expect(both.acceptedFingerprints).toEqual([newFingerprint]);
      await both.rotateKey();
      expect(both.acceptedFingerprints).toEqual([newFingerprint, oldFingerprint]);
      expect((await ask(2, both).create(hi)).choices[0]?.message.content).toBe('echo: still here');
    } finally {
      await both.close();
    }
    // Without it, the same client is refused.
    const alone = await startServer({ keyFile: join(dir, 'rotation-new.pem') });
    try {
      await expect(ask(2, alone).create(hi)).rejects.toMatchObject({ status: 400 });
    } finally {
      await alone.close();
    }
  });

  it('refuses key files it cannot use, with a message naming the file', async () => {
    const encrypted = join(dir, 'encrypted.pem');
    writeFileSync(encrypted, '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n');
    await expect(startServer({ keyFile: encrypted })).rejects.toThrow(/encrypted\.pem: encrypted key files are not supported; decrypt it with: openssl pkcs8 -in \S+encrypted\.pem -out plain\.pem$/);
    const pkcs1 = join(dir, 'pkcs1.pem');
    writeFileSync(pkcs1, '-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n');
    await expect(startServer({ keyFile: pkcs1 })).rejects.toThrow(/pkcs1\.pem: PKCS#1 key; convert it with: openssl pkcs8 -topk8 -nocrypt -in \S+pkcs1\.pem -out key\.pem$/);
    writeFileSync(pkcs1, '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n');
    await expect(startServer({ keyFile: pkcs1 })).rejects.toThrow(/pkcs1\.pem: PKCS#1 key, encrypted; convert it with/);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    await expect(startServer({ keyFile: junk })).rejects.toThrow(/junk\.pem: not an RSA private key/);
  });

  it.runIf(process.platform !== 'win32')('says so when other users may read or change the key file, and uses it; 0600 and a group\'s 0440 are quiet', async () => {
    const keyFile = join(dir, 'modes.pem');
    await (await startServer({ keyFile, keySize: 2048 })).close();
    for (const [mode, warned] of [[0o644, true], [0o620, true], [0o600, false], [0o440, false]] as const) {
      chmodSync(keyFile, mode);
      const warnings: string[] = [];
      const s = await startServer({ keyFile, onLog: (event) => event.level === 'warn' && warnings.push(event.message) });
      await s.close();
      expect(warnings, mode.toString(8)).toEqual(warned ? [`${keyFile} can be read or changed by other users (mode ${mode.toString(8)}), and it opens every request sent to this router: chmod 600 it (or 440 for a group of the router's own)`] : []);
    }
  });

  it('without a keyFile, keeps a generated key in memory', async () => {
    const s = await startServer({ keySize: 2048 });
    try {
      expect(await (await fetch(s.url + PATHS.publicKey)).text()).toBe(s.publicKeyPem);
    } finally {
      await s.close();
    }
  });
});

describe('options', () => {
  it('are checked before anything starts', () => {
    expect(() => createServer({ port: 70000 })).toThrow(RangeError);
    expect(() => createServer({ keySize: 1024 })).toThrow(/keySize/);
    expect(() => createServer({ bodyLimit: 0 })).toThrow(/bodyLimit/);
    expect(() => createServer({ upstream: 'ftp://x' })).toThrow(/upstream/);
    // Longer than a timer can wait: Node would wait 1 ms instead, and every upstream call time out.
    expect(() => createServer({ upstreamTimeoutMs: 2 ** 31 })).toThrow(/upstreamTimeoutMs must be an integer from 1 to 2147483647/);
  });

  it('say clearly when the server is used before listen()', () => {
    expect(() => createServer().url).toThrow(/listen/);
  });
});

describe('the key as bytes', () => {
  it('the key file (unencrypted) is written and read without the key becoming a string', async () => {
    const keyFile = join(dir, 'bytes', 'server.pem');
    let fingerprint = '';
    const writing = await stringsMadeDuring(async () => (fingerprint = (await createKeyFile(keyFile, 2048)).fingerprint));
    const needle = secretPiece(readFileSync(keyFile));
    expect(writing.filter((s) => s.includes(needle))).toEqual([]);
    let loaded = '';
    const reading = await stringsMadeDuring(async () => (loaded = (await loadKeyFile(keyFile)).fingerprint));
    expect(reading.length).toBeGreaterThan(0); // the watch sees strings (the public key's PEM)
    expect(reading.filter((s) => s.includes(needle))).toEqual([]);
    expect(loaded).toBe(fingerprint);
  });
});
