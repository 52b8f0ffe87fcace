// 1,000 mutated model files: byte-level damage (flips, truncation, insertion, deletion, duplication)
// of two real models and structural damage (dims, data, names, op types, attributes, dtypes, opset)
// re-encoded as valid protobuf. Each must load and run, or fail with an Error that says what is wrong:
// never a crash, a hang, or an internal TypeError. A crash of the native side fails this file's
// worker (vitest reports it); a hang hits the test timeout.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';
import { mulberry32 } from '../src/util/random.js';
import { buildModel, rand } from './helpers/onnx-builder.js';

const { onnx } = onnxProto;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A small model with the ops a ViT is made of: x[N,4,8] → LayerNorm (decomposed) → MatMul → GELU (Erf) → Softmax → Transpose/Reshape. */
function smallModel(): Uint8Array {
  return buildModel({
    nodes: [
      { op: 'ReduceMean', inputs: ['x'], outputs: ['mu'], attrs: { axes: [-1], keepdims: 1 }, name: 'mean' },
      { op: 'Sub', inputs: ['x', 'mu'], outputs: ['d'], name: 'sub' },
      { op: 'Mul', inputs: ['d', 'd'], outputs: ['d2'], name: 'sq' },
      { op: 'ReduceMean', inputs: ['d2'], outputs: ['var'], attrs: { axes: [-1], keepdims: 1 }, name: 'var' },
      { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'], name: 'addeps' },
      { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'], name: 'sqrt' },
      { op: 'Div', inputs: ['d', 'sd'], outputs: ['n'], name: 'div' },
      { op: 'MatMul', inputs: ['n', 'W'], outputs: ['h'], name: 'mm' },
      { op: 'Add', inputs: ['h', 'B'], outputs: ['hb'], name: 'bias' },
      { op: 'Div', inputs: ['hb', 'sqrt2'], outputs: ['hs'], name: 'gdiv' },
      { op: 'Erf', inputs: ['hs'], outputs: ['he'], name: 'erf' },
      { op: 'Add', inputs: ['he', 'one'], outputs: ['h1'], name: 'gadd' },
      { op: 'Mul', inputs: ['hb', 'h1'], outputs: ['hm'], name: 'gmul' },
      { op: 'Mul', inputs: ['hm', 'half'], outputs: ['g'], name: 'ghalf' },
      { op: 'Softmax', inputs: ['g'], outputs: ['p'], attrs: { axis: -1 }, name: 'softmax' },
      { op: 'Transpose', inputs: ['p'], outputs: ['pt'], attrs: { perm: [0, 2, 1] }, name: 'tr' },
      { op: 'Reshape', inputs: ['pt', 'shape'], outputs: ['y'], name: 'reshape' },
    ],
    initializers: [
      { name: 'eps', dims: [], data: [1e-5] },
      { name: 'W', dims: [8, 6], data: rand(48, 3) },
      { name: 'B', dims: [6], data: rand(6, 4) },
      { name: 'sqrt2', dims: [], data: [Math.SQRT2] },
      { name: 'one', dims: [], data: [1] },
      { name: 'half', dims: [], data: [0.5] },
      { name: 'shape', dtype: 'int64', dims: [2], data: [-1, 24] },
    ],
    inputs: [{ name: 'x', dims: ['N', 4, 8] }],
    outputs: [{ name: 'y', dims: ['N', 24] }],
  });
}

type Rng = () => number;
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

function mutateBytes(src: Uint8Array, r: Rng): Uint8Array {
  const b = Uint8Array.from(src);
  const at = int(r, 0, b.length - 1);
  switch (int(r, 0, 5)) {
    case 0: { // flip a few bytes
      for (let i = int(r, 1, 8); i > 0; i--) b[int(r, 0, b.length - 1)] ^= 1 << int(r, 0, 7);
      return b;
    }
    case 1: return b.subarray(0, at); // truncate
    case 2: { // insert random bytes
      const ins = Uint8Array.from({ length: int(r, 1, 16) }, () => int(r, 0, 255));
      return Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
    }
    case 3: return Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + int(r, 1, 64)))]); // delete a range
    case 4: { // duplicate a range
      const end = Math.min(b.length, at + int(r, 1, 256));
      return Uint8Array.from([...b.subarray(0, end), ...b.subarray(at, end), ...b.subarray(end)]);
    }
    default: { // a varint-looking run: continuation bits set
      for (let i = at; i < Math.min(b.length, at + int(r, 1, 10)); i++) b[i] |= 0x80;
      return b;
    }
  }
}

const OPS = ['MatMul', 'Add', 'Mul', 'Softmax', 'Transpose', 'Reshape', 'Erf', 'ReduceMean', 'Gemm', 'Conv', 'Concat', 'Gather', 'Slice', 'Relu', 'LayerNormalization', 'Split', 'Where', 'Expand'];
const HUGE = [0, -1, -7, 1, 3, 2 ** 31 - 1, 2 ** 31, 2 ** 40, 2 ** 53 - 1, 1e6];

