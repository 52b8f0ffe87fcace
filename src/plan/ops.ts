// TypeScript mirror of native/include/swinq/ops.def (same order; test/native.test.ts checks it).
export const OP_NAMES = [
  'copy', 'index_map', 'linear', 'matmul', 'layernorm', 'softmax', 'binary', 'unary', 'reduce', 'argmax', 'cast',
  // integer ops (see ops.def for their contracts)
  'quantize', 'dequantize', 'linear_q', 'matmul_q', 'softmax_q', 'layernorm_q', 'gelu_q', 'relu_q', 'requant', 'add_q', 'avgpool_q', 'argmax_q', 'attention_q',
] as const;
export type OpName = (typeof OP_NAMES)[number];

/** Training ops (ops.def SWINQ_TRAIN_OP, same order): each train op and the plan op it is, whose
 *  fp32 kernel its forward runs ('none': training-only). test/train.test.ts checks the mirror. */
export const TRAIN_OPS = [
  ['linear', 'linear'], ['layernorm', 'layernorm'], ['matmul', 'matmul'], ['softmax', 'softmax'], ['add', 'binary'],
  ['add_bcast', 'binary'], ['gather', 'index_map'], ['act', 'unary'], ['mean_pool', 'reduce'], ['fakequant', 'none'],
  ['binary', 'binary'], ['scale_shift', 'unary'],
] as const satisfies readonly (readonly [string, OpName | 'none'])[];
export const OpKind: { [K in OpName]: number } = Object.fromEntries(OP_NAMES.map((n, i) => [n, i])) as never;

export const enum DType { f32 = 0, i32 = 1, i8 = 2, u8 = 3, i16 = 4, i64 = 5 }
export const DTYPE_SIZE: Record<number, number> = { 0: 4, 1: 4, 2: 1, 3: 1, 4: 2, 5: 8 };
export const enum Storage { arena = 0, constant = 1, input = 2, output = 3 }

export const Act = { none: 0, relu: 1, gelu_erf: 2, gelu_tanh: 3 } as const;
export const BinaryOp = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, max: 5, min: 6 } as const;
export const UnaryOp = {
  relu: 0, gelu_erf: 1, gelu_tanh: 2, erf: 3, sigmoid: 4, tanh: 5, exp: 6, log: 7, sqrt: 8, neg: 9, abs: 10,
  reciprocal: 11, silu: 12, clip: 13, leaky_relu: 14, hardswish: 15, hardsigmoid: 16, softplus: 17, mish: 18,
  elu: 19, floor: 20, ceil: 21, round: 22, scale_shift: 23,
} as const;
export const ReduceOp = { mean: 0, sum: 1, max: 2, min: 3 } as const;
