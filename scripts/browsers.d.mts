/** Types for browsers.mjs, so TypeScript tests can import it. */
import type { FoundNeed, Need } from './system-packages.mjs';

export type { Program } from './system-packages.mjs';
export type EngineName = 'chromium' | 'firefox' | 'webkit';

export const ENGINES: Record<EngineName, Need>;
export const ENGINE_NAMES: EngineName[];

export type FoundEngine = FoundNeed<EngineName>;

export function aptInstallCommand(packages: string[], root?: boolean): string;
export function findEngine(name: EngineName, env?: NodeJS.ProcessEnv): FoundEngine;
