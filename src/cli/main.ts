#!/usr/bin/env node
// swinq command line. Each command lives in its own file and exports `register(program)`.
import { Command, CommanderError } from 'commander';
import { CliError } from './common.js';

const COMMANDS: Array<() => Promise<{ register(p: Command): void }>> = [
  // one line per command file (keep sorted by command name)
  () => import('./bench.js'),
  () => import('./bench_kernels.js'),
  () => import('./calibrate.js'),
  () => import('./demo.js'),
  () => import('./distill.js'),
  () => import('./eval.js'),
  () => import('./fewbit.js'),
  () => import('./init.js'),
  () => import('./profile.js'),
  () => import('./run.js'),
  () => import('./serve.js'),
  () => import('./train.js'),
];

async function main(argv: string[]): Promise<void> {
  const program = new Command('swinq')
    .description('integer-only vision-transformer inference, calibration and training')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const load of COMMANDS) (await load()).register(program);
  await program.parseAsync(argv);
}

main(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`swinq: ${msg.split('\n')[0]}\n`);
  if (process.env.SWINQ_DEBUG && e instanceof Error && !(e instanceof CliError)) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
