// The kernel sets this CPU runs, for tests that compare every set with the scalar reference.
import { native, type IsaName } from '../../src/native.js';

const available = (isa: IsaName) => native.isaUnavailableReason(isa) === '';
/** The SIMD sets this CPU has, best last (empty without AVX2). */
export const SIMD_ISAS: IsaName[] = (['avx2', 'avxvnni', 'avx512vnni'] as const).filter(available);
/** 'scalar' and every SIMD set this CPU has. */
export const ALL_ISAS: IsaName[] = ['scalar', ...SIMD_ISAS];
/** What 'auto' picks: the best set this CPU has. */
export const BEST_ISA: IsaName = ALL_ISAS[ALL_ISAS.length - 1];
