'use strict'
// `install` and `build`: node-gyp-build loads a fitting prebuild or else runs `node-gyp rebuild`.
// node-gyp downloads Node's headers unless told where they are, and pnpm does not pass
// ~/.npmrc's nodedir on. When the running Node has its headers installed beside it
// (distro packages, official Unix tarballs), point node-gyp there: no download, exact version.
const { existsSync } = require('node:fs')
const path = require('node:path')

const prefix = path.dirname(path.dirname(process.execPath))
const headers = path.join(prefix, 'include', 'node')
if (
  !process.env.npm_config_nodedir &&
  process.platform !== 'win32' && // Windows also needs node.lib, which only the download has
  existsSync(path.join(headers, 'node_api.h')) &&
  existsSync(path.join(headers, 'common.gypi'))
) {
  process.env.npm_config_nodedir = prefix
}

require('node-gyp-build/bin.js')
