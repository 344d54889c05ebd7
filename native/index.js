'use strict'
// CommonJS so node-gyp-build can find the binary next to __dirname; every export is
// a plain `exports.name =` assignment so `import('@nomyo/native')` gets named exports.
// All argument checks live here; the native layer trusts what it is given.

const binding = require('node-gyp-build')(__dirname)
const { version } = require('./package.json')

// The largest ArrayBuffer this Node.js can create.
const MAX_SIZE = require('buffer').constants.MAX_LENGTH

function checkView (view, fn) {
  if (!ArrayBuffer.isView(view)) {
    throw new TypeError(`${fn}: expected an ArrayBufferView (Uint8Array, Buffer, DataView, ...), got ${typeof view}`)
  }
}

// undefined when `view` is not backed by allocSecure, else whether it is locked.
function secureState (view) {
  return binding.allocationLocked(view.buffer)
}

/** Locks the pages covering `view` in RAM (reference-counted per page). False when the OS or its limit refuses. */
function lock (view) {
  checkView(view, 'lock')
  if (view.byteLength === 0) return true
  // A secure allocation keeps its own lock until free(); do not count it twice.
  const state = secureState(view)
  if (state !== undefined) return state
  return binding.lock(view)
}

/** Zeroes `view`, then unlocks the pages covering it (a secure allocation stays locked until free). */
function unlock (view) {
  checkView(view, 'unlock')
  if (view.byteLength === 0) return
  if (secureState(view) !== undefined) binding.zero(view)
  else binding.unlock(view)
}

/** Overwrites `view` with zeros in a way the compiler cannot remove. */
function zero (view) {
  checkView(view, 'zero')
  binding.zero(view)
}

/** A Uint8Array of `size` bytes outside the V8 heap: page-aligned, locked when possible, dump-excluded. */
function allocSecure (size) {
  if (typeof size !== 'number') throw new TypeError(`allocSecure: size must be a number, got ${typeof size}`)
  if (!Number.isInteger(size) || size < 1 || size > MAX_SIZE) {
    throw new RangeError(`allocSecure: size must be an integer from 1 to ${MAX_SIZE}, got ${size}`)
  }
  return new Uint8Array(binding.alloc(size))
}

/**
 * Zeroes, unlocks and unmaps an allocSecure buffer now, detaching it (every view drops to length 0).
 * Any other view is only zeroed. Returns whether a secure allocation was freed.
 */
function free (view) {
  checkView(view, 'free')
  if (view.byteLength === 0) return false
  if (binding.free(view.buffer)) return true
  binding.zero(view)
  return false
}

/** Whether `view` is backed by an allocSecure buffer whose pages are locked. */
function isLocked (view) {
  checkView(view, 'isLocked')
  return secureState(view) === true
}

/** Whether `view` is backed by a live allocSecure buffer (locked or not). */
function isSecure (view) {
  checkView(view, 'isSecure')
  return secureState(view) !== undefined
}

/** What this process can do right now. */
function protectionInfo () {
  const info = binding.protectionInfo()
  return { platform: process.platform, ...info }
}

exports.version = version
exports.lock = lock
exports.unlock = unlock
exports.zero = zero
exports.allocSecure = allocSecure
exports.free = free
exports.isLocked = isLocked
exports.isSecure = isSecure
exports.protectionInfo = protectionInfo
