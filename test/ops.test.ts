// Per-op and per-fusion tests against onnxruntime-node on small generated graphs: odd sizes,
// broadcasting, negative axes, both kernel sets (scalar, auto) and two batch sizes.
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { native } from '../src/native.js';
import { InferenceSession } from '../src/session.js';
import { Tensor, type TensorType } from '../src/tensor.js';
import { buildModel, rand, type ModelSpec, type NodeSpec, type TensorSpec } from './helpers/onnx-builder.js';

const ISAS = ['scalar', 'auto'] as const;
afterAll(() => native.setIsa('auto'));

interface Case {
  model: ModelSpec;
  /** input name → dims for a batch size */
  dims: (b: number) => Record<string, number[]>;
  batches?: number[];
  lo?: number;
  hi?: number;
  tol?: number;
  /** for batches > 4: whether the plan must come from batch 2/3 extrapolation */
  extrapolated?: boolean;
  /** plan op counts expected at the first batch size (checks the fusion happened) */
  ops?: Record<string, number>;
}

const ORT_TYPE: Record<string, TensorType> = { float32: 'float32', int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8', int8: 'int8' };

async function check(c: Case): Promise<void> {
  const bytes = buildModel(c.model);
  const ref = await ort.InferenceSession.create(bytes);
  const s = await InferenceSession.create(bytes);
  try {
    for (const b of c.batches ?? [1, 3]) {
      const dims = c.dims(b);
      const feeds: Record<string, Tensor> = {};
      const ortFeeds: Record<string, ort.Tensor> = {};
      let seed = 7 + b;
      for (const inp of c.model.inputs) {
        const d = dims[inp.name];
        const n = d.reduce((x, y) => x * y, 1);
        const data = rand(n, seed++, c.lo ?? -2, c.hi ?? 2);
        feeds[inp.name] = new Tensor('float32', data, d);
        ortFeeds[inp.name] = new ort.Tensor('float32', data, d);
      }
      const want = await ref.run(ortFeeds);
      if (c.ops && b === (c.batches ?? [1, 3])[0]) {
        const st = s.planStats(dims);
        for (const [op, n] of Object.entries(c.ops)) expect(st.opCounts[op] ?? 0, `plan op count of ${op}: ${JSON.stringify(st.opCounts)}`).toBe(n);
      }
      if (b > 4 && c.extrapolated !== undefined) expect(s.planStats(dims).extrapolated, 'plan extrapolated from batch 2/3').toBe(c.extrapolated);
      for (const isa of ISAS) {
        native.setIsa(isa);
        const got = isa === 'scalar' ? s.runSync(feeds) : await s.run(feeds);
        for (const o of c.model.outputs) {
          const w = want[o.name];
          const g = got[o.name];
          expect(g.dims, `${o.name} dims (isa ${isa}, batch ${b})`).toEqual([...w.dims]);
          expect(g.type).toBe(ORT_TYPE[w.type]);
          if (g.type !== 'float32') {
            expect(Array.from(g.data as ArrayLike<number | bigint>).map(String), `${o.name} (isa ${isa}, batch ${b})`).toEqual(Array.from(w.data as ArrayLike<number | bigint>).map(String));
            continue;
          }
          const gd = g.data as Float32Array;
          const wd = w.data as Float32Array;
          let md = 0;
          let mr = 0;
          for (let i = 0; i < wd.length; i++) {
            md = Math.max(md, Math.abs(gd[i] - wd[i]));
            mr = Math.max(mr, Math.abs(wd[i]));
            if (Number.isNaN(gd[i]) !== Number.isNaN(wd[i])) md = Infinity;
          }
          expect(md, `${o.name} max|diff| (isa ${isa}, batch ${b}); max|ref| ${mr}`).toBeLessThanOrEqual((c.tol ?? 1e-5) * Math.max(1, mr));
        }
      }
    }
  } finally {
    s.release();
    native.setIsa('auto');
  }
}

const f = (name: string, dims: number[], seed = 3, lo = -1, hi = 1): TensorSpec => ({ name, dims, data: rand(dims.reduce((a, b) => a * b, 1), seed, lo, hi) });
const i64 = (name: string, data: number[]): TensorSpec => ({ name, dtype: 'int64', dims: [data.length], data });
const scalar = (name: string, v: number): TensorSpec => ({ name, dims: [], data: [v] });
const unary = (op: string, attrs?: NodeSpec['attrs'], extra: TensorSpec[] = [], extraIn: string[] = []): Case => ({
  model: {
    nodes: [{ op, inputs: ['x', ...extraIn], outputs: ['y'], attrs }],
    inputs: [{ name: 'x', dims: ['N', 3, 5] }], outputs: [{ name: 'y' }], initializers: extra,
  },
  dims: (b) => ({ x: [b, 3, 5] }),
  ops: { unary: 1 },
  tol: 1e-5,
});

describe('unary ops', () => {
  for (const op of ['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Neg', 'Abs', 'Reciprocal', 'HardSwish', 'Softplus', 'Floor', 'Ceil', 'Round', 'Erf']) {
    it(op, () => { const c = unary(op); if (op === 'HardSwish') c.model.opset = 14; return check(c); });
  }
  it('Log, Sqrt on positive inputs', async () => {
    for (const op of ['Log', 'Sqrt']) await check({ ...unary(op), lo: 0.01, hi: 5 });
  });
  it('Clip with constant min/max', () => check(unary('Clip', undefined, [scalar('lo', -0.5), scalar('hi', 0.75)], ['lo', 'hi'])));
  it('LeakyRelu, Elu, HardSigmoid with attributes', async () => {
    await check(unary('LeakyRelu', { alpha: 0.13 }));
    await check(unary('Elu', { alpha: 0.7 }));
    await check(unary('HardSigmoid', { alpha: 0.3, beta: 0.4 }));
  });
  it('x·0.5·(1+erf(x/√2)) and its variants fuse to one gelu', async () => {
    const variants: NodeSpec[][] = [
      [{ op: 'Div', inputs: ['x', 'r2'], outputs: ['a'] }, { op: 'Erf', inputs: ['a'], outputs: ['e'] }, { op: 'Add', inputs: ['e', 'one'], outputs: ['p'] },
        { op: 'Mul', inputs: ['x', 'p'], outputs: ['m'] }, { op: 'Mul', inputs: ['m', 'half'], outputs: ['y'] }],
      [{ op: 'Mul', inputs: ['x', 'ir2'], outputs: ['a'] }, { op: 'Erf', inputs: ['a'], outputs: ['e'] }, { op: 'Add', inputs: ['one', 'e'], outputs: ['p'] },
        { op: 'Mul', inputs: ['half', 'x'], outputs: ['h'] }, { op: 'Mul', inputs: ['h', 'p'], outputs: ['y'] }],
      [{ op: 'Div', inputs: ['x', 'r2'], outputs: ['a'] }, { op: 'Erf', inputs: ['a'], outputs: ['e'] }, { op: 'Add', inputs: ['e', 'one'], outputs: ['p'] },
        { op: 'Mul', inputs: ['p', 'half'], outputs: ['m'] }, { op: 'Mul', inputs: ['m', 'x'], outputs: ['y'] }],
    ];
    for (const nodes of variants) {
      await check({
        model: { nodes, inputs: [{ name: 'x', dims: ['N', 7] }], outputs: [{ name: 'y' }],
          initializers: [scalar('r2', Math.SQRT2), scalar('ir2', Math.SQRT1_2), scalar('one', 1), scalar('half', 0.5)] },
        dims: (b) => ({ x: [b, 7] }), lo: -4, hi: 4, ops: { unary: 1, binary: 0 },
      });
    }
  });
  it('the tanh form of gelu fuses to one gelu_tanh', () => check({
    model: {
      nodes: [
        { op: 'Pow', inputs: ['x', 'three'], outputs: ['x3'] }, { op: 'Mul', inputs: ['x3', 'c'], outputs: ['cx3'] },
        { op: 'Add', inputs: ['x', 'cx3'], outputs: ['s'] }, { op: 'Mul', inputs: ['s', 'k'], outputs: ['ks'] },
        { op: 'Tanh', inputs: ['ks'], outputs: ['t'] }, { op: 'Add', inputs: ['t', 'one'], outputs: ['p'] },
        { op: 'Mul', inputs: ['x', 'p'], outputs: ['m'] }, { op: 'Mul', inputs: ['m', 'half'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 9] }], outputs: [{ name: 'y' }],
      initializers: [scalar('three', 3), scalar('c', 0.044715), scalar('k', Math.sqrt(2 / Math.PI)), scalar('one', 1), scalar('half', 0.5)],
    },
    dims: (b) => ({ x: [b, 9] }), lo: -4, hi: 4, ops: { unary: 1, binary: 0 },
  }));
});

describe('binary ops with broadcasting', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min']) {
    it(`${op} [N,3,1,5] ⊙ [4,1] and ⊙ a constant row`, async () => {
      await check({
        model: { nodes: [{ op, inputs: ['a', 'b'], outputs: ['y'] }], inputs: [{ name: 'a', dims: ['N', 3, 1, 5] }, { name: 'b', dims: [4, 1] }], outputs: [{ name: 'y' }] },
        dims: (n) => ({ a: [n, 3, 1, 5], b: [4, 1] }), lo: 0.5, hi: 2, ops: { binary: 1 },
      });
      await check({
        model: { nodes: [{ op, inputs: ['c', 'a'], outputs: ['y'] }], inputs: [{ name: 'a', dims: ['N', 3, 5] }], outputs: [{ name: 'y' }], initializers: [f('c', [5], 4, 0.5, 2)] },
        dims: (n) => ({ a: [n, 3, 5] }), lo: 0.5, hi: 2, ops: { binary: 1 },
      });
    });
  }
  it('Pow with a constant exponent, scalar constants as scale/shift', async () => {
    await check({
      model: { nodes: [{ op: 'Pow', inputs: ['a', 'e'], outputs: ['y'] }], inputs: [{ name: 'a', dims: ['N', 6] }], outputs: [{ name: 'y' }], initializers: [scalar('e', 3)] },
      dims: (n) => ({ a: [n, 6] }),
    });
    await check({
      model: {
        nodes: [{ op: 'Sub', inputs: ['k', 'a'], outputs: ['s'] }, { op: 'Mul', inputs: ['s', 'k'], outputs: ['m'] }, { op: 'Add', inputs: ['m', 'k'], outputs: ['y'] }],
        inputs: [{ name: 'a', dims: ['N', 6] }], outputs: [{ name: 'y' }], initializers: [scalar('k', -1.25)],
      },
      dims: (n) => ({ a: [n, 6] }), ops: { unary: 3, binary: 0 },
    });
  });
  it('Sum and Max with three inputs', () => check({
    model: {
      nodes: [{ op: 'Sum', inputs: ['a', 'b', 'c'], outputs: ['s'] }, { op: 'Max', inputs: ['s', 'a', 'b'], outputs: ['y'] }],
      inputs: [{ name: 'a', dims: ['N', 4] }, { name: 'b', dims: [1, 4] }, { name: 'c', dims: ['N', 1] }], outputs: [{ name: 'y' }],
    },
    dims: (n) => ({ a: [n, 4], b: [1, 4], c: [n, 1] }),
  }));
});

