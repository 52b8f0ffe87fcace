// swinq distill TEACHER --data DIR --replace gelu=relu --epochs E --out STUDENT.onnx: GELU→ReLU
// iterative knowledge distillation (src/distill/distill.ts); progress bar on a TTY, JSON summary.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CliError, numOption, emit, intOption, log, withCommon } from './common.js';
import { distill, type DistillSchedule } from '../distill/distill.js';

export function register(program: Command): void {
  withCommon(program
    .command('distill')
    .description('distill a GELU vision transformer (any exported ViT/Swin the engine runs) into a ReLU student of the same graph, stage by stage (CE + α·T²·KL)')
    .argument('<teacher>', 'GELU teacher .onnx (timm/DeiT, Hugging Face, torchvision ViT or Swin, swinq init/train)')
    .requiredOption('--data <dir>', 'MNIST-style data directory (train-* and t10k-* IDX files)')
    .requiredOption('--out <file>', 'student .onnx')
    .option('--replace <from=to>', 'activation replacement (only gelu=relu)', 'gelu=relu')
    .option('--epochs <n>', 'epochs over all schedule steps', intOption('epochs'), 1)
    .option('--schedule <s>', 'first-to-last | last-to-first | all-at-once', 'first-to-last')
    .option('--alpha <x>', 'KL weight α in CE + α·T²·KL', numOption('alpha'), 1)
    .option('--temperature <x>', 'distillation temperature T', numOption('temperature'), 2)
    .option('--qat-steps <n>', 'quantization-aware finishing steps after the schedule: fake quantization at the integer plan\'s points, int8 weights, lr/10 (0 = off)', intOption('qat-steps', 0), 0)
    .option('--feature-weight <x>', 'β of an extra per-block feature loss β·mean MSE(student block output, teacher block output) (0 = off)', numOption('feature-weight'), 0)
    .option('--sparsity <D>', 'aim at a fraction D of non-zero MLP hidden activations (penalty on post-ReLU values, annealed; off by default)', numOption('sparsity'))
    .option('--sparsity-penalty <kind>', 'l1 | hoyer', 'l1')
    .option('--share-layernorm', 'memory-sharing LayerNorm: a LayerNorm feeding a linear saves its output + 1/σ per row instead of its input (less peak memory, same gradients to float rounding)')
    .option('--no-recompute', 'keep attention probabilities and LayerNorm outputs for backward instead of recomputing them there (faster step, more peak memory, the same gradients)')
    .option('--attention-probs-8bit', 'with --no-recompute: keep attention probabilities for backward as 8-bit codes (less peak memory; gradients approximate, |Δp| ≤ 1/510)')
    .option('--mean <m>', 'input normalization mean (default: teacher metadata swinq.mean or sidecar, else 0)', numOption('mean', -Infinity))
    .option('--std <s>', 'input normalization std (default: teacher metadata swinq.std or sidecar, else 1)', numOption('std'))
    .option('--fewbit <bits>', 'backward bits of the GELU blocks not yet swapped (0 = exact; ReLU is exact at 1 bit)', intOption('fewbit', 0), 2)
    .option('--batch <n>', 'batch size', intOption('batch'), 64)
    .option('--lr <x>', 'peak learning rate', numOption('lr'), 5e-4)
    .option('--limit <n>', 'train on the first N training images', intOption('limit'))
    .option('--eval-limit <n>', 'evaluate on the first N test images', intOption('eval-limit'), 10000)
    .option('--seed <n>', 'shuffle seed', intOption('seed', 0), 0)
    .option('--checkpoint <file>', 'checkpoint file (default OUT.ckpt)')
    .option('--checkpoint-every <n>', 'steps between checkpoints (0 = only at schedule steps)', intOption('checkpoint-every', 0), 50)
    .option('--resume <ckpt>', 'continue from a checkpoint')
    .option('--no-progress', 'no progress bar'))
    .action(async (teacher: string, o) => {
      if (o.replace !== 'gelu=relu') throw new CliError(`--replace: only gelu=relu is supported, got '${o.replace}'`);
      if (!['first-to-last', 'last-to-first', 'all-at-once'].includes(o.schedule)) throw new CliError(`--schedule must be first-to-last, last-to-first or all-at-once, got '${o.schedule}'`);
      if (o.fewbit > 4) throw new CliError(`--fewbit must be 0..4, got ${o.fewbit}`);
      if (o.sparsityPenalty !== 'l1' && o.sparsityPenalty !== 'hoyer') throw new CliError(`--sparsity-penalty must be l1 or hoyer, got '${o.sparsityPenalty}'`);
      if (!(o.temperature > 0)) throw new CliError(`--temperature must be > 0, got ${o.temperature}`);
      let bar: cliProgress.SingleBar | null = null;
      const r = await distill({
        teacher, data: o.data, out: o.out, epochs: o.epochs, schedule: o.schedule as DistillSchedule, alpha: o.alpha, temperature: o.temperature, featureWeight: o.featureWeight, qatSteps: o.qatSteps,
        shareLayerNorm: !!o.shareLayernorm, attentionProbs8bit: !!o.attentionProbs8bit, recompute: o.recompute !== false, sparsity: o.sparsity, sparsityPenalty: o.sparsityPenalty, mean: o.mean, std: o.std,
        fewbit: o.fewbit, batch: o.batch, lr: o.lr, limit: o.limit, evalLimit: o.evalLimit, seed: o.seed, threads: o.threads,
        checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, resume: o.resume,
      }, {
        onLog: log,
        onPhase: (p, swapped) => log(`distill: schedule step ${p + 1}: ${swapped.length} activation(s) now ReLU`),
        onStep: (s) => {
          if (!bar && o.progress && process.stderr.isTTY) {
            bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'distill [{bar}] {value}/{total} | phase {phase} | loss {loss}' }, cliProgress.Presets.shades_classic);
            bar.start(s.totalSteps, s.step - 1, { phase: '-', loss: '-' });
          }
          bar?.update(s.step, { phase: `${s.phase + 1}/${s.phases}`, loss: s.loss.toFixed(4) });
          // without a terminal: a line every tenth of the run (as swinq train does per epoch)
          if (!bar && o.progress && s.totalSteps >= 20 && s.step % Math.ceil(s.totalSteps / 10) === 0) {
            log(`distill: step ${s.step}/${s.totalSteps}, phase ${s.phase + 1}/${s.phases}, loss ${s.loss.toFixed(4)}, batch acc ${(s.correct / s.batch).toFixed(3)}` +
              (s.density !== undefined ? `, ReLU density ${s.density.toFixed(3)}` : ''));
          }
          if (s.step === s.totalSteps) bar?.stop();
        },
      });
      emit(o.json, {
        teacher_accuracy: r.teacher_accuracy, student_accuracy: r.student_accuracy, out: r.out, steps: r.steps, schedule: r.schedule, seconds: r.seconds,
        relu_density: r.relu_density ?? null, relu_density_blocks: r.relu_density_blocks ?? null,
        peak_activation_bytes: r.peak_activation_bytes ?? null, saved_activation_bytes: r.saved_activation_bytes ?? null,
      }, `teacher accuracy ${r.teacher_accuracy.toFixed(4)}, student accuracy ${r.student_accuracy.toFixed(4)}` +
        (r.relu_density !== undefined ? `, ReLU density ${r.relu_density.toFixed(3)}` : '') + `, ${r.seconds.toFixed(1)} s → ${r.out}`);
    });
}