/** Decodes, damages one thing that still encodes as valid protobuf, re-encodes. */
function mutateModel(src: Uint8Array, r: Rng): Uint8Array {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const m: any = onnx.ModelProto.decode(src);
  const g = m.graph;
  const pick = <T>(a: T[]): T => a[int(r, 0, a.length - 1)];
  const nodes = g.node;
  const inits = g.initializer;
  switch (int(r, 0, 9)) {
    case 0: { // a dim of an initializer
      const t = pick(inits);
      if (t.dims.length) t.dims[int(r, 0, t.dims.length - 1)] = pick(HUGE);
      else t.dims = [pick(HUGE)];
      break;
    }
    case 1: { // an initializer's data cut short or grown
      const t = pick(inits);
      const raw: Uint8Array = t.rawData ?? new Uint8Array(0);
      t.rawData = r() < 0.5 ? raw.subarray(0, int(r, 0, Math.max(0, raw.length - 1))) : Uint8Array.from([...raw, 1, 2, 3]);
      break;
    }
    case 2: { // a node input renamed (dangling), emptied or pointed at another value
      const n = pick(nodes);
      if (n.input.length) n.input[int(r, 0, n.input.length - 1)] = pick(['', 'nope', ...nodes.flatMap((x: { output: string[] }) => x.output), ...inits.map((t: { name: string }) => t.name)]);
      break;
    }
    case 3: pick(nodes).opType = pick(OPS); break; // another op with the same inputs
    case 4: { // an attribute's value
      const n = pick(nodes.filter((x: { attribute: unknown[] }) => x.attribute.length) as { attribute: { i?: unknown; ints?: unknown[]; f?: number; type: number }[] }[]);
      if (n) {
        const a = pick(n.attribute);
        if (a.ints && a.ints.length) a.ints[int(r, 0, a.ints.length - 1)] = pick(HUGE);
        else a.i = pick(HUGE);
        if (r() < 0.2) a.type = int(r, 0, 14);
      }
      break;
    }
    case 5: { // an initializer's element type
      pick(inits).dataType = int(r, 0, 17);
      break;
    }
    case 6: { // a graph input's dims or type
      const v = g.input[0];
      const dims = v.type?.tensorType?.shape?.dim;
      if (dims?.length && r() < 0.7) dims[int(r, 0, dims.length - 1)] = { dimValue: pick(HUGE) };
      else if (v.type?.tensorType) v.type.tensorType.elemType = int(r, 0, 17);
      break;
    }
    case 7: m.opsetImport[0].version = pick([1, 7, 11, 12, 13, 17, 18, 21, 2 ** 40]); break;
    case 8: { // nodes out of order, dropped or doubled
      const i = int(r, 0, nodes.length - 1);
      if (r() < 0.4) nodes.splice(i, 1);
      else if (r() < 0.5) nodes.push(nodes[i]);
      else nodes.reverse();
      break;
    }
    default: { // outputs: renamed or removed
      if (r() < 0.5) g.output[0].name = pick(['', 'x', 'mu', 'nope']);
      else g.output = [];
    }
  }
  return onnx.ModelProto.encode(m).finish();
}

// An internal failure rather than a statement about the model.
const UNCLEAN = /Cannot read propert|is not a function|is not iterable|of undefined|of null|Maximum call stack|Invalid array length|Invalid typed array length|Array buffer allocation failed|out of memory/i;

describe('fuzzing model files', () => {
  it('1,000 mutated models: each runs or is refused with a clean error; none crashes or hangs', async () => {
    const demo = path.join(repoRoot, 'demo', 'teacher-gelu.onnx');
    if (!fs.existsSync(demo)) throw new Error(`fuzz-models.test: missing ${demo} (the bundled demo model)`);
    const bases = [smallModel(), new Uint8Array(fs.readFileSync(demo))];
    // both bases load and run as they are (otherwise every mutant would fail for the wrong reason)
    for (const b of bases) {
      const s = await InferenceSession.create(b);
      const dims = s.inputMetadata[0].shape.map((d) => (typeof d === 'number' ? d : 2));
      expect(Object.keys(await s.run({ [s.inputNames[0]]: new Tensor(new Float32Array(dims.reduce((a, c) => a * c, 1)), dims) }))).toEqual(s.outputNames);
      await s.release();
    }
    // FUZZ_SEED explores other mutant sets; the default one is the suite's
    const r = mulberry32(Number(process.env.FUZZ_SEED ?? 20261207));
    const counts = { ran: 0, refusedAtCreate: 0, refusedAtRun: 0 };
    const unclean: string[] = [];
    const N = 1000;
    for (let i = 0; i < N; i++) {
      // 3 in 5 byte-level, 2 in 5 structural; the (slow to compile) demo Swin in 1 of 10
      const base = i % 10 === 9 ? bases[1] : bases[0];
      let bytes: Uint8Array;
      try {
        bytes = i % 5 < 3 ? mutateBytes(base, r) : mutateModel(base, r);
      } catch {
        bytes = mutateBytes(base, r); // the structural mutation did not encode: damage the bytes instead
      }
      let stage: 'create' | 'run' = 'create';
      try {
        const s = await InferenceSession.create(bytes);
        stage = 'run';
        const meta = s.inputMetadata[0];
        const dims = meta ? meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 2)) : [];
        const n = dims.reduce((a, c) => a * c, 1);
        const feeds: Record<string, Tensor> = {};
        if (meta && n <= 1 << 20) {
          const data = meta.type === 'int64' ? new BigInt64Array(n) : meta.type === 'float32' ? new Float32Array(n) : new Uint8Array(n);
          feeds[meta.name] = new Tensor(data, dims);
        }
        await s.run(feeds);
        await s.release();
        counts.ran++;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (!(e instanceof Error) || msg.length === 0 || UNCLEAN.test(msg)) unclean.push(`#${i} (${stage}): ${msg.slice(0, 200)}`);
        if (stage === 'create') counts.refusedAtCreate++;
        else counts.refusedAtRun++;
      }
    }
    expect(unclean, unclean.join('\n')).toEqual([]);
    expect(counts.ran + counts.refusedAtCreate + counts.refusedAtRun).toBe(N);
    // the mutations reach past the protobuf decoder: some models load and are refused later, some run
    expect(counts.refusedAtRun).toBeGreaterThan(20);
    expect(counts.ran).toBeGreaterThan(20);
  }, 600_000);
});
