// swinq fewbit FN --bits K [--domain LO,HI] [--weight uniform|normal] [--grid N] [--json]
// The optimal piecewise-constant approximation of FN′ (../shared/contract.md).
import type { Command } from 'commander';
import { CliError, emit, intOption, withCommon } from './common.js';
import { FEWBIT_FUNCTIONS, table, type FewbitBits, type FewbitFn, type FewbitOptions } from '../fewbit.js';

export interface FewbitCliOptions { bits: number; domain?: string; weight?: string; grid?: number; fold?: boolean; json?: boolean }

/** The command's result object (also used by tests in-process). */
export function fewbitResult(fn: string, o: FewbitCliOptions): Record<string, unknown> {
  if (!(FEWBIT_FUNCTIONS as readonly string[]).includes(fn)) {
    throw new CliError(`unknown function '${fn}' (expected one of ${FEWBIT_FUNCTIONS.join(', ')})`);
  }
  if (![1, 2, 3, 4].includes(o.bits)) throw new CliError(`--bits must be 1, 2, 3 or 4, got '${o.bits}'`);
  const weight = o.weight ?? 'uniform';
  if (weight !== 'uniform' && weight !== 'normal') throw new CliError(`--weight must be 'uniform' or 'normal', got '${weight}'`);
  const opts: FewbitOptions = { weight };
  if (o.domain !== undefined) {
    const parts = o.domain.split(',').map((s) => s.trim());
    const d = parts.map(Number);
    if (parts.length !== 2 || parts.some((s) => s === '') || !d.every(Number.isFinite) || !(d[0] < d[1])) {
      throw new CliError(`--domain must be LO,HI with finite LO < HI, got '${o.domain}'`);
    }
    opts.domain = [d[0], d[1]];
  }
  if (o.grid !== undefined) {
    if (o.grid < 16 || o.grid > 16384) throw new CliError(`--grid must be 16..16384, got '${o.grid}'`);
    opts.grid = o.grid;
  }
  if (o.fold) opts.fold = true;
  let t;
  try {
    t = table(fn as FewbitFn, o.bits as FewbitBits, opts);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  return {
    fn: t.fn, bits: t.bits, borders: t.borders, levels: t.levels, error: t.error,
    domain: t.domain, weight: t.weight, exact: t.exact, fold: t.fold, steps: t.steps, grid: t.grid,
  };
}

function human(r: Record<string, unknown>): string {
  const b = r.borders as number[];
  const l = r.levels as number[];
  const d = r.domain as number[];
  const lines = [`${r.fn} at ${r.bits} bit(s), ${r.weight} weight on [${d[0]}, ${d[1]}]${r.fold ? ', codes of |x|' : ''}: error ∫(f′−q)²w = ${(r.error as number).toExponential(6)}`];
  const steps = r.steps as number[];
  let code = 0;
  for (let i = 0; i <= b.length; i++) {
    const lo = i === 0 ? '-inf' : b[i - 1].toPrecision(8);
    const hi = i === b.length ? '+inf' : b[i].toPrecision(8);
    lines.push(`  (${lo}, ${hi}]  code ${code}  level ${l[code].toPrecision(8)}`);
    if (i < b.length) code += steps[i];
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  withCommon(
    program
      .command('fewbit')
      .argument('<fn>', `activation (${FEWBIT_FUNCTIONS.join(', ')})`)
      .description('optimal piecewise-constant approximation of FN′ for few-bit backward')
      .requiredOption('--bits <k>', 'bits per element, 1-4', intOption('bits'))
      .option('--domain <lo,hi>', 'domain of the objective (default -100,100 uniform, -10,10 normal)')
      .option('--weight <w>', 'uniform | normal', 'uniform')
      .option('--grid <n>', 'DP grid cells (default 4096)', intOption('grid'))
      .option('--fold', 'even f′ only: code |x| (all levels on one half-line)'),
  ).action((fn: string, o: FewbitCliOptions) => {
    const r = fewbitResult(fn, o);
    emit(o.json, r, human(r));
  });
}
