/**
 * The browser engines among the programs the tests take from the system (system-packages.mjs, which
 * lists them and installs them): what the browser tests launch, by engine name.
 * `node scripts/browsers.mjs` runs the quickstart's whole system-packages step, browsers and nginx.
 */
import { pathToFileURL } from 'node:url';
import { NEEDS, findNeed, systemPackagesStep } from './system-packages.mjs';

export { aptInstallCommand } from './system-packages.mjs';

/** The engines in the order the tests run them. */
export const ENGINE_NAMES = /** @type {const} */ (['chromium', 'firefox', 'webkit']);

/** Engine name -> the programs it needs (system-packages.mjs has where each is looked for). */
export const ENGINES = Object.fromEntries(ENGINE_NAMES.map((name) => [name, NEEDS[name]]));

/** An engine's programs and, when some are missing, the problem with the install command (see `findNeed`). */
export function findEngine(name, env = process.env) {
  if (!ENGINE_NAMES.includes(name)) throw new Error(`unknown browser engine ${name}; known: ${ENGINE_NAMES.join(', ')}`);
  return findNeed(name, env);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = systemPackagesStep() ? 0 : 1;
