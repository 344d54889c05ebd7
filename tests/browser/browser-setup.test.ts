/**
 * Finding the browsers (scripts/browsers.mjs): the message a missing engine fails the browser tests
 * with. No browser is started, except to see it refused. What the quickstart installs:
 * tests/repository/system-packages.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEngine } from '../../scripts/browsers.mjs';
import { launchEngine } from './engines.js';

let emptyBin: string; // a PATH with no browser on it

beforeAll(async () => {
  emptyBin = await mkdtemp(path.join(tmpdir(), 'nomyo-nobrowser-'));
});
afterAll(async () => {
  await rm(emptyBin, { recursive: true, force: true });
});

describe('a missing browser', () => {
  it('fails the browser tests with the install command and the variable to set', async () => {
    const saved = process.env.NOMYO_FIREFOX;
    process.env.NOMYO_FIREFOX = path.join(emptyBin, 'firefox');
    try {
      await expect(launchEngine('firefox')).rejects.toThrow(
        `Firefox is needed by the browser tests: NOMYO_FIREFOX=${path.join(emptyBin, 'firefox')} is not an executable file. ` +
          'Install it with `',
      );
      await expect(launchEngine('firefox')).rejects.toThrow(/apt-get update && (sudo )?apt-get install -y firefox-esr`/);
    } finally {
      if (saved === undefined) delete process.env.NOMYO_FIREFOX;
      else process.env.NOMYO_FIREFOX = saved;
    }
  });

  it('names the programs looked for, the variable and the Debian packages', () => {
    const { problem } = findEngine('chromium', { PATH: emptyBin });
    expect(problem).toContain('chromium not found (looked for chromium, chromium-browser; NOMYO_CHROMIUM=/path/to/it');
    expect(problem).toMatch(/apt-get install -y chromium`/);
    expect(findEngine('webkit', { PATH: emptyBin }).problem).toMatch(/WebKitWebDriver not found .*NOMYO_WEBKIT_DRIVER.*Xvfb not found .*NOMYO_XVFB.*apt-get install -y webkit2gtk-driver xvfb`/);
  });

  it('is found through its variable, even off PATH', () => {
    const found = findEngine('chromium', { PATH: emptyBin, NOMYO_CHROMIUM: process.execPath });
    expect(found).toMatchObject({ problem: undefined, paths: { chromium: process.execPath } });
  });
});
