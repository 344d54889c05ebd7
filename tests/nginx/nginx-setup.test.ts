/**
 * Finding nginx (scripts/system-packages.mjs): where the nginx tests look for it, and the message a
 * missing nginx fails them with. What the quickstart installs: tests/repository/system-packages.test.ts.
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNeed } from '../../scripts/system-packages.mjs';
import { startNginx } from './nginx.js';

let emptyBin: string; // a PATH with no nginx on it

beforeAll(async () => {
  emptyBin = await mkdtemp(path.join(tmpdir(), 'nomyo-nonginx-'));
});
afterAll(async () => {
  await rm(emptyBin, { recursive: true, force: true });
});

describe('a missing nginx', () => {
  it('fails the nginx tests with the install command and the variable to set', async () => {
    const saved = process.env.NOMYO_NGINX;
    const nowhere = path.join(emptyBin, 'nginx');
    process.env.NOMYO_NGINX = nowhere;
    try {
      const start = startNginx({ router: 'http://127.0.0.1:1', tls: { certFile: nowhere, keyFile: nowhere } });
      await expect(start).rejects.toThrow(`nginx is needed by the nginx tests: NOMYO_NGINX=${nowhere} is not an executable file. Install it with \``);
      await expect(start).rejects.toThrow(/apt-get update && (sudo )?apt-get install -y nginx`/);
    } finally {
      if (saved === undefined) delete process.env.NOMYO_NGINX;
      else process.env.NOMYO_NGINX = saved;
    }
  });

  it('is looked for on PATH, then where Debian puts it (/usr/sbin is not on a user’s PATH)', () => {
    const found = findNeed('nginx', { PATH: emptyBin });
    let debian = true;
    try {
      accessSync('/usr/sbin/nginx', constants.X_OK);
    } catch {
      debian = false;
    }
    if (debian) expect(found).toMatchObject({ problem: undefined, paths: { nginx: '/usr/sbin/nginx' } });
    else expect(found.problem).toContain('nginx not found (looked for nginx, /usr/sbin/nginx; NOMYO_NGINX=/path/to/it');
  });

  it('is found through its variable, even off PATH', () => {
    const found = findNeed('nginx', { PATH: emptyBin, NOMYO_NGINX: process.execPath });
    expect(found).toMatchObject({ problem: undefined, paths: { nginx: process.execPath } });
  });
});
