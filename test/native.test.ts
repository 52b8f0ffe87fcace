import { describe, expect, it } from 'vitest';
import { native } from '../src/native.js';
import { OP_NAMES } from '../src/plan/ops.js';
import { BEST_ISA } from './helpers/isas.js';

describe('addon', () => {
  it('lists the same ops as the TypeScript mirror, in order', () => {
    expect(native.opNames()).toEqual([...OP_NAMES]);
  });
  it('switches the kernel set at run time and refuses unknown names', () => {
    const before = native.activeIsa();
    native.setIsa('scalar');
    expect(native.activeIsa()).toBe('scalar');
    native.setIsa('auto');
    expect(native.activeIsa()).toBe(BEST_ISA);
    const f = native.cpuFeatures();
    const want = !(f.avx2 && f.fma && f.f16c) ? 'scalar'
      : f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni ? 'avx512vnni' : f.avxvnni ? 'avxvnni' : 'avx2';
    expect(BEST_ISA).toBe(want);
    expect(() => native.setIsa('avx512' as never)).toThrow(/unknown isa 'avx512'/);
    native.setIsa(before);
  });
});
