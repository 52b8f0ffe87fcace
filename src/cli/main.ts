#!/usr/bin/env node
// swinq command line. Each command lives in its own file and exports `register(program)`.
import { Command, CommanderError } from 'commander';
import { CliError } from './common.js';

const COMMANDS: Record<string, () => Promise<{ register(p: Command): void }>> = {
  // one line per command file (keep sorted by command name)
  bench: () => import('./bench.js'),
  'bench-kernels': () => import('./bench_kernels.js'),
  calibrate: () => import('./calibrate.js'),
  demo: () => import('./demo.js'),
  distill: () => import('./distill.js'),
  eval: () => import('./eval.js'),
  fewbit: () => import('./fewbit.js'),
  init: () => import('./init.js'),
  profile: () => import('./profile.js'),
  prune: () => import('./prune.js'),
  run: () => import('./run.js'),
  serve: () => import('./serve.js'),
  train: () => import('./train.js'),
};

async function main(argv: string[]): Promise<void> {
  const program = new Command('swinq')
    .description('integer-only vision-transformer inference, calibration and training')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  // only the named command's module is loaded (the server's fastify/pino cost ~0.2 s of start-up
  // for every other command); help and unknown commands load them all
  const named = COMMANDS[argv[2] ?? ''];
  for (const load of named ? [named] : Object.values(COMMANDS)) (await load()).register(program);
  await program.parseAsync(argv);
}

main(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`swinq: ${msg.split('\n')[0]}\n`);
  if (process.env.SWINQ_DEBUG && e instanceof Error && !(e instanceof CliError)) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