describe('linear fusion', () => {
  it('MatMul + Add + Relu + residual Add → one linear (odd sizes, rank-3 input)', () => check({
    model: {
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] }, { op: 'Add', inputs: ['bias', 'm'], outputs: ['a'] },
        { op: 'Relu', inputs: ['a'], outputs: ['r'] }, { op: 'Add', inputs: ['r', 'res'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 5, 13] }, { name: 'res', dims: ['N', 5, 7] }], outputs: [{ name: 'y' }],
      initializers: [f('w', [13, 7]), f('bias', [7], 5)],
    },
    dims: (n) => ({ x: [n, 5, 13], res: [n, 5, 7] }), ops: { linear: 1, binary: 0, unary: 0 },
  }));
  it('MatMul + Add + gelu(erf) → one linear with act', () => check({
    model: {
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] }, { op: 'Add', inputs: ['m', 'bias'], outputs: ['a'] },
        { op: 'Div', inputs: ['a', 'r2'], outputs: ['d'] }, { op: 'Erf', inputs: ['d'], outputs: ['e'] },
        { op: 'Add', inputs: ['e', 'one'], outputs: ['p'] }, { op: 'Mul', inputs: ['a', 'p'], outputs: ['q'] },
        { op: 'Mul', inputs: ['q', 'half'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 3, 17] }], outputs: [{ name: 'y' }],
      initializers: [f('w', [17, 33]), f('bias', [33], 5), scalar('r2', Math.SQRT2), scalar('one', 1), scalar('half', 0.5)],
    },
    dims: (n) => ({ x: [n, 3, 17] }), ops: { linear: 1, unary: 0, binary: 0 },
  }));
  it('a residual Add after row-permuting movements (window reverse) moves the permutation before the linear', async () => {
    // linear over tokens of 4 features; tokens [N, 4 rows, 6 cols] → windows of 2×3 and back, then + residual
    const nodes: NodeSpec[] = [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] }, { op: 'Add', inputs: ['m', 'bias'], outputs: ['a'] },
      { op: 'Reshape', inputs: ['a', 's1'], outputs: ['r1'] }, { op: 'Transpose', inputs: ['r1'], outputs: ['t'], attrs: { perm: [0, 1, 3, 2, 4, 5] } },
      { op: 'Reshape', inputs: ['t', 's2'], outputs: ['r2'] },
      { op: 'Slice', inputs: ['r2', 'st1', 'en1', 'ax'], outputs: ['p1'] }, { op: 'Slice', inputs: ['r2', 'st2', 'en2', 'ax'], outputs: ['p2'] },
      { op: 'Concat', inputs: ['p1', 'p2'], outputs: ['c'], attrs: { axis: 2 } }, { op: 'Add', inputs: ['res', 'c'], outputs: ['y'] },
    ];
    const inits = [f('w', [5, 4]), f('bias', [4], 2), i64('s1', [-1, 2, 2, 2, 3, 4]), i64('s2', [-1, 4, 6, 4]),
      i64('st1', [2]), i64('en1', [6]), i64('st2', [0]), i64('en2', [2]), i64('ax', [2])];
    await check({
      model: { nodes, inputs: [{ name: 'x', dims: ['N', 24, 5] }, { name: 'res', dims: ['N', 4, 6, 4] }], outputs: [{ name: 'y' }], initializers: inits },
      dims: (n) => ({ x: [n, 24, 5], res: [n, 4, 6, 4] }), batches: [1, 3, 6], extrapolated: true, ops: { linear: 1, binary: 0, index_map: 1 },
    });
    // a movement inside rows (features transposed) is not a row permutation: the Add stays
    const bad: NodeSpec[] = [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] }, { op: 'Reshape', inputs: ['m', 's'], outputs: ['r'] },
      { op: 'Transpose', inputs: ['r'], outputs: ['t'], attrs: { perm: [0, 2, 1] } }, { op: 'Add', inputs: ['t', 'res'], outputs: ['y'] },
    ];
    await check({
      model: { nodes: bad, inputs: [{ name: 'x', dims: ['N', 4, 5] }, { name: 'res', dims: ['N', 4, 4] }], outputs: [{ name: 'y' }], initializers: [f('w', [5, 4]), i64('s', [-1, 4, 4])] },
      dims: (n) => ({ x: [n, 4, 5], res: [n, 4, 4] }), ops: { linear: 1, binary: 1 },
    });
  });
  it('Gemm transB with alpha/beta and C → linear', () => check({
    model: {
      nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['y'], attrs: { transB: 1, alpha: 0.5, beta: { f: 2 } } }],
      inputs: [{ name: 'x', dims: ['N', 11] }], outputs: [{ name: 'y' }], initializers: [f('w', [6, 11]), f('c', [6], 9)],
    },
    dims: (n) => ({ x: [n, 11] }), ops: { linear: 1 },
  }));
  it('batched MatMul with a dynamic B, alpha from Mul/Div, trans_b from Transpose', () => check({
    model: {
      nodes: [
        { op: 'Mul', inputs: ['q', 's'], outputs: ['qs'] }, { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
        { op: 'MatMul', inputs: ['qs', 'kt'], outputs: ['m'] }, { op: 'Div', inputs: ['m', 'd'], outputs: ['y'] },
      ],
      inputs: [{ name: 'q', dims: ['N', 3, 5, 4] }, { name: 'k', dims: ['N', 3, 6, 4] }], outputs: [{ name: 'y' }],
      initializers: [scalar('s', 0.35), scalar('d', 1.5)],
    },
    dims: (n) => ({ q: [n, 3, 5, 4], k: [n, 3, 6, 4] }), ops: { matmul: 1, index_map: 0, unary: 0, binary: 0 },
  }));
  it('MatMul with broadcast batch dims ([N,3,5,4] × [1,3,4,2] and × [4,2] constant)', async () => {
    await check({
      model: { nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }], inputs: [{ name: 'a', dims: ['N', 3, 5, 4] }, { name: 'b', dims: [1, 3, 4, 2] }], outputs: [{ name: 'y' }] },
      dims: (n) => ({ a: [n, 3, 5, 4], b: [1, 3, 4, 2] }),
    });
    await check({
      model: { nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }], inputs: [{ name: 'a', dims: ['N', 5, 4] }], outputs: [{ name: 'y' }], initializers: [f('b', [4, 2])] },
      dims: (n) => ({ a: [n, 5, 4] }), ops: { linear: 1 },
    });
  });
});

