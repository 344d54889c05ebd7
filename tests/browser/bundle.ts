/** Bundles @nomyo/core for browsers the way an app's bundler would: through its export conditions. */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const testsDir = fileURLToPath(new URL('..', import.meta.url));

export interface CoreBundle {
  code: string;
  /** Source files that went into the bundle, relative to the tests directory. */
  inputs: string[];
}

/** One ESM file with everything @nomyo/core exports. Fails if anything needs a Node built-in. */
export async function bundleCore(): Promise<CoreBundle> {
  const result = await build({
    stdin: { contents: "export * from '@nomyo/core';", resolveDir: testsDir, loader: 'js' },
    bundle: true,
    platform: 'browser', // "browser" export conditions; Node built-ins cannot be resolved
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}
