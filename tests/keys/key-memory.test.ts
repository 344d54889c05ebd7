/**
 * A client's private key leaves nothing behind in its process once loaded or saved: neither its
 * PEM's base64 nor pieces of its PKCS#8 DER are anywhere in the process's memory (Linux:
 * /proc/PID/mem, read by this process, its parent), however the key came: a key file in the clear,
 * one encrypted with a password, or a pair made and saved by the client.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { countInMemory } from '@nomyo/test-support/secrets';
import { KEYFILES_DIR, startTestServer, withTempDir } from './support.js';

const CLIENT = fileURLToPath(new URL('./fixtures/key-dir-client.mjs', import.meta.url));
const IMPORT_AND_STOP = fileURLToPath(new URL('./fixtures/import-and-stop.mjs', import.meta.url));
const PASSWORD = 'correct horse battery';

/** What no memory may hold: each base64 line of the PEM in the clear, and 24-byte pieces of its DER past the modulus. */
function secretsOf(pem: string, passphrase?: string): Uint8Array[] {
  const der = createPrivateKey({ key: pem, passphrase }).export({ type: 'pkcs8', format: 'der' });
  const clearPem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
  const lines = clearPem.split('\n').filter((l) => l.length === 64).map((l) => Buffer.from(l, 'latin1'));
  const pieces = [];
  for (let at = 300; at + 24 <= der.length; at += 150) pieces.push(der.subarray(at, at + 24));
  return [...lines, ...pieces];
}

/** 24-byte pieces of a key's PKCS#8 DER from its second quarter on (past a 4096-bit modulus, which is public). */
function derPieces(pem: string): Buffer[] {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  const pieces = [];
  for (let at = Math.round(der.length / 4); at + 24 <= der.length; at += 150) pieces.push(der.subarray(at, at + 24));
  return pieces;
}

/** Resolves once `pid` has stopped itself (state T in /proc/PID/stat). */
async function stopped(pid: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    if (state === 'T') return;
    if (state === 'Z' || tries > 500) throw new Error(`the child never stopped (state ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The key-dir client run on `dir`, its memory searched once it is ready, for `secrets()` (read then) and its control. */
async function searchClient(server: NomyoServer, dir: string, password: string | undefined, secrets: () => Uint8Array[]) {
  const child = spawn(process.execPath, [CLIENT, server.url, dir], { env: { ...process.env, KEY_PASSWORD: password ?? '' } });
  try {
    let stderr = '';
    child.stderr.on('data', (part: Buffer) => (stderr += part.toString()));
    await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the client exited with ${code}: ${stderr}`)));
    });
    const needles = secrets();
    const counts = countInMemory(child.pid!, [...needles, Buffer.from(`control-${child.pid}-1`)]);
    return { secrets: counts.slice(0, -1), control: counts.at(-1)!, expected: needles.map(() => 0) };
  } finally {
    child.kill('SIGKILL');
  }
}

describe.runIf(process.platform === 'linux')("a client's private key, in its process's memory once used", () => {
  it.each([
    ['a key file in the clear', 'plain.pem', undefined],
    ['a key file encrypted with a password (PBES2)', 'openssl-pbkdf2-sha256-100k.pem', PASSWORD],
  ])('%s: neither its PEM nor its DER is left', async (_, file, password) => {
    const server = await startTestServer();
    try {
      await withTempDir(async (dir) => {
        copyFileSync(join(KEYFILES_DIR, file), join(dir, 'private_key.pem'));
        copyFileSync(join(KEYFILES_DIR, 'public.pem'), join(dir, 'public_key.pem'));
        const found = await searchClient(server, dir, password, () => secretsOf(readFileSync(join(KEYFILES_DIR, file), 'utf8'), password));
        expect(found.control).toBeGreaterThan(0);
        expect(found.secrets).toEqual(found.expected);
      });
    } finally {
      await server.close();
    }
  });

  // Node.js's OpenSSL frees the buffers its decoders read a PKCS#8 key into without zeroing them (19
  // copies on Node.js 20): without memory/freed-copies.ts, 7 runs of 8 found one.
  it('importing a private key (a key file, the router\'s key) leaves no copy of its DER in freed memory', async () => {
    const file = join(KEYFILES_DIR, 'plain.pem');
    const pieces = derPieces(readFileSync(file, 'utf8'));
    for (let run = 0; run < 3; run++) {
      const child = spawn(process.execPath, [IMPORT_AND_STOP, file], { stdio: ['ignore', 'ignore', 'inherit'] });
      try {
        await stopped(child.pid!);
        expect(countInMemory(child.pid!, pieces)).toEqual(pieces.map(() => 0));
      } finally {
        child.kill('SIGKILL');
      }
    }
  });

  it('a pair the client made and saved in the clear: neither its PEM nor its DER is left', async () => {
    const server = await startTestServer();
    try {
      await withTempDir(async (dir) => {
        const found = await searchClient(server, dir, undefined, () => secretsOf(readFileSync(join(dir, 'private_key.pem'), 'utf8')));
        expect(found.control).toBeGreaterThan(0);
        expect(found.secrets).toEqual(found.expected);
      });
    } finally {
      await server.close();
    }
  });
});
