/**
 * The Node.js side of key handling, reached through the `#key-files` import (package.json
 * "imports", condition "node"). Browsers get `browser.ts` instead: keys stay in memory there.
 */
export { loadKeyFiles, saveKeyFiles, generateKeyFiles, keyFilePaths, KeyFileChangedError, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE } from './key-files.js';
export { openKeyDir, assertNoKeyPair } from './key-dir.js';
export { KnownRouters, KNOWN_ROUTERS_FILE } from './known-routers.js';