describe('layernorm and softmax', () => {
  const lnNodes: NodeSpec[] = [
    { op: 'ReduceMean', inputs: ['x'], outputs: ['m'], attrs: { axes: [-1] } }, { op: 'Sub', inputs: ['x', 'm'], outputs: ['d'] },
    { op: 'Pow', inputs: ['d', 'two'], outputs: ['p'] }, { op: 'ReduceMean', inputs: ['p'], outputs: ['v'], attrs: { axes: [-1] } },
    { op: 'Add', inputs: ['v', 'eps'], outputs: ['ve'] }, { op: 'Sqrt', inputs: ['ve'], outputs: ['s'] },
    { op: 'Div', inputs: ['d', 's'], outputs: ['n'] }, { op: 'Mul', inputs: ['n', 'g'], outputs: ['gn'] }, { op: 'Add', inputs: ['gn', 'b'], outputs: ['y'] },
  ];
  it('decomposed LayerNorm → one layernorm', () => check({
    model: { nodes: lnNodes, inputs: [{ name: 'x', dims: ['N', 4, 19] }], outputs: [{ name: 'y' }],
      initializers: [scalar('two', 2), scalar('eps', 1e-5), f('g', [19], 2), f('b', [19], 3)] },
    dims: (n) => ({ x: [n, 4, 19] }), ops: { layernorm: 1, reduce: 0, binary: 0 },
  }));
  it('opset-17 LayerNormalization → one layernorm', () => check({
    model: { nodes: [{ op: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['y'], attrs: { axis: -1, epsilon: { f: 1e-5 } } }],
      inputs: [{ name: 'x', dims: ['N', 5, 12] }], outputs: [{ name: 'y' }], initializers: [f('g', [12], 2), f('b', [12], 3)], opset: 17 },
    dims: (n) => ({ x: [n, 5, 12] }), ops: { layernorm: 1 },
  }));
  it('Softmax on the last axis', () => check({
    model: { nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: { axis: -1 } }], inputs: [{ name: 'x', dims: ['N', 3, 11] }], outputs: [{ name: 'y' }] },
    dims: (n) => ({ x: [n, 3, 11] }), lo: -5, hi: 5, ops: { softmax: 1 },
  }));
  it('bias + reshape + window mask + reshape before Softmax fold into its periodic bias', () => check({
    model: {
      nodes: [
        { op: 'Add', inputs: ['x', 'bias'], outputs: ['a'] },
        { op: 'Reshape', inputs: ['a', 's5'], outputs: ['r'] }, { op: 'Add', inputs: ['r', 'mask'], outputs: ['m'] },
        { op: 'Reshape', inputs: ['m', 's4'], outputs: ['r2'] }, { op: 'Softmax', inputs: ['r2'], outputs: ['y'], attrs: { axis: -1 } },
      ],
      // x is [N·nW, heads, T, T] with nW = 2 windows, heads = 3, T = 5
      inputs: [{ name: 'x', dims: ['NW', 3, 5, 5] }], outputs: [{ name: 'y' }],
      initializers: [f('bias', [1, 3, 5, 5], 4), i64('s5', [-1, 2, 3, 5, 5]), f('mask', [1, 2, 1, 5, 5], 6, -3, 0), i64('s4', [-1, 3, 5, 5])],
    },
    dims: (n) => ({ x: [2 * n, 3, 5, 5] }), batches: [1, 3, 6], extrapolated: true, // NW must be even: probes at 4, 6, 8 ops: { softmax: 1, binary: 0 },
  }));
});

