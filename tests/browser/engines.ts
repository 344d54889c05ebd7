/**
 * The browser engines the tests drive, behind one small interface: Chromium (DevTools protocol) and
 * Firefox (WebDriver BiDi) through puppeteer-core, WebKit through WebKitWebDriver (webkit.ts).
 * Each uses the machine's own browser (scripts/browsers.mjs finds it; no browser download of its
 * own). A missing engine is a failure whose message has the install command, never a skip.
 */
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { findEngine, type EngineName } from '../../scripts/browsers.mjs';
import { launchWebKit } from './webkit.js';

export type { EngineName };

/** One page (tab or window) of an engine. Functions handed to evaluate/waitUntil run in the page: no closures. */
export interface PageDriver {
  goto(url: string): Promise<void>;
  /** Replaces a form field's value by typing, as a user would. */
  fill(selector: string, value: string): Promise<void>;
  click(selector: string): Promise<void>;
  evaluate<A extends unknown[], T>(fn: (...args: A) => T | Promise<T>, ...args: A): Promise<T>;
  /** Resolves once `fn(...args)` returns a truthy value in the page; rejects after `timeoutMs`. */
  waitUntil<A extends unknown[]>(timeoutMs: number, fn: (...args: A) => unknown, ...args: A): Promise<void>;
  /** Uncaught errors and console errors the page reported so far. */
  errors(): Promise<string[]>;
  close(): Promise<void>;
}

export interface Engine {
  name: EngineName;
  /** e.g. "Chrome/156.0.8078.114", "firefox/153.8.0", "WebKitGTK 2.50.6". */
  version: string;
  newPage(): Promise<PageDriver>;
  close(): Promise<void>;
}

/** Starts an engine with a fresh profile. Throws the install command when it is not installed. */
export async function launchEngine(name: EngineName): Promise<Engine> {
  const found = findEngine(name);
  if (found.problem) throw new Error(found.problem);
  if (name === 'webkit') return launchWebKit(found.paths as { WebKitWebDriver: string; MiniBrowser: string; Xvfb: string });
  return launchPuppeteer(name, found.paths[name]!);
}

// Without these Chromium tries to reach Google services and stalls on a closed network.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];
// puppeteer's Firefox profile already turns off updates, remote settings and data reporting; these
// are the remaining background connections that can stall start-up on a closed network.
const FIREFOX_PREFS = {
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'toolkit.telemetry.enabled': false,
  'browser.region.network.url': '',
};

async function launchPuppeteer(name: 'chromium' | 'firefox', executablePath: string): Promise<Engine> {
  // puppeteer makes a fresh temporary profile for each launch and removes it on close.
  // acceptInsecureCerts: the nginx in front of a router (HTTP/2 needs TLS) shows the test's own certificate.
  const browser: Browser = await puppeteer.launch(
    name === 'chromium'
      ? { browser: 'chrome', executablePath, headless: true, args: CHROMIUM_ARGS, acceptInsecureCerts: true, timeout: 60_000 }
      : { browser: 'firefox', executablePath, headless: true, extraPrefsFirefox: FIREFOX_PREFS, acceptInsecureCerts: true, timeout: 60_000 },
  );
  return {
    name,
    version: await browser.version(),
    newPage: async () => puppeteerPage(await browser.newPage()),
    close: () => browser.close().catch(() => undefined),
  };
}

// puppeteer types page functions' arguments through its handle types; ours are plain JSON values.
type InPage = (...args: unknown[]) => unknown;

function puppeteerPage(page: Page): PageDriver {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${(err as Error).message}`));
  page.on('console', (msg) => msg.type() === 'error' && problems.push(`console: ${msg.text()}`));
  return {
    goto: async (url) => void (await page.goto(url, { timeout: 30_000 })),
    fill: (selector, value) => page.locator(selector).fill(value),
    click: (selector) => page.click(selector),
    evaluate: (fn, ...args) => page.evaluate(fn as InPage, ...args) as Promise<never>,
    waitUntil: async (timeoutMs, fn, ...args) => void (await page.waitForFunction(fn as InPage, { timeout: timeoutMs, polling: 50 }, ...args)),
    errors: async () => [...problems],
    close: () => page.close().catch(() => undefined),
  };
}
