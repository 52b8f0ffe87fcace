// swinq train MODEL --data DIR --epochs E --out OUT: trains a model made by `swinq init` (config
// in its metadata, initializers by name) on MNIST-style IDX data with AdamW, warm-up + cosine,
// gradient clipping and few-bit activation backward (--fewbit BITS, 0 = exact); writes OUT
// (ONNX with the trained weights) atomically after every epoch as the checkpoint.
import fs from 'node:fs';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CliError, numOption, emit, intOption, log, withCommon } from './common.js';
import { sidecarPath, writeAtomic } from './init.js';
import { native } from '../native.js';
import { InferenceSession } from '../session.js';
import { Tensor } from '../tensor.js';
import { loadLabelledImages, normalizedImages } from '../io/idx.js';
import { resolveNormalization } from '../normalize.js';
import { buildSwin, seededRandom } from '../train/swin.js';
import { exportOnnx, readOnnxModel } from '../train/onnx.js';
import { countCorrect, predict, Trainer } from '../train/trainer.js';

export function register(program: Command): void {
  withCommon(program
    .command('train')
    .description('train a Swin made by `swinq init` on MNIST-style IDX data; writes ONNX')
    .argument('<model>', '.onnx written by swinq init (or a previous swinq train)')
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
    .option('--limit <n>', 'train on the first N training images', intOption('limit'))
    .option('--eval-limit <n>', 'evaluate on the first N test images', intOption('eval-limit'), 10000)
    .option('--seed <n>', 'shuffle seed', intOption('seed', 0), 0)
    .option('--act <fn>', 'replace the MLP activation before training (gelu|relu): the GELU→ReLU student')
    .option('--teacher <model>', 'distil from this ONNX model (swinq engine): loss = (1-w)·CE + w·T²·KL')
    .option('--kd-weight <w>', 'distillation weight w in [0, 1]', numOption('kd-weight'), 0.5)
    .option('--kd-temp <T>', 'distillation temperature', numOption('kd-temp'), 2)
    .option('--no-progress', 'no progress bar'))
    .action(async (model: string, o) => {
      if (o.fewbit > 4) throw new CliError(`--fewbit must be 0..4, got ${o.fewbit}`);
      if (!fs.existsSync(model)) throw new CliError(`${model}: no such model file`);
      const { config, params, metadata } = readOnnxModel(fs.readFileSync(model), model);
      if (o.act !== undefined) {
        if (o.act !== 'gelu' && o.act !== 'relu') throw new CliError(`--act must be gelu or relu, got '${o.act}'`);
        config.act = o.act;
      }
      const g = buildSwin(config, params, model);
      g.setFewbit(o.fewbit);
      native.trainSetThreads(o.threads);
      const norm = resolveNormalization({ metadata, modelPath: model });
      const train = loadLabelledImages(o.data, 'train');
      const test = loadLabelledImages(o.data, 'test');
      if (config.inChans !== 1 || train.height !== config.imgSize[0] || train.width !== config.imgSize[1]) {
        throw new CliError(`${train.imagesFile}: images are 1×${train.height}×${train.width} but ${model} expects ${config.inChans}×${config.imgSize.join('×')}`);
      }
      const n = Math.min(train.count, o.limit ?? train.count);
      const nTest = Math.min(test.count, o.evalLimit);
      const X = normalizedImages(train, 0, n, norm.mean, norm.std);
      const px = train.height * train.width;
      const stepsPerEpoch = Math.ceil(n / o.batch);
      const t = new Trainer(g, {
        lr: o.lr, minLr: o.minLr, weightDecay: o.weightDecay, warmup: o.warmup, totalSteps: stepsPerEpoch * o.epochs,
        clip: o.clip, smoothing: o.smoothing, classes: config.classes,
      });
      if (o.kdWeight > 1) throw new CliError(`--kd-weight must be in [0, 1], got ${o.kdWeight}`);
      if (o.teacher && !(o.kdTemp > 0)) throw new CliError(`--kd-temp must be positive, got ${o.kdTemp}`);
      const teacher = o.teacher ? await InferenceSession.create(o.teacher, { threads: o.threads }) : null;
      const teacherLogits = async (x: Float32Array, B: number): Promise<Float32Array> => {
        const out = await teacher!.run({ [teacher!.inputNames[0]]: new Tensor('float32', x, [B, 1, train.height, train.width]) });
        const y = out[teacher!.outputNames[0]].data as Float32Array;
        if (y.length !== B * config.classes) throw new CliError(`${o.teacher}: teacher gives ${y.length / B} logits per image, the student has ${config.classes} classes`);
        return y;
      };
      log(`train: ${n} images ${train.height}×${train.width}, batch ${o.batch}, ${o.epochs} epoch(s), fewbit ${o.fewbit || 'exact'}, threads ${o.threads}`);
      const t0 = performance.now();
      const rand = seededRandom(o.seed + 1);
      let lastLoss = NaN, accuracy = NaN;
      const xb = new Float32Array(o.batch * px);
      const yb = new Int32Array(o.batch);
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
          const xs = xb.subarray(0, B * px);
          const kd = teacher ? { logits: await teacherLogits(xs, B), temperature: o.kdTemp, weight: o.kdWeight } : undefined;
          const r = await t.trainStepAsync(xs, yb.subarray(0, B), kd);
          if (!Number.isFinite(r.loss)) throw new CliError(`train: loss became ${r.loss} at epoch ${ep + 1} step ${s + 1} (try a lower --lr)`);
          lossSum += r.loss * B; seen += B; correct += r.correct;
          bar?.update(s + 1, { loss: (lossSum / seen).toFixed(4), acc: (correct / seen).toFixed(3) });
          // without a terminal: a line every tenth of an epoch
          if (!bar && o.progress && stepsPerEpoch >= 20 && (s + 1) % Math.ceil(stepsPerEpoch / 10) === 0) {
            log(`epoch ${ep + 1}/${o.epochs} step ${s + 1}/${stepsPerEpoch}: loss ${(lossSum / seen).toFixed(4)}, acc ${(correct / seen).toFixed(3)}, lr ${r.lr.toExponential(2)}`);
          }
        }
        bar?.stop();
        lastLoss = lossSum / seen;
        // evaluate, then checkpoint: OUT always holds the last finished epoch
        let ok = 0;
        for (let s = 0; s < nTest; s += 256) {
          const B = Math.min(256, nTest - s);
          ok += countCorrect(predict(g, normalizedImages(test, s, B, norm.mean, norm.std), B), test.labels.subarray(s, s + B), config.classes);
        }
        accuracy = nTest ? ok / nTest : NaN;
        writeAtomic(o.out, exportOnnx(g, config, { 'swinq.mean': String(norm.mean), 'swinq.std': String(norm.std) }));
        writeAtomic(sidecarPath(o.out), JSON.stringify({ config, mean: norm.mean, std: norm.std, test_accuracy: accuracy, epochs: ep + 1, fewbit: o.fewbit }, null, 1) + '\n');
        log(`epoch ${ep + 1}/${o.epochs}: train loss ${lastLoss.toFixed(4)}, train acc ${(correct / seen).toFixed(4)}, test acc ${accuracy.toFixed(4)} (${nTest} images), ${((performance.now() - t0) / 1000).toFixed(1)} s → ${o.out}`);
      }
      teacher?.release();
      const seconds = (performance.now() - t0) / 1000;
      emit(o.json, { accuracy, loss: lastLoss, out: o.out, seconds, epochs: o.epochs, steps: t.step, fewbit: o.fewbit },
        `accuracy ${accuracy.toFixed(4)}, loss ${lastLoss.toFixed(4)}, ${seconds.toFixed(1)} s → ${o.out}`);
    });
}
