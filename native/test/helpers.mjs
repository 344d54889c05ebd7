import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const fixture = (name) => join(root, 'test', 'fixtures', name);
export const isLinux = process.platform === 'linux';

/** Locked memory of this process in bytes (Linux only). */
export function vmLck() {
  const m = /^VmLck:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Runs a fixture in a child Node.js and parses the JSON it prints last. */
export function runFixture(name, { prefix = [], nodeArgs = [], env = {} } = {}) {
  const argv = [...prefix, process.execPath, ...nodeArgs, fixture(name)];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${name} exited ${r.status} (${r.signal}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** Root holds CAP_IPC_LOCK, which ignores RLIMIT_MEMLOCK: drop it from the child's bounding set. */
export function lockLimitPrefix(bytes) {
  const prefix = ['prlimit', `--memlock=${bytes}:${bytes}`];
  const capEff = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const hasIpcLock = capEff && (BigInt(`0x${capEff[1]}`) & (1n << 14n)) !== 0n;
  if (!hasIpcLock) return prefix;
  if (!has('setpriv')) return undefined;
  return [...prefix, 'setpriv', '--bounding-set=-ipc_lock', '--inh-caps=-ipc_lock', '--'];
}

export function has(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}


/**
 * Whether this machine lets the tests expect locks to succeed: Linux (where VmLck can be read)
 * with at least `bytes` of RLIMIT_MEMLOCK. Elsewhere (macOS wired limits, Windows working
 * sets) the tests only check that results are consistent.
 */
export async function canLock(bytes) {
  const { protectionInfo } = await import('../index.js');
  const info = protectionInfo();
  return isLinux && info.locking && info.lockLimit >= bytes;
}