describe('reduce, argmax, cast', () => {
  it('ReduceMean/ReduceMax/ReduceSum over adjacent axes, keepdims 0 and 1', async () => {
    await check({ model: { nodes: [{ op: 'ReduceMean', inputs: ['x'], outputs: ['y'], attrs: { axes: [-1], keepdims: 0 } }], inputs: [{ name: 'x', dims: ['N', 3, 7] }], outputs: [{ name: 'y' }] }, dims: (n) => ({ x: [n, 3, 7] }), ops: { reduce: 1 } });
    await check({ model: { nodes: [{ op: 'ReduceMax', inputs: ['x'], outputs: ['y'], attrs: { axes: [1, 2] } }], inputs: [{ name: 'x', dims: ['N', 3, 7, 2] }], outputs: [{ name: 'y' }] }, dims: (n) => ({ x: [n, 3, 7, 2] }) });
    await check({ model: { nodes: [{ op: 'ReduceSum', inputs: ['x', 'ax'], outputs: ['y'], attrs: { keepdims: 0 } }], inputs: [{ name: 'x', dims: ['N', 3, 7] }], outputs: [{ name: 'y' }], initializers: [i64('ax', [1])] }, dims: (n) => ({ x: [n, 3, 7] }) });
    await check({ model: { nodes: [{ op: 'ReduceMin', inputs: ['x'], outputs: ['y'], attrs: { axes: [0] } }], inputs: [{ name: 'x', dims: ['N', 3] }], outputs: [{ name: 'y' }] }, dims: (n) => ({ x: [n, 3] }) });
  });
  it('GlobalAveragePool + Flatten', () => check({
    model: { nodes: [{ op: 'GlobalAveragePool', inputs: ['x'], outputs: ['p'] }, { op: 'Flatten', inputs: ['p'], outputs: ['y'] }], inputs: [{ name: 'x', dims: ['N', 5, 3, 3] }], outputs: [{ name: 'y' }] },
    dims: (n) => ({ x: [n, 5, 3, 3] }), ops: { reduce: 1, index_map: 0, copy: 0 },
  }));
  it('a reduction of a transposed view reduces the source in place (no index_map)', async () => {
    await check({
      model: { nodes: [{ op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [0, 3, 1, 2] } }, { op: 'GlobalAveragePool', inputs: ['t'], outputs: ['y'] }],
        inputs: [{ name: 'x', dims: ['N', 3, 5, 7] }], outputs: [{ name: 'y' }] },
      dims: (n) => ({ x: [n, 3, 5, 7] }), ops: { reduce: 1, index_map: 0 },
    });
    // the result comes out permuted: one small index_map after the reduce
    await check({
      model: { nodes: [{ op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [2, 0, 1] } }, { op: 'ReduceSum', inputs: ['t', 'ax'], outputs: ['y'], attrs: { keepdims: 0 } }],
        inputs: [{ name: 'x', dims: ['N', 6, 4] }], outputs: [{ name: 'y' }], initializers: [i64('ax', [1])] },
      dims: (n) => ({ x: [n, 6, 4] }), ops: { reduce: 1 },
    });
  });
  it('ArgMax on the last axis gives int64', () => check({
    model: { nodes: [{ op: 'ArgMax', inputs: ['x'], outputs: ['y'], attrs: { axis: -1, keepdims: 0 } }], inputs: [{ name: 'x', dims: ['N', 10] }], outputs: [{ name: 'y', dtype: 'int64' }] },
    dims: (n) => ({ x: [n, 10] }), ops: { argmax: 1 },
  }));
  it('Cast float → int32 truncates toward zero', () => check({
    model: { nodes: [{ op: 'Mul', inputs: ['x', 'k'], outputs: ['m'] }, { op: 'Cast', inputs: ['m'], outputs: ['y'], attrs: { to: 6 } }], inputs: [{ name: 'x', dims: ['N', 9] }], outputs: [{ name: 'y', dtype: 'int32' }], initializers: [scalar('k', 10)] },
    dims: (n) => ({ x: [n, 9] }), ops: { cast: 1 },
  }));
});

