/**
 * Overwrites the heap blocks in which the engine left copies of a private key it imported.
 *
 * Node.js's OpenSSL (3.0 in Node.js 20, 3.5 in 22 and 24) parses a PKCS#8 key with its decoders,
 * each reading the DER into a buffer of its own and freeing it without zeroing: 19 copies on
 * Node.js 20, 4 on 22 and 24, all on the importing thread, in blocks of the DER's size to a third
 * more. The allocator hands freed blocks of a size back to the next requests of that size, so
 * asking for zero-filled blocks of each size in that range, on the same thread, right after the
 * import, zeroes the blocks that held them (glibc's malloc; another allocator may hand out others:
 * best effort, and a no-op where the engine left nothing). Copies made on the thread pool, when a
 * new key is exported to be saved, are in that thread's heap, out of reach here. (node:crypto's
 * AES-GCM frees a copy of each piece it decrypts: crypto/gcm/node.ts overwrites those the same way.)
 */

/** Step between the sizes asked for: the allocator's block granularity (16 bytes on 64-bit glibc). */
const BLOCK_GRANULARITY = 16;

/**
 * Asks for a zero-filled block of every size from `derBytes` to twice that (the engine's read
 * buffers grow to about 4/3 of what they read), and lets them go. About 0.1 MiB for a 4096-bit key.
 */
export function overwriteFreedKeyCopies(derBytes: number): void {
  const blocks: ArrayBuffer[] = [];
  for (let size = derBytes; size <= 2 * derBytes; size += BLOCK_GRANULARITY) blocks.push(new ArrayBuffer(size));
  blocks.length = 0;
}
