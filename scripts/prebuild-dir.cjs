// Where a prebuilt addon for this machine lives in the package: prebuilds/<platform>-<arch>[-<libc>]/.
// One file per platform is enough: the addon uses N-API only (ABI-stable across Node versions) and
// picks its kernel set at run time, so one x86-64 build serves every x86-64 CPU.
const path = require('node:path');

function libc() {
  if (process.platform !== 'linux') return '';
  const r = process.report?.getReport?.();
  return r && r.header && r.header.glibcVersionRuntime ? '-glibc' : '-musl';
}

module.exports = (root) => path.join(root, 'prebuilds', `${process.platform}-${process.arch}${libc()}`);
