// swinq train MODEL --data DIR --epochs E --out OUT: trains the graph of MODEL itself (any exported
// ViT/Swin the fp32 engine runs; parameters = its float initializers) on MNIST-style IDX data with
// AdamW, warm-up + cosine, gradient clipping and few-bit activation backward (--fewbit BITS, 0 =
// exact); writes OUT (the same graph, trained initializers) atomically after every epoch.
import fs from 'node:fs';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CliError, numOption, emit, intOption, log, withCommon } from './common.js';
import { sidecarPath, writeAtomic } from './init.js';
import { native } from '../native.js';
import { InferenceSession } from '../session.js';
import { Tensor } from '../tensor.js';
import { loadLabelledImages, normalizedImages } from '../io/idx.js';
import { describeNormalization, resolveNormalization } from '../normalize.js';
import { seededRandom } from '../train/swin.js';
import { OnnxTrainGraph } from '../train/onnx-graph.js';
import { APPROX_BP_TABLES } from '../fewbit.js';
import { clipAndStep, countCorrect, labelLoss } from '../train/trainer.js';
import { checkImages, evaluateGraph, studentMetadata } from '../distill/distill.js';

/** The model's training graph with the command's activation, few-bit and memory settings applied. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function openStudent(model: string, o: any): OnnxTrainGraph {
  if (o.fewbit > 4) throw new CliError(`--fewbit must be 0..4, got ${o.fewbit}`);
  if (!fs.existsSync(model)) throw new CliError(`${model}: no such model file`);
  const g = new OnnxTrainGraph(fs.readFileSync(model), model);
  if (o.act !== undefined) {
    if (o.act !== 'gelu' && o.act !== 'relu') throw new CliError(`--act must be gelu or relu, got '${o.act}'`);
    if (o.act === 'gelu' && [...g.acts.values()].some((a) => a.teacherFn === 'relu')) throw new CliError(`--act gelu: ${model} has ReLU activations; only GELU → ReLU is supported`);
    for (const a of g.acts.values()) if (a.fn === 'gelu' || a.fn === 'gelu_tanh') a.fn = o.act;
  }
  g.setFewbit(o.fewbit);
  if (o.fewbitTable !== undefined) {
    const t = APPROX_BP_TABLES[o.fewbitTable as keyof typeof APPROX_BP_TABLES];
    if (!t) throw new CliError(`--fewbit-table must be ${Object.keys(APPROX_BP_TABLES).join(' or ')}, got '${o.fewbitTable}'`);
    if (o.fewbit !== 2) throw new CliError(`--fewbit-table ${o.fewbitTable} is a 2-bit table: use it with --fewbit 2`);
    const acts = [...g.acts.values()].filter((a) => a.fn === t.fn);
    if (!acts.length) throw new CliError(`--fewbit-table ${o.fewbitTable}: ${model} has no ${t.fn} activation`);
    for (const a of acts) a.table = { borders: t.borders, levels: t.levels };
  }
  g.shareLayerNorm = !!o.shareLayernorm;
  g.attentionProbs8bit = !!o.attentionProbs8bit;
  g.recompute = o.recompute !== false;
  return g;
}

export function register(program: Command): void {
  withCommon(program
    .command('train')
    .description('train (fine-tune) any exported ViT/Swin the engine runs on MNIST-style IDX data; writes the same ONNX graph with the trained weights')
    .argument('<model>', '.onnx (swinq init, timm/DeiT, Hugging Face, torchvision ViT or Swin exports)')
    .requiredOption('--data <dir>', 'MNIST-style data directory (train-* and t10k-* IDX files)')
    .requiredOption('--out <file>', 'output .onnx (rewritten atomically after every epoch)')
    .option('--epochs <n>', 'epochs', intOption('epochs'), 1)
    .option('--batch <n>', 'batch size', intOption('batch'), 64)
    .option('--lr <x>', 'peak learning rate', numOption('lr'), 2e-3)
    .option('--min-lr <x>', 'final learning rate of the cosine', numOption('min-lr'), 1e-5)
    .option('--weight-decay <x>', 'AdamW weight decay (not on biases, norms, bias tables)', numOption('weight-decay'), 0.05)
    .option('--warmup <steps>', 'linear warm-up steps', intOption('warmup', 0), 50)
    .option('--clip <x>', 'max global gradient norm (0 = off)', numOption('clip'), 1)
    .option('--smoothing <x>', 'label smoothing', numOption('smoothing'), 0.1)
    .option('--fewbit <bits>', 'few-bit activation backward bits (0 = exact)', intOption('fewbit', 0), 0)
    .option('--fewbit-table <name>', 'with --fewbit 2: Approx-BP\'s fixed table instead of the solved one (regelu2 for GELU, resilu2 for SiLU)')
    .option('--limit <n>', 'train on the first N training images', intOption('limit'))
    .option('--eval-limit <n>', 'evaluate on the first N test images', intOption('eval-limit'), 10000)
    .option('--seed <n>', 'shuffle seed', intOption('seed', 0), 0)
    .option('--act <fn>', 'replace the MLP activation before training (gelu|relu): the GELU→ReLU student')
    .option('--teacher <model>', 'distil from this ONNX model (swinq engine): loss = (1-w)·CE + w·T²·KL')
    .option('--kd-weight <w>', 'distillation weight w in [0, 1]', numOption('kd-weight'), 0.5)
    .option('--kd-temp <T>', 'distillation temperature', numOption('kd-temp'), 2)
    .option('--share-layernorm', 'memory-sharing LayerNorm: a LayerNorm feeding a linear saves its output + 1/σ per row instead of its input (less peak memory, same gradients to float rounding)')
    .option('--no-recompute', 'keep attention probabilities and LayerNorm outputs for backward instead of recomputing them there (faster step, more peak memory, the same gradients)')
    .option('--attention-probs-8bit', 'with --no-recompute: keep attention probabilities for backward as 8-bit codes (less peak memory; gradients approximate, |Δp| ≤ 1/510)')
    .option('--mean <m>', 'input normalization mean (default: model metadata swinq.mean or sidecar, else 0)', numOption('mean', -Infinity))
    .option('--std <s>', 'input normalization std (default: model metadata swinq.std or sidecar, else 1)', numOption('std'))
    .option('--no-progress', 'no progress bar'))
    .action(async (model: string, o) => {
      const g = openStudent(model, o);
      native.trainSetThreads(o.threads);
      const norm = resolveNormalization({ mean: o.mean, std: o.std, metadata: g.metadata, modelPath: model });
      const train = loadLabelledImages(o.data, 'train');
      const test = loadLabelledImages(o.data, 'test');
      checkImages(g, model, train.imagesFile, train.height, train.width);
      const n = Math.min(train.count, o.limit ?? train.count);
      const nTest = Math.min(test.count, o.evalLimit);
      const X = normalizedImages(train, 0, n, norm.mean, norm.std);
      const px = train.height * train.width;
      const stepsPerEpoch = Math.ceil(n / o.batch);
      const totalSteps = stepsPerEpoch * o.epochs;
      const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
      for (const [k, p] of g.params) if (p.trainable) { m.set(k, new Float32Array(p.data.length)); v.set(k, new Float32Array(p.data.length)); }
      if (o.kdWeight > 1) throw new CliError(`--kd-weight must be in [0, 1], got ${o.kdWeight}`);
      if (o.teacher && !(o.kdTemp > 0)) throw new CliError(`--kd-temp must be positive, got ${o.kdTemp}`);
      const teacher = o.teacher ? await InferenceSession.create(o.teacher, { threads: o.threads }) : null;
      const teacherLogits = async (x: Float32Array, B: number): Promise<Float32Array> => {
        const out = await teacher!.run({ [teacher!.inputNames[0]]: new Tensor('float32', x, [B, ...g.inputShape]) });
        const y = out[teacher!.outputNames[0]].data as Float32Array;
        if (y.length !== B * g.classes) throw new CliError(`${o.teacher}: teacher gives ${y.length / B} logits per image, the student has ${g.classes} classes`);
        return y;
      };
      log(`train: ${model}: ${g.params.size} parameter tensors (${[...g.params.values()].reduce((a, p) => a + p.data.length, 0)} values), ${g.actList.length} activations; ` +
        `${n} images ${train.height}×${train.width}, batch ${o.batch}, ${o.epochs} epoch(s), fewbit ${o.fewbit || 'exact'}, threads ${o.threads}; ${describeNormalization(norm)}`);
      const t0 = performance.now();
      const rand = seededRandom(o.seed + 1);
      let lastLoss = NaN, accuracy = NaN, step = 0, peak = 0, saved = 0;
      const xb = new Float32Array(o.batch * px);
      const yb = new Int32Array(o.batch);
      const meta = () => studentMetadata(g, { 'swinq.mean': String(norm.mean), 'swinq.std': String(norm.std) });
      for (let ep = 0; ep < o.epochs; ep++) {
        const perm = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [perm[i], perm[j]] = [perm[j], perm[i]]; }
        const bar = o.progress && process.stderr.isTTY
          ? new cliProgress.SingleBar({ stream: process.stderr, format: `epoch ${ep + 1}/${o.epochs} [{bar}] {value}/{total} | loss {loss} | acc {acc}` }, cliProgress.Presets.shades_classic)
          : null;
        bar?.start(stepsPerEpoch, 0, { loss: '-', acc: '-' });
        let lossSum = 0, seen = 0, correct = 0;
        for (let s = 0; s < stepsPerEpoch; s++) {
          const B = Math.min(o.batch, n - s * o.batch);
          for (let b = 0; b < B; b++) {
            const k = perm[s * o.batch + b];
            xb.set(X.subarray(k * px, (k + 1) * px), b * px);
            yb[b] = train.labels[k];
          }
          const xs = xb.subarray(0, B * px), ys = yb.subarray(0, B);
          const tl = teacher ? await teacherLogits(xs, B) : undefined;
          const st = g.forward(xs, B);
          const logits = st.values.get(st.tape.output)!;
          const { loss, grad } = labelLoss(logits, ys, g.classes, o.smoothing, tl ? { logits: tl, temperature: o.kdTemp, weight: o.kdWeight } : undefined);
          if (!Number.isFinite(loss)) throw new CliError(`train: loss became ${loss} at epoch ${ep + 1} step ${s + 1} (try a lower --lr)`);
          const grads = g.backward(st, grad);
          peak = Math.max(peak, st.peakBytes); saved = Math.max(saved, st.savedBytes);
          const lr = native.trainLr(step, totalSteps, o.warmup, o.lr, o.minLr);
          step++;
          clipAndStep(g.params, grads, m, v, step, { lr, weightDecay: o.weightDecay, clip: o.clip });
          lossSum += loss * B; seen += B; correct += countCorrect(logits, ys, g.classes);
          bar?.update(s + 1, { loss: (lossSum / seen).toFixed(4), acc: (correct / seen).toFixed(3) });
          // without a terminal: a line every tenth of an epoch
          if (!bar && o.progress && stepsPerEpoch >= 20 && (s + 1) % Math.ceil(stepsPerEpoch / 10) === 0) {
            log(`epoch ${ep + 1}/${o.epochs} step ${s + 1}/${stepsPerEpoch}: loss ${(lossSum / seen).toFixed(4)}, acc ${(correct / seen).toFixed(3)}, lr ${lr.toExponential(2)}`);
          }
          if (s % 4 === 3) await new Promise((res) => setImmediate(res));
        }
        bar?.stop();
        lastLoss = lossSum / seen;
        // evaluate, then checkpoint: OUT always holds the last finished epoch
        accuracy = evaluateGraph(g, test, nTest, norm.mean, norm.std, o.batch, []).accuracy;
        writeAtomic(o.out, g.exportOnnx(meta()));
        writeAtomic(sidecarPath(o.out), JSON.stringify({ mean: norm.mean, std: norm.std, test_accuracy: accuracy, epochs: ep + 1, fewbit: o.fewbit, source: model }, null, 1) + '\n');
        log(`epoch ${ep + 1}/${o.epochs}: train loss ${lastLoss.toFixed(4)}, train acc ${(correct / seen).toFixed(4)}, test acc ${accuracy.toFixed(4)} (${nTest} images), ${((performance.now() - t0) / 1000).toFixed(1)} s → ${o.out}`);
      }
      teacher?.release();
      const seconds = (performance.now() - t0) / 1000;
      emit(o.json, { accuracy, loss: lastLoss, out: o.out, seconds, epochs: o.epochs, steps: step, fewbit: o.fewbit, ...(o.fewbitTable ? { fewbit_table: o.fewbitTable } : {}), peak_activation_bytes: peak, saved_activation_bytes: saved },
        `accuracy ${accuracy.toFixed(4)}, loss ${lastLoss.toFixed(4)}, peak activation ${(peak / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s → ${o.out}`);
    });
}
