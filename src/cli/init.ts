// swinq init OUT: writes a fresh Swin (random weights from --seed) as ONNX, with the config in
// metadata_props and a sidecar OUT.json (config, mean, std) — the input of `swinq train`.
import fs from 'node:fs';
import type { Command } from 'commander';
import { CliError, emit, intOption } from './common.js';
import { checkConfig, DEFAULT_CONFIG, initParams, paramSpecs, swinOnnx, type SwinConfig } from '../train/swin.js';

function intList(name: string) {
  return (v: string): number[] => {
    const a = v.split(',').map((s) => Number(s.trim()));
    if (!a.length || a.some((n) => !Number.isInteger(n) || n < 1)) throw new CliError(`--${name} must be a comma-separated list of positive integers, got '${v}'`);
    return a;
  };
}

function numOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got '${v}'`);
    return n;
  };
}

/** Writes `data` to `file` atomically (temp file + rename), so a reader never sees half a model. */
export function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

export function sidecarPath(out: string): string {
  return /\.onnx$/i.test(out) ? out.replace(/\.onnx$/i, '.json') : `${out}.json`;
}

export function register(program: Command): void {
  program
    .command('init')
    .description('write a fresh (untrained) Swin as ONNX for `swinq train`')
    .argument('<out>', 'output .onnx file')
    .option('--img <n>', 'image height = width', intOption('img'), DEFAULT_CONFIG.imgSize[0])
    .option('--in-chans <n>', 'input channels', intOption('in-chans'), DEFAULT_CONFIG.inChans)
    .option('--patch <n>', 'patch size', intOption('patch'), DEFAULT_CONFIG.patch)
    .option('--embed <n>', 'embedding dim of stage 0', intOption('embed'), DEFAULT_CONFIG.embed)
    .option('--depths <list>', 'blocks per stage, e.g. 2,2', intList('depths'), DEFAULT_CONFIG.depths)
    .option('--heads <list>', 'heads per stage, e.g. 2,4', intList('heads'), DEFAULT_CONFIG.heads)
    .option('--window <n>', 'window size', intOption('window'), DEFAULT_CONFIG.window)
    .option('--classes <n>', 'classes', intOption('classes'), DEFAULT_CONFIG.classes)
    .option('--mlp-ratio <n>', 'MLP hidden = ratio × dim', intOption('mlp-ratio'), DEFAULT_CONFIG.mlpRatio)
    .option('--act <fn>', 'MLP activation: gelu or relu', DEFAULT_CONFIG.act)
    .option('--mean <x>', 'input normalisation mean (pixel/255 scale)', numOption('mean'), 0.286)
    .option('--std <x>', 'input normalisation std', numOption('std'), 0.353)
    .option('--seed <n>', 'random seed of the initial weights', intOption('seed', 0), 0)
    .option('--json', 'print one JSON object on the last line of stdout')
    .action((out: string, o) => {
      const cfg: SwinConfig = {
        imgSize: [o.img, o.img], inChans: o.inChans, patch: o.patch, embed: o.embed, depths: o.depths, heads: o.heads,
        window: o.window, classes: o.classes, act: o.act, mlpRatio: o.mlpRatio,
      };
      try {
        checkConfig(cfg);
      } catch (e) {
        throw new CliError((e as Error).message.replace('swin config: ', 'init: --'));
      }
      if (!(o.std > 0)) throw new CliError(`--std must be positive, got ${o.std}`);
      const bytes = swinOnnx(cfg, initParams(cfg, o.seed), { 'swinq.mean': String(o.mean), 'swinq.std': String(o.std) });
      writeAtomic(out, bytes);
      const side = sidecarPath(out);
      writeAtomic(side, JSON.stringify({ config: cfg, mean: o.mean, std: o.std }, null, 1) + '\n');
      const params = paramSpecs(cfg).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
      emit(o.json, { out, sidecar: side, params, config: cfg },
        `wrote ${out} (${params} parameters, ${bytes.length} bytes) and ${side}`);
    });
}