describe('data movement composes into index maps', () => {
  it('Reshape → Transpose → Reshape (window partition) is one index_map', () => check({
    model: {
      nodes: [
        { op: 'Reshape', inputs: ['x', 's1'], outputs: ['a'] }, { op: 'Transpose', inputs: ['a'], outputs: ['t'], attrs: { perm: [0, 1, 3, 2, 4, 5] } },
        { op: 'Reshape', inputs: ['t', 's2'], outputs: ['r'] }, { op: 'Relu', inputs: ['r'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 6, 4, 3] }], outputs: [{ name: 'y' }],
      initializers: [i64('s1', [-1, 3, 2, 2, 2, 3]), i64('s2', [-1, 4, 3])],
    },
    dims: (n) => ({ x: [n, 6, 4, 3] }), batches: [1, 3, 6], extrapolated: true, ops: { index_map: 1, unary: 1 },
  }));
  it('roll via Slice + Concat and a cyclic roll back compose; reshape-only chains alias', () => check({
    model: {
      nodes: [
        { op: 'Slice', inputs: ['x', 'st1', 'en1', 'ax'], outputs: ['p1'] }, { op: 'Slice', inputs: ['x', 'st2', 'en2', 'ax'], outputs: ['p2'] },
        { op: 'Concat', inputs: ['p1', 'p2'], outputs: ['c'], attrs: { axis: -2 } },
        { op: 'Unsqueeze', inputs: ['c', 'ax0'], outputs: ['u'] }, { op: 'Squeeze', inputs: ['u', 'ax0'], outputs: ['q'] },
        { op: 'Sigmoid', inputs: ['q'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 7, 5] }], outputs: [{ name: 'y' }],
      initializers: [i64('st1', [3]), i64('en1', [9223372036854775807]), i64('st2', [0]), i64('en2', [3]), i64('ax', [-2]), i64('ax0', [0])],
    },
    dims: (n) => ({ x: [n, 7, 5] }), ops: { index_map: 1, unary: 1, copy: 0 },
  }));
  it('Slice with negative steps, Gather with negative constant indices, Pad, Expand, Tile', async () => {
    const mk = (nodes: NodeSpec[], inits: TensorSpec[], dims = [5, 6]): Case => ({
      model: { nodes: [...nodes, { op: 'Neg', inputs: ['z'], outputs: ['y'] }], inputs: [{ name: 'x', dims: ['N', ...dims] }], outputs: [{ name: 'y' }], initializers: inits },
      dims: (n) => ({ x: [n, ...dims] }), ops: { index_map: 1, unary: 1 },
    });
    await check(mk([{ op: 'Slice', inputs: ['x', 'st', 'en', 'ax', 'sp'], outputs: ['z'] }], [i64('st', [-1, 4]), i64('en', [-100, 0]), i64('ax', [2, 1]), i64('sp', [-2, -1])]));
    await check(mk([{ op: 'Gather', inputs: ['x', 'ix'], outputs: ['z'], attrs: { axis: -1 } }], [{ name: 'ix', dtype: 'int64', dims: [2, 2], data: [-1, 0, 3, 3] }]));
    await check(mk([{ op: 'Pad', inputs: ['x', 'pads'], outputs: ['z'] }], [i64('pads', [0, 1, 0, 0, 2, 3])]));
    await check(mk([{ op: 'Expand', inputs: ['x', 'sh'], outputs: ['z'] }], [i64('sh', [2, 1, 5, 6])]));
    await check(mk([{ op: 'Tile', inputs: ['x', 'rep'], outputs: ['z'] }], [i64('rep', [1, 2, 3])]));
  });
  it('Split outputs and a Concat of two different inputs', () => check({
    model: {
      nodes: [
        { op: 'Split', inputs: ['x', 'sp'], outputs: ['s0', 's1'], attrs: { axis: 1 } },
        { op: 'Concat', inputs: ['s1', 'w', 's0'], outputs: ['c'], attrs: { axis: 1 } }, { op: 'Abs', inputs: ['c'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 5, 3] }, { name: 'w', dims: ['N', 2, 3] }], outputs: [{ name: 'y' }], initializers: [i64('sp', [2, 3])],
    },
    dims: (n) => ({ x: [n, 5, 3], w: [n, 2, 3] }),
  }));
  it('Split along the leading axis of a computed tensor aliases its parts (no copy)', async () => {
    await check({
      model: {
        nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'Split', inputs: ['r', 'sp'], outputs: ['a', 'b'], attrs: { axis: 0 } },
          { op: 'Sigmoid', inputs: ['a'], outputs: ['y1'] }, { op: 'Tanh', inputs: ['b'], outputs: ['y2'] }],
        inputs: [{ name: 'x', dims: [6, 4] }], outputs: [{ name: 'y1' }, { name: 'y2' }], initializers: [i64('sp', [2, 4])],
      },
      dims: () => ({ x: [6, 4] }), batches: [1], ops: { unary: 3, index_map: 0, copy: 0 },
    });
    // parts that are graph outputs themselves are copied out
    await check({
      model: {
        nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'Split', inputs: ['r', 'sp'], outputs: ['a', 'b'], attrs: { axis: 0 } }],
        inputs: [{ name: 'x', dims: [6, 4] }], outputs: [{ name: 'b' }, { name: 'a' }], initializers: [i64('sp', [3, 3])],
      },
      dims: () => ({ x: [6, 4] }), batches: [1], ops: { unary: 1, copy: 2 },
    });
  });
  it('an output that folds to a constant (Shape of the input) is copied from the constant blob', () => check({
    model: {
      nodes: [{ op: 'Shape', inputs: ['x'], outputs: ['s'] }, { op: 'Relu', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', dims: ['N', 2, 3] }], outputs: [{ name: 's', dtype: 'int64' }, { name: 'y' }],
    },
    dims: (n) => ({ x: [n, 2, 3] }), ops: { copy: 1, unary: 1 },
  }));
  it('graph outputs that are views, inputs and duplicates are copied correctly', () => check({
    model: {
      nodes: [{ op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [0, 2, 1] } }, { op: 'Identity', inputs: ['x'], outputs: ['i'] }],
      inputs: [{ name: 'x', dims: ['N', 2, 3] }], outputs: [{ name: 't' }, { name: 'i' }, { name: 'x' }],
    },
    dims: (n) => ({ x: [n, 2, 3] }),
  }));
});

