/**
 * Node's Buffer, where the runtime has one (Node, Bun): core has no Node imports, so it is found on
 * globalThis, and used only where it is faster than the portable way beside it (memchr for a byte,
 * base64, UTF-8 lengths, latin1 text). Undefined elsewhere (browsers, Deno, workers).
 */

/** The part of a Buffer used in core: a Uint8Array with these methods. */
export interface NodeBufferView {
  readonly length: number;
  toString(encoding: 'base64' | 'latin1', start?: number, end?: number): string;
  write(text: string, offset: number, encoding: 'base64' | 'latin1'): number;
  indexOf(value: number, byteOffset?: number): number;
}

export interface NodeBufferStatic {
  from(data: ArrayBufferLike, byteOffset: number, length: number): NodeBufferView;
  byteLength(text: string, encoding: 'utf8'): number;
  prototype: { indexOf(value: number, byteOffset?: number): number };
}

export const NodeBuffer = (globalThis as { Buffer?: NodeBufferStatic }).Buffer;

/** `bytes[start, end)` as a Buffer: a view, no copy. Only where {@link NodeBuffer} is defined. */
export function bufferView(bytes: Uint8Array, start = 0, end = bytes.length): NodeBufferView {
  return NodeBuffer!.from(bytes.buffer, bytes.byteOffset + start, end - start);
}
