// swinq prune STUDENT.onnx --data DIR --out PRUNED.onnx: removes the hidden units of ReLU MLPs that
// are zero on every token of the scanned training images (src/distill/prune.ts); JSON summary.
import type { Command } from 'commander';
import { emit, intOption, numOption, withCommon } from './common.js';
import { prune } from '../distill/prune.js';

export function register(program: Command): void {
  withCommon(program
    .command('prune')
    .description('remove dead ReLU MLP neurons (zero on every scanned token): fc1 column + bias and fc2 row; both GEMMs shrink')
    .argument('<model>', 'ReLU model .onnx (e.g. a swinq distill --sparsity student)')
    .requiredOption('--data <dir>', 'MNIST-style data directory (the training images are scanned)')
    .requiredOption('--out <file>', 'pruned .onnx')
    .option('--images <n>', 'training images scanned for activity', intOption('images'), 2000)
    .option('--max-active <f>', 'also remove neurons non-zero on at most this fraction of scanned tokens (changes outputs: measure it)', numOption('max-active'), 0)
    .option('--align <n>', 'round kept counts up to a multiple of n with the most active removed units (4: the int8 GEMM K step; 24: also fc1\'s wide kernel)', intOption('align'), 4)
    .option('--batch <n>', 'batch size of the scan', intOption('batch'), 32)
    .option('--mean <m>', 'input normalization mean (default: model metadata or sidecar)', numOption('mean', -Infinity))
    .option('--std <s>', 'input normalization std (default: model metadata or sidecar)', numOption('std')))
    .action(async (model: string, o) => {
      const r = await prune({ model, data: o.data, out: o.out, images: o.images, maxActive: o.maxActive, align: o.align, batch: o.batch, mean: o.mean, std: o.std, threads: o.threads });
      emit(o.json, { ...r }, `kept ${r.kept}/${r.hidden} hidden units (${r.blocks.map((b) => `${b.kept}/${b.hidden}`).join(', ')}) over ${r.images} images, ` +
        `max |Δ logit| ${r.max_logit_diff.toExponential(2)}, ${r.bytes_before} → ${r.bytes_after} bytes → ${r.out}`);
    });
}
