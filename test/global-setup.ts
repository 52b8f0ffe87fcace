// Builds dist/ from src/ once, before any test file runs. Several suites test the built CLI (the
// real binary a user runs); when each built it for itself, parallel tsc runs rewrote files another
// suite was executing. A type error fails the whole run here, once, with tsc's message.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'pipe' });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? e);
    throw new Error(`tsc failed, so dist/ (the built CLI the tests run) is not trustworthy:\n${out.slice(0, 4000)}`);
  }
}
