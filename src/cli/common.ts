// Shared CLI conventions (../shared/contract.md): one JSON object on the last stdout line with
// --json, progress and logs on stderr, a one-line error naming what is wrong, non-zero exit.
import os from 'node:os';
import type { Command } from 'commander';

export class CliError extends Error {}

/** Parses a positive integer flag; throws a CliError naming the flag. */
export function intOption(name: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new CliError(`--${name} must be an integer ≥ ${min}, got '${value}'`);
    return n;
  };
}

/** Parses a finite number flag ≥ min; throws a CliError naming the flag. */
export function numOption(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new CliError(`--${name} must be a number ≥ ${min}, got '${value}'`);
    return n;
  };
}

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length);
}

/** Adds the options every command shares. */
export function withCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON object on the last line of stdout')
    .option('--threads <n>', 'worker threads (default: all cores)', intOption('threads'), defaultThreads());
}

/** --require-integer, for every command that runs a model (contract). */
export function withRequireInteger(cmd: Command): Command {
  return cmd.option('--require-integer', 'a QDQ model that cannot run integer-only is an error naming the node, op and reason (default: it runs as an fp32 simulation, and "plan" says so)');
}

/** The plan fields of a --json result: "plan", "blocked_by" when a QDQ model runs simulated, and
 *  "isa", the kernel set swinq's plans ran on (scalar | avx2 | avxvnni | avx512vnni: 1.5–3× apart in speed). */
export function planFields(p: { plan: string; blockedBy?: { node: string; op: string; reason: string }; isa?: string }): Record<string, unknown> {
  return { plan: p.plan, ...(p.blockedBy ? { blocked_by: p.blockedBy } : {}), ...(p.isa ? { isa: p.isa } : {}) };
}

/** Prints the result: JSON on the last stdout line, or a human summary. */
export function emit(json: boolean | undefined, result: Record<string, unknown>, human?: string): void {
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else process.stdout.write((human ?? JSON.stringify(result, null, 2)) + '\n');
}

/** Logs to stderr (never stdout, which carries the JSON result). */
export function log(msg: string): void {
  process.stderr.write(msg + '\n');
}
