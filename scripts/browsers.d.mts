/** Types for browsers.mjs, so TypeScript tests can import it. */
export type EngineName = 'chromium' | 'firefox' | 'webkit';

export interface Program {
  name: string;
  /** The variable that points the tests at another copy, e.g. NOMYO_FIREFOX. */
  env: string;
  candidates(): string[];
  aptPackage: string;
}

export const ENGINES: Record<EngineName, { title: string; programs: Program[] }>;
export const ENGINE_NAMES: EngineName[];

export interface FoundEngine {
  name: EngineName;
  title: string;
  /** Program name (e.g. "chromium", "WebKitWebDriver") -> its path, for the programs found. */
  paths: Record<string, string>;
  /** What is missing and how to install it, or undefined when nothing is. */
  problem: string | undefined;
}

export function aptInstallCommand(packages: string[], root?: boolean): string;
export function findEngine(name: EngineName, env?: NodeJS.ProcessEnv): FoundEngine;
export function setUpBrowsers(options?: {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  root?: boolean;
  run?: (file: string, args: string[], env: NodeJS.ProcessEnv) => void;
}): string[];
/** setUpBrowsers, then prints what is still missing; whether every engine is there. */
export function browserStep(): boolean;
