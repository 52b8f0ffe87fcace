// Training loop pieces: AdamW over an OnnxTrainGraph's trainable parameters, warm-up + cosine
// learning rate, global gradient-norm clipping, cross-entropy (label smoothing) or KL loss.
import { native } from '../native.js';
import type { OnnxTrainGraph } from './onnx-graph.js';
import type { Param } from './op.js';

export interface TrainOptions {
  lr: number;
  minLr: number;
  weightDecay: number;
  warmup: number;
  totalSteps: number;
  clip: number;           // max global grad norm, 0 = off
  smoothing: number;      // label smoothing
  classes: number;
}

export interface Teacher { logits: Float32Array; temperature: number; weight: number }

export interface StepResult { loss: number; gradNorm: number; lr: number; correct: number; savedBytes: number; peakBytes: number }

export class Trainer {
  step = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(readonly graph: OnnxTrainGraph, readonly opts: TrainOptions) {
    for (const [k, p] of graph.params) {
      if (!p.trainable) continue;
      this.m.set(k, new Float32Array(p.data.length));
      this.v.set(k, new Float32Array(p.data.length));
    }
  }

  /** One optimisation step on a batch (x: batch × per-sample input, labels: class per sample). */
  trainStep(x: Float32Array, labels: Int32Array, teacher?: Teacher): StepResult {
    const st = this.graph.forward(x, labels.length);
    const l = this.loss(st.values.get(st.tape.output)!, labels, teacher);
    const grads = this.graph.backward(st, l.grad);
    const lr = native.trainLr(this.step, this.opts.totalSteps, this.opts.warmup, this.opts.lr, this.opts.minLr);
    this.step++;
    const gradNorm = clipAndStep(this.graph.params, grads, this.m, this.v, this.step, { lr, weightDecay: this.opts.weightDecay, clip: this.opts.clip });
    return { loss: l.loss, gradNorm, lr, correct: l.correct, savedBytes: st.savedBytes, peakBytes: st.peakBytes };
  }

  private loss(logits: Float32Array, labels: Int32Array, teacher?: Teacher) {
    const l = labelLoss(logits, labels, this.opts.classes, this.opts.smoothing, teacher);
    return { ...l, correct: countCorrect(logits, labels, this.opts.classes) };
  }
}

/** Cross-entropy on the labels (label smoothing), blended with KL to a teacher's logits when given:
 *  (1 − w)·CE + w·T²-scaled KL; the gradient is written over CE's. */
export function labelLoss(logits: Float32Array, labels: Int32Array, classes: number, smoothing: number, teacher?: Teacher): { loss: number; grad: Float32Array } {
  const ce = native.trainLoss('ce', logits, labels, classes, smoothing);
  let loss: number = ce.loss;
  const grad: Float32Array = ce.grad;
  if (teacher) {
    const kl = native.trainLoss('kl', logits, teacher.logits, classes, teacher.temperature);
    loss = (1 - teacher.weight) * loss + teacher.weight * kl.loss;
    for (let i = 0; i < grad.length; i++) grad[i] = (1 - teacher.weight) * grad[i] + teacher.weight * kl.grad[i];
  }
  return { loss, grad };
}

/**
 * One optimizer step: clips the global gradient norm to `clip` (0 = off), then AdamW on every parameter
 * with a gradient (weight decay only where the parameter decays). Returns the norm before clipping.
 */
export function clipAndStep(params: Map<string, Param>, grads: Map<string, Float32Array>, m: Map<string, Float32Array>, v: Map<string, Float32Array>,
  step: number, o: { lr: number; weightDecay: number; clip: number }): number {
  let sq = 0;
  for (const g of grads.values()) sq += native.trainSumSquares(g);
  const gradNorm = Math.sqrt(sq);
  if (o.clip > 0 && gradNorm > o.clip) for (const g of grads.values()) native.trainScale(g, o.clip / gradNorm);
  for (const [k, g] of grads) {
    const p = params.get(k)!;
    native.trainAdamw(p.data, g, m.get(k)!, v.get(k)!, step, { lr: o.lr, weightDecay: p.decay ? o.weightDecay : 0 });
  }
  return gradNorm;
}

export function countCorrect(logits: Float32Array, labels: ArrayLike<number>, C: number): number {
  let ok = 0;
  for (let b = 0; b < labels.length; b++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[b * C + c] > logits[b * C + best]) best = c;
    if (best === labels[b]) ok++;
  }
  return ok;
}
