/**
 * WebKit through WebKitWebDriver, the W3C WebDriver server of WebKitGTK, driving its MiniBrowser.
 * WebKitGTK has no headless mode: MiniBrowser draws into a private Xvfb display. The protocol is
 * plain JSON over HTTP, spoken here with fetch. An automation session is ephemeral in WebKit (no
 * profile on disk); the XDG directories still point at a temporary folder so nothing lands in HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Engine, PageDriver } from './engines.js';
import { freePort } from '@nomyo/test-support/ports';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'; // the W3C WebDriver element reference key

export async function launchWebKit(paths: { WebKitWebDriver: string; MiniBrowser: string; Xvfb: string }): Promise<Engine> {
  const home = await mkdtemp(path.join(tmpdir(), 'nomyo-webkit-'));
  const processes: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.reverse().map(stopProcess));
    await rm(home, { recursive: true, force: true });
  };
  try {
    const xvfb = spawn(paths.Xvfb, ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x800x24'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    processes.push(collectStderr(xvfb));
    const display = await firstLine(xvfb, 3, 'Xvfb');
    const port = await freePort();
    const driver = spawn(paths.WebKitWebDriver, [`--port=${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        DISPLAY: `:${display}`,
        GDK_BACKEND: 'x11',
        NO_AT_BRIDGE: '1', // no accessibility bus to wait for
        XDG_CACHE_HOME: path.join(home, 'cache'),
        XDG_CONFIG_HOME: path.join(home, 'config'),
        XDG_DATA_HOME: path.join(home, 'data'),
      },
    });
    processes.push(collectStderr(driver));
    const base = `http://127.0.0.1:${port}`;
    await waitForDriver(base, driver);
    const session = (await command(base, 'POST', '/session', {
      // acceptInsecureCerts: the nginx in front of a router (HTTP/2 needs TLS) shows the test's own certificate.
      capabilities: { alwaysMatch: { acceptInsecureCerts: true, 'webkitgtk:browserOptions': { binary: paths.MiniBrowser, args: ['--automation'] } } },
    })) as { sessionId: string; capabilities: { browserVersion: string } };
    const url = `${base}/session/${session.sessionId}`;
    await command(url, 'POST', '/timeouts', { script: 120_000, pageLoad: 30_000 });

    let pageOpen = false;
    return {
      name: 'webkit',
      version: `WebKitGTK ${session.capabilities.browserVersion}`,
      newPage: async () => {
        // One session has one window: pages take turns in it (the tests open one at a time).
        if (pageOpen) throw new Error('the WebKit driver has one page at a time');
        pageOpen = true;
        return webDriverPage(url, () => (pageOpen = false));
      },
      close: async () => {
        await command(url, 'DELETE', '').catch(() => undefined);
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function webDriverPage(session: string, onClose: () => void): PageDriver {
  const find = async (selector: string) => {
    const found = (await command(session, 'POST', '/element', { using: 'css selector', value: selector })) as Record<string, string>;
    return `/element/${found[ELEMENT]}`;
  };
  const evaluate = async <A extends unknown[], T>(fn: (...args: A) => T | Promise<T>, ...args: A): Promise<T> => {
    const script =
      'const done = arguments[arguments.length - 1];' +
      `Promise.resolve().then(() => (${fn.toString()}).apply(null, Array.prototype.slice.call(arguments, 0, -1)))` +
      '.then((value) => done({ value }), (e) => done({ error: `${e}\\n${e && e.stack}` }));';
    const result = (await command(session, 'POST', '/execute/async', { script, args })) as { value: T; error?: string };
    if (result.error !== undefined) throw new Error(`in the page: ${result.error}`);
    return result.value;
  };
  return {
    goto: async (url) => {
      await command(session, 'POST', '/url', { url });
      // WebDriver has no error events: the page collects its own, from here on.
      await evaluate(() => {
        const errors: string[] = ((globalThis as unknown as { nomyoErrors: string[] }).nomyoErrors = []);
        addEventListener('error', (e) => errors.push(`pageerror: ${e.message}`));
        addEventListener('unhandledrejection', (e) => errors.push(`pageerror: ${String(e.reason)}`));
        const original = console.error;
        console.error = (...items: unknown[]) => (errors.push(`console: ${items.join(' ')}`), original(...items));
      });
    },
    fill: async (selector, value) => {
      const element = await find(selector);
      await command(session, 'POST', `${element}/clear`, {});
      await command(session, 'POST', `${element}/value`, { text: value });
    },
    click: async (selector) => void (await command(session, 'POST', `${await find(selector)}/click`, {})),
    evaluate,
    waitUntil: async (timeoutMs, fn, ...args) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await evaluate(fn, ...args))) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${fn.toString()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    errors: () => evaluate(() => [...((globalThis as unknown as { nomyoErrors?: string[] }).nomyoErrors ?? [])]),
    close: async () => {
      await command(session, 'POST', '/url', { url: 'about:blank' }).catch(() => undefined);
      onClose();
    },
  };
}

/** One WebDriver command; a WebDriver error becomes an Error with its name and message. */
async function command(base: string, method: string, route: string, body?: unknown): Promise<unknown> {
  const response = await fetch(base + route, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const { value } = (await response.json()) as { value: unknown };
  if (!response.ok) {
    const { error, message } = (value ?? {}) as { error?: string; message?: string };
    throw new Error(`WebKitWebDriver ${method} ${route || '/'}: ${error}: ${message}`);
  }
  return value;
}

async function waitForDriver(base: string, driver: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (driver.exitCode !== null) throw new Error(`WebKitWebDriver exited with code ${driver.exitCode}: ${stderrOf(driver)}`);
    const ready = await fetch(`${base}/status`).then((r) => r.ok, () => false);
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`WebKitWebDriver did not answer on ${base} within 30 s: ${stderrOf(driver)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// What a helper process wrote to stderr, for the error message when it fails to start.
const stderrText = new WeakMap<ChildProcess, string>();
function collectStderr(child: ChildProcess): ChildProcess {
  child.stderr?.on('data', (chunk: Buffer) => stderrText.set(child, ((stderrText.get(child) ?? '') + chunk.toString()).slice(-2000)));
  return child;
}
function stderrOf(child: ChildProcess): string {
  return (stderrText.get(child) ?? '').trim();
}

/** The first line a child writes to file descriptor `fd` (Xvfb -displayfd writes its display number there). */
function firstLine(child: ChildProcess, fd: number, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s: ${stderrOf(child)}`)), 30_000);
    (child.stdio[fd] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(text.trim());
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code}: ${stderrOf(child)}`));
    });
    child.once('error', reject);
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
