/** Types for system-packages.mjs, so TypeScript tests can import it. */
export type NeedName = 'chromium' | 'firefox' | 'webkit' | 'nginx';

export interface Program {
  name: string;
  /** The variable that points the tests at another copy, e.g. NOMYO_FIREFOX. */
  env: string;
  candidates(): string[];
  aptPackage: string;
}

export interface Need {
  title: string;
  /** Which tests need it, e.g. "the nginx tests". */
  usedBy: string;
  programs: Program[];
}

export const NEEDS: Record<NeedName, Need>;
export const NEED_NAMES: NeedName[];

export interface FoundNeed<N extends NeedName = NeedName> {
  name: N;
  title: string;
  /** Program name (e.g. "chromium", "WebKitWebDriver", "nginx") -> its path, for the programs found. */
  paths: Record<string, string>;
  /** What is missing and how to install it, or undefined when nothing is. */
  problem: string | undefined;
}

export function aptInstallCommand(packages: string[], root?: boolean): string;
export function findNeed<N extends NeedName>(name: N, env?: NodeJS.ProcessEnv): FoundNeed<N>;
export function setUpSystemPackages(options?: {
  /** The needs to set up; default all. */
  names?: NeedName[];
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  root?: boolean;
  run?: (file: string, args: string[], env: NodeJS.ProcessEnv) => void;
}): string[];
/** setUpSystemPackages, then prints what is still missing; whether everything is there. */
export function systemPackagesStep(): boolean;