describe('more forms', () => {
  it('LayerNorm written with x·x, Dropout and Identity in inference', () => check({
    model: {
      nodes: [
        { op: 'Dropout', inputs: ['x0'], outputs: ['x'] },
        { op: 'ReduceMean', inputs: ['x'], outputs: ['m'], attrs: { axes: [2] } }, { op: 'Sub', inputs: ['x', 'm'], outputs: ['d'] },
        { op: 'Mul', inputs: ['d', 'd'], outputs: ['p'] }, { op: 'ReduceMean', inputs: ['p'], outputs: ['v'], attrs: { axes: [-1] } },
        { op: 'Add', inputs: ['v', 'eps'], outputs: ['ve'] }, { op: 'Sqrt', inputs: ['ve'], outputs: ['s'] },
        { op: 'Div', inputs: ['d', 's'], outputs: ['n'] }, { op: 'Identity', inputs: ['n'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x0', dims: ['N', 2, 9] }], outputs: [{ name: 'y' }], initializers: [scalar('eps', 1e-6)],
    },
    dims: (n) => ({ x0: [n, 2, 9] }), ops: { layernorm: 1, reduce: 0, binary: 0 },
  }));
  it('Conv with auto_pad SAME_UPPER and Flatten/Gather with negative axes', async () => {
    await check({
      model: { nodes: [{ op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' } }],
        inputs: [{ name: 'x', dims: ['N', 2, 7, 6] }], outputs: [{ name: 'y' }], initializers: [f('w', [4, 2, 3, 3]), f('b', [4], 3)] },
      dims: (n) => ({ x: [n, 2, 7, 6] }),
    });
    await check({
      model: {
        nodes: [{ op: 'Gather', inputs: ['x', 'i'], outputs: ['g'], attrs: { axis: -2 } }, { op: 'Flatten', inputs: ['g'], outputs: ['fl'], attrs: { axis: -1 } },
          { op: 'Exp', inputs: ['fl'], outputs: ['y'] }],
        inputs: [{ name: 'x', dims: ['N', 3, 4, 5] }], outputs: [{ name: 'y' }], initializers: [{ name: 'i', dtype: 'int64', dims: [], data: [-1] }],
      },
      dims: (n) => ({ x: [n, 3, 4, 5] }), ops: { index_map: 1, unary: 1 },
    });
  });
  it('nodes that do not reach an output are dropped', () => check({
    model: {
      nodes: [{ op: 'Exp', inputs: ['x'], outputs: ['dead'] }, { op: 'Relu', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', dims: ['N', 3] }], outputs: [{ name: 'y' }],
    },
    dims: (n) => ({ x: [n, 3] }), ops: { unary: 1 },
  }));
  it('unsupported forms on run-time data name the node', async () => {
    const bad = async (spec: ModelSpec, re: RegExp) => {
      const s = await InferenceSession.create(buildModel(spec));
      const feeds: Record<string, Tensor> = {};
      for (const i of spec.inputs) feeds[i.name] = new Tensor('float32', rand(24, 1), i.dims as number[]);
      await expect(s.run(feeds)).rejects.toThrow(re);
      s.release();
    };
    await bad({ nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: { axis: 1 }, name: 'sm_axis1' }], inputs: [{ name: 'x', dims: [2, 3, 4] }], outputs: [{ name: 'y' }] },
      /node 'sm_axis1' \(Softmax\): softmax over axis 1 that is not the last is not supported/);
    await bad({ nodes: [{ op: 'Where', inputs: ['c', 'x', 'x'], outputs: ['y'], name: 'where_dyn' }], inputs: [{ name: 'x', dims: [2, 3, 4] }], outputs: [{ name: 'y' }],
      initializers: [{ name: 'c', dtype: 'bool', dims: [4], data: [1, 0, 1, 0] }] }, /node 'where_dyn' \(Where\): not supported on run-time data/);
    await bad({ nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { group: 2 }, name: 'conv_g2' }], inputs: [{ name: 'x', dims: [1, 2, 3, 4] }], outputs: [{ name: 'y' }],
      initializers: [f('w', [2, 1, 1, 1])] }, /node 'conv_g2' \(Conv\): grouped convolution \(group=2\) is not supported/);
  });
});

describe('arena', () => {
  it('elementwise chains run in place: one intermediate buffer, 64-byte aligned', async () => {
    const c: Case = {
      model: {
        nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['a'] }, { op: 'Sigmoid', inputs: ['a'], outputs: ['b'] },
          { op: 'Tanh', inputs: ['b'], outputs: ['d'] }, { op: 'Abs', inputs: ['d'], outputs: ['y'] }],
        inputs: [{ name: 'x', dims: ['N', 3, 5] }], outputs: [{ name: 'y' }],
      },
      dims: (n) => ({ x: [n, 3, 5] }), ops: { unary: 4 },
    };
    await check(c);
    const s = await InferenceSession.create(buildModel(c.model));
    expect(s.planStats({ x: [1, 3, 5] }).arenaBytes).toBe(64);
    expect(s.planStats({ x: [7, 3, 5] }).arenaBytes).toBe(448);
    s.release();
  });
});

describe('conv and folding', () => {
  it('Conv (patch embedding, stride 2) → im2col index_map + linear; NHWC permute aliases', () => check({
    model: {
      nodes: [
        { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
        { op: 'Transpose', inputs: ['c'], outputs: ['t'], attrs: { perm: [0, 2, 3, 1] } }, { op: 'Relu', inputs: ['t'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 3, 6, 8] }], outputs: [{ name: 'y' }], initializers: [f('w', [5, 3, 2, 2]), f('b', [5], 2)],
    },
    dims: (n) => ({ x: [n, 3, 6, 8] }), batches: [1, 3, 6], extrapolated: true, ops: { index_map: 1, linear: 1, unary: 1 },
  }));
  it('Conv 3×3 with padding and dilation, odd sizes', () => check({
    model: {
      nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { kernel_shape: [3, 3], pads: [1, 2, 1, 0], dilations: [1, 2], strides: [2, 1] } }],
      inputs: [{ name: 'x', dims: ['N', 2, 7, 9] }], outputs: [{ name: 'y' }], initializers: [f('w', [3, 2, 3, 3])],
    },
    dims: (n) => ({ x: [n, 2, 7, 9] }),
  }));
  it('shape sub-graphs and mask sub-graphs fold to constants (Shape, Gather, Range, Equal, Where, ScatterND, ConstantOfShape…)', () => check({
    model: {
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['sh'] }, { op: 'Gather', inputs: ['sh', 'i0'], outputs: ['b'], attrs: { axis: 0 } },
        { op: 'Unsqueeze', inputs: ['b', 'ax0'], outputs: ['bu'] }, { op: 'Concat', inputs: ['bu', 'm1'], outputs: ['ns'], attrs: { axis: 0 } },
        { op: 'Reshape', inputs: ['x', 'ns'], outputs: ['flat'] },
        { op: 'Gather', inputs: ['sh', 'i2'], outputs: ['w'], attrs: { axis: 0 } }, { op: 'Range', inputs: ['zero', 'w', 'one'], outputs: ['r'] },
        { op: 'Mod', inputs: ['r', 'two'], outputs: ['md'] }, { op: 'Equal', inputs: ['md', 'zero'], outputs: ['eq'] },
        { op: 'Not', inputs: ['eq'], outputs: ['ne'] },
        { op: 'Where', inputs: ['ne', 'fneg', 'fzero'], outputs: ['mask'] },
        { op: 'Shape', inputs: ['mask'], outputs: ['msh'] }, { op: 'ConstantOfShape', inputs: ['msh'], outputs: ['z'], attrs: { value: { t: { dtype: 'float32', dims: [1], data: [0.25] } } } },
        { op: 'ScatterND', inputs: ['z', 'sidx', 'supd'], outputs: ['zz'] },
        { op: 'Add', inputs: ['mask', 'zz'], outputs: ['mk'] }, { op: 'Cast', inputs: ['mk'], outputs: ['mkf'], attrs: { to: 1 } },
        { op: 'Tile', inputs: ['mkf', 'rep'], outputs: ['mt'] },
        { op: 'Add', inputs: ['flat', 'mt'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dims: ['N', 2, 3] }], outputs: [{ name: 'y' }],
      initializers: [
        { name: 'i0', dtype: 'int64', dims: [], data: [0] }, { name: 'i2', dtype: 'int64', dims: [], data: [2] }, i64('ax0', [0]), i64('m1', [-1]),
        { name: 'zero', dtype: 'int64', dims: [], data: [0] }, { name: 'one', dtype: 'int64', dims: [], data: [1] }, { name: 'two', dtype: 'int64', dims: [], data: [2] },
        scalar('fneg', -1.5), scalar('fzero', 0), { name: 'sidx', dtype: 'int64', dims: [1, 1], data: [1] }, { name: 'supd', dims: [1], data: [7] }, i64('rep', [2]),
      ],
    },
    dims: (n) => ({ x: [n, 2, 3] }), ops: { binary: 1, index_map: 0 },
  }));
});

