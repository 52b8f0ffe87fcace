import { describe, expect, it } from 'vitest';
import { native } from '../src/native.js';
import { OP_NAMES } from '../src/plan/ops.js';

describe('addon', () => {
  it('lists the same ops as the TypeScript mirror, in order', () => {
    expect(native.opNames()).toEqual([...OP_NAMES]);
  });
  it('switches the kernel set at run time and refuses unknown names', () => {
    const before = native.activeIsa();
    native.setIsa('scalar');
    expect(native.activeIsa()).toBe('scalar');
    native.setIsa('auto');
    expect(native.activeIsa()).toBe(native.cpuFeatures().avx2 && native.cpuFeatures().fma ? 'avx2' : 'scalar');
    expect(() => native.setIsa('avx512' as never)).toThrow(/unknown isa 'avx512'/);
    native.setIsa(before);
  });
});
