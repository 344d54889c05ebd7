/**
 * Where a secret may linger: in a string made while a key is read or written (strings cannot be
 * zeroed), or anywhere in a running process's memory (Linux).
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * 48 characters from inside the base64 of a PEM private key's last full lines (its primes and
 * CRT values), taken before anything is watched: what no string, and no memory, may hold once the
 * key has been read or written.
 */
export function secretPiece(pem: Uint8Array): string {
  const lines = Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1').split('\n').filter((l) => /^[A-Za-z0-9+/]{64}$/.test(l));
  return lines[lines.length - 3]!.slice(8, 56);
}

/** Every string `Buffer#toString` and `TextDecoder#decode` return while `fn` runs (in this process). */
export async function stringsMadeDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const made: string[] = [];
  const toString = Buffer.prototype.toString;
  const decode = TextDecoder.prototype.decode;
  Buffer.prototype.toString = function (this: Buffer, ...args: Parameters<Buffer['toString']>) {
    const s = toString.apply(this, args);
    made.push(s);
    return s;
  } as Buffer['toString'];
  TextDecoder.prototype.decode = function (this: TextDecoder, ...args: Parameters<TextDecoder['decode']>) {
    const s = decode.apply(this, args);
    made.push(s);
    return s;
  };
  try {
    await fn();
    return made;
  } finally {
    Buffer.prototype.toString = toString;
    TextDecoder.prototype.decode = decode;
  }
}

/**
 * How many times each of `needles` is in the readable memory of process `pid` (Linux:
 * /proc/PID/maps and /proc/PID/mem; this process may read its own children's).
 */
export function countInMemory(pid: number, needles: readonly Uint8Array[]): number[] {
  const counts = needles.map(() => 0);
  const mem = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n')) {
      const [range, perms] = line.split(' ') as [string, string];
      if (!perms.startsWith('r')) continue;
      const [start, end] = range.split('-').map((x) => BigInt(`0x${x}`)) as [bigint, bigint];
      const region = Buffer.alloc(Number(end - start));
      try {
        readSync(mem, region, 0, region.length, start);
      } catch {
        continue; // [vvar] and the like cannot be read
      }
      needles.forEach((needle, i) => {
        for (let at = region.indexOf(needle); at !== -1; at = region.indexOf(needle, at + 1)) counts[i]!++;
      });
    }
  } finally {
    closeSync(mem);
  }
  return counts;
}
