/**
 * Finding the browsers (scripts/browsers.mjs): what the quickstart installs, and the message a
 * missing engine fails the browser tests with. No browser is started, except to see it refused.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aptInstallCommand, findEngine, setUpBrowsers } from '../../scripts/browsers.mjs';
import { launchEngine } from './engines.js';

let emptyBin: string; // a PATH with no browser on it
let aptBin: string; // a PATH with only an apt-get on it (never run: setUpBrowsers gets a recorder)

beforeAll(async () => {
  emptyBin = await mkdtemp(path.join(tmpdir(), 'nomyo-nobrowser-'));
  aptBin = await mkdtemp(path.join(tmpdir(), 'nomyo-apt-'));
  await writeFile(path.join(aptBin, 'apt-get'), '#!/bin/sh\nexit 1\n');
  await chmod(path.join(aptBin, 'apt-get'), 0o755);
});
afterAll(async () => {
  await rm(emptyBin, { recursive: true, force: true });
  await rm(aptBin, { recursive: true, force: true });
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

describe('the quickstart browser step', () => {
  it('as root with apt-get: updates once and installs the missing engines’ packages', () => {
    const commands: string[] = [];
    const problems = setUpBrowsers({ env: { PATH: aptBin }, root: true, log: () => {}, run: (file, args) => void commands.push([file, ...args].join(' ')) });
    expect(commands[0]).toBe('apt-get update -qq');
    expect(commands).toHaveLength(2);
    // MiniBrowser sits at a fixed path, not on PATH, so it may be there already; everything else is not.
    expect(commands[1]).toMatch(/^apt-get install -y -qq chromium firefox-esr webkit2gtk-driver xvfb$/);
    expect(problems).toHaveLength(3); // the recorder installed nothing: all three still missing
  });

  it('otherwise installs nothing and says what to install', () => {
    const commands: string[] = [];
    const problems = setUpBrowsers({ env: { PATH: aptBin }, root: false, log: () => {}, run: (file) => void commands.push(file) });
    expect(commands).toEqual([]);
    expect(problems.join('\n')).toMatch(/apt-get update && (sudo )?apt-get install -y chromium`/);
    // sudo in the command unless the reader is root already.
    expect(aptInstallCommand(['xvfb', 'webkit2gtk-driver', 'xvfb'], false)).toBe('sudo apt-get update && sudo apt-get install -y xvfb webkit2gtk-driver');
    expect(aptInstallCommand(['chromium'], true)).toBe('apt-get update && apt-get install -y chromium');
  });

  it('does not install over a variable that points nowhere', () => {
    const commands: string[] = [];
    const env = { PATH: `${aptBin}${path.delimiter}${process.env.PATH}`, NOMYO_CHROMIUM: path.join(emptyBin, 'chromium') };
    const problems = setUpBrowsers({ env, root: true, log: () => {}, run: (file) => void commands.push(file) });
    expect(problems).toEqual([expect.stringContaining('NOMYO_CHROMIUM=')]);
    expect(commands).toEqual([]); // Firefox and WebKit are installed on this machine: nothing to do
  });
});