// Random chains of Transpose/Slice (±steps)/roll (Slice+Concat)/Reshape/Pad/Gather checked bit-exactly.
function rng(seed: number) { let s = seed; return () => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x7fffffff; }; }
describe('random movement chains', () => {
  it('compose to the same result as onnxruntime (fixed batch and batch 7, extrapolated where possible)', async () => {
  let fails = 0;
  let extr = 0;
  for (let trial = 0; trial < 40; trial++) {
    const r = rng(trial + 1);
    const ri = (n: number) => Math.floor(r() * n);
    let dims = [2 + ri(3), 1 + ri(4), 1 + ri(5), 1 + ri(4)];
    const inDims = [...dims];
    const nodes: NodeSpec[] = [];
    const inits: TensorSpec[] = [];
    let cur = 'x';
    let k = 0;
    const steps = 1 + ri(5);
    for (let st = 0; st < steps; st++) {
      const out = `v${k++}`;
      const kind = ri(6);
      const rank = dims.length;
      if (kind === 0) { // transpose
        const perm = [...Array(rank).keys()].sort(() => r() - 0.5);
        nodes.push({ op: 'Transpose', inputs: [cur], outputs: [out], attrs: { perm } });
        dims = perm.map((p) => dims[p]);
      } else if (kind === 1) { // slice
        const ax = ri(rank); const d = dims[ax]; const b = ri(d); const e = b + 1 + ri(d - b); const step = r() < 0.3 ? -1 : 1;
        const nm = `s${k}`;
        if (step > 0) { inits.push({ name: nm + 'b', dtype: 'int64', dims: [1], data: [b] }, { name: nm + 'e', dtype: 'int64', dims: [1], data: [e] }); dims = [...dims]; dims[ax] = e - b; }
        else { inits.push({ name: nm + 'b', dtype: 'int64', dims: [1], data: [e - 1] }, { name: nm + 'e', dtype: 'int64', dims: [1], data: [b - 1 < 0 ? -d - 1 : b - 1] }); dims = [...dims]; dims[ax] = e - b; }
        inits.push({ name: nm + 'a', dtype: 'int64', dims: [1], data: [ax - (r() < 0.5 ? rank : 0)] }, { name: nm + 's', dtype: 'int64', dims: [1], data: [step] });
        nodes.push({ op: 'Slice', inputs: [cur, nm + 'b', nm + 'e', nm + 'a', nm + 's'], outputs: [out] });
      } else if (kind === 2) { // roll via slice+concat
        const ax = ri(rank); const d = dims[ax]; if (d < 2) { st--; k--; continue; }
        const sh = 1 + ri(d - 1); const nm = `r${k}`;
        inits.push({ name: nm + 'a', dtype: 'int64', dims: [1], data: [ax] }, { name: nm + '0', dtype: 'int64', dims: [1], data: [0] },
          { name: nm + 'm', dtype: 'int64', dims: [1], data: [sh] }, { name: nm + 'e', dtype: 'int64', dims: [1], data: [d] });
        nodes.push({ op: 'Slice', inputs: [cur, nm + 'm', nm + 'e', nm + 'a'], outputs: [out + 'p'] }, { op: 'Slice', inputs: [cur, nm + '0', nm + 'm', nm + 'a'], outputs: [out + 'q'] },
          { op: 'Concat', inputs: [out + 'p', out + 'q'], outputs: [out], attrs: { axis: ax } });
      } else if (kind === 3) { // reshape merge two adjacent dims
        if (rank < 2) { st--; k--; continue; }
        const a = ri(rank - 1); const nd = [...dims.slice(0, a), dims[a] * dims[a + 1], ...dims.slice(a + 2)];
        inits.push({ name: `sh${k}`, dtype: 'int64', dims: [nd.length], data: nd });
        nodes.push({ op: 'Reshape', inputs: [cur, `sh${k}`], outputs: [out] }); dims = nd;
      } else if (kind === 4) { // pad
        const pads = new Array(2 * rank).fill(0).map(() => (r() < 0.3 ? ri(2) : 0));
        inits.push({ name: `pd${k}`, dtype: 'int64', dims: [pads.length], data: pads });
        nodes.push({ op: 'Pad', inputs: [cur, `pd${k}`], outputs: [out] }); dims = dims.map((d, i) => d + pads[i] + pads[i + rank]);
      } else { // gather
        const ax = ri(rank); const d = dims[ax]; const idx = [ri(d), ri(d) - d];
        inits.push({ name: `g${k}`, dtype: 'int64', dims: [2], data: idx });
        nodes.push({ op: 'Gather', inputs: [cur, `g${k}`], outputs: [out], attrs: { axis: ax } }); dims = [...dims.slice(0, ax), 2, ...dims.slice(ax + 1)];
      }
      cur = out;
    }
    nodes.push({ op: 'Neg', inputs: [cur], outputs: ['y'] });
    const model = buildModel({ nodes, inputs: [{ name: 'x', dims: ['N', ...inDims.slice(1)] }], outputs: [{ name: 'y' }], initializers: inits });
    const s = await InferenceSession.create(model);
    for (const B of [inDims[0], 7]) {
      const d = [B, ...inDims.slice(1)];
      const x = rand(d.reduce((a, b) => a * b, 1), trial + 3);
      let want: Float32Array;
      try {
        const o = await ort.InferenceSession.create(model);
        want = (await o.run({ x: new ort.Tensor('float32', x, d) })).y.data as Float32Array;
      } catch { continue; }
      let got: Float32Array;
      try { got = (await s.run({ x: new Tensor('float32', x, d) })).y.data as Float32Array; } catch (e) { fails++; console.log('trial', trial, 'B', B, (e as Error).message); continue; }
      if (B === 7) extr += s.planStats({ x: d }).extrapolated ? 1 : 0;
      if (Array.from(got).join() !== Array.from(want).join()) { fails++; console.log('trial', trial, 'B', B, JSON.stringify(nodes.map((n) => n.op + JSON.stringify(n.attrs ?? {}))), inDims); }
    }
    s.release();
  }
  expect(fails).toBe(0);
  expect(extr).toBeGreaterThan(0);
  });
});
