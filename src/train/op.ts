// The native training op description (native/train, through native/binding/train.cc) and a
// trainable parameter: the vocabulary shared by the tape (tape-builder.ts, onnx-graph.ts), the
// Swin model writer (onnx.ts) and quantization-aware finishing (src/distill/qat.ts).

import type { TRAIN_OPS } from '../plan/ops.js';

/** A train op: the SWINQ_TRAIN_OP list of native/include/swinq/ops.def (mirror: TRAIN_OPS). */
export type OpKind = (typeof TRAIN_OPS)[number][0];

export interface OpDesc {
  op: OpKind;
  M?: number; K?: number; N?: number; D?: number; L?: number; C?: number;
  transB?: boolean; alpha?: number; eps?: number;
  dims?: [number, number, number]; bdims?: [number, number, number];
  xItem?: number; block?: number; idx?: Int32Array;
  fn?: string; bits?: number; tableBorders?: number[]; tableLevels?: number[];  // act (a fixed few-bit table: tableBorders/tableLevels)
  scale?: number; zp?: number; qmin?: number; qmax?: number;  // fakequant
  bop?: number; odims?: number[]; sa?: number[]; sb?: number[];  // binary: 0 add, 1 sub, 2 mul, 3 div, broadcast strides
  shift?: number;                                                // scale_shift: alpha·x + shift
}

export interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
  trainable: boolean;
  /** AdamW weight decay applies (not to biases, norms and position tables). */
  decay: boolean;
}
