/** Kernel sets (native/core/cpu.cc), each adding to the one before: avx512vnni runs the int8 GEMM on
 * AVX-512 VNNI. No addon is loaded here, so CLI option parsing can use it. */
export type IsaName = 'scalar' | 'avx2' | 'avx512vnni';
/** A kernel set or 'auto' (the best the CPU has). */
export type IsaOption = IsaName | 'auto';
export const ISA_OPTIONS: readonly IsaOption[] = ['auto', 'scalar', 'avx2', 'avx512vnni'];
