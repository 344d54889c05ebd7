/** Types for serve.mjs, so TypeScript tests can import it. */
export interface ExampleServer {
  /** e.g. `http://127.0.0.1:8000`; open `${url}/?router=<router URL>`. */
  readonly url: string;
  close(): Promise<void>;
}

export function startExample(options?: { host?: string; port?: number; coreBundle?: string }): Promise<ExampleServer>;
