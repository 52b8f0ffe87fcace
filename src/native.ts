// Loads the addon and types what it exports. The only TypeScript file that touches the binding
// directly; everything else imports `native` from here.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/ (vitest) and dist/ (the package) are both one level below the package root.
export const packageRoot = path.resolve(here, '..');

export interface CpuFeatures {
  avx2: boolean; fma: boolean; f16c: boolean; avx512f: boolean; avx512vnni: boolean; avxvnni: boolean;
}

/** The functions the addon exports. Binding files add theirs; keep this in step with native/binding/. */
export interface NativeBinding {
  cpuFeatures(): CpuFeatures;
  activeIsa(): 'scalar' | 'avx2';
  setIsa(isa: 'scalar' | 'avx2' | 'auto'): void;
  opNames(): string[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [name: string]: any;
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.SWINQ_ADDON,
    path.join(packageRoot, 'build', 'Release', 'swinq.node'),
    path.join(packageRoot, 'build', 'Debug', 'swinq.node'),
  ].filter((p): p is string => !!p);
  const errors: string[] = [];
  for (const p of candidates) {
    try {
      return require(p) as NativeBinding;
    } catch (e) {
      errors.push(`  ${p}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`swinq: could not load the native addon. Build it with \`npm run build:native\`.\n${errors.join('\n')}`);
}

export const native: NativeBinding = load();
