/**
 * `#key-files` outside Node.js: the same functions, each refusing clearly. Imports only types from
 * the Node module, so nothing of `node:*` reaches a browser bundle.
 */
import { InvalidArgumentError, KeyFileError } from '../../errors.js';
import type * as NodeKeyFiles from './node.js';

function unavailable(): never {
  throw new InvalidArgumentError('key files need Node.js, Bun or Deno (a file system); here keys stay in memory (drop keyDir, saveToFile and loadKeys)');
}

export const loadKeyFiles: typeof NodeKeyFiles.loadKeyFiles = async () => unavailable();
export const saveKeyFiles: typeof NodeKeyFiles.saveKeyFiles = async () => unavailable();
export const generateKeyFiles: typeof NodeKeyFiles.generateKeyFiles = async () => unavailable();
export const keyFilePaths: typeof NodeKeyFiles.keyFilePaths = () => unavailable();
/** Never thrown outside Node (nothing is written there): here so that `instanceof` checks hold. */
export class KeyFileChangedError extends KeyFileError {
  override name = 'KeyFileChangedError';
}
export const openKeyDir: typeof NodeKeyFiles.openKeyDir = async () => unavailable();
export const assertNoKeyPair: typeof NodeKeyFiles.assertNoKeyPair = async () => unavailable();
export const PRIVATE_KEY_FILE = 'private_key.pem';
export const PUBLIC_KEY_FILE = 'public_key.pem';
export const KNOWN_ROUTERS_FILE = 'known_routers.json';
export class KnownRouters {
  constructor() {
    unavailable();
  }
}
