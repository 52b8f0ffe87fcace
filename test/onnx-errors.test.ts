// Import and input validation: every malformed model or feed gives an Error naming what is wrong.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { InferenceSession } from '../src/session.js';
import { Tensor } from '../src/tensor.js';
import { loadModel } from '../src/onnx/load.js';
import { buildModel, rand, tensorBytes, type ModelSpec, type TensorSpec } from './helpers/onnx-builder.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-onnx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const addModel = (w: TensorSpec, extra: Partial<ModelSpec> = {}): ModelSpec => ({
  nodes: [{ op: 'Add', inputs: ['x', w.name!], outputs: ['y'] }],
  inputs: [{ name: 'x', dims: ['batch', 4] }], outputs: [{ name: 'y' }], initializers: [w], ...extra,
});
const write = (name: string, bytes: Uint8Array) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
};
const x4 = (b = 2) => new Tensor('float32', rand(b * 4, 3), [b, 4]);

describe('loading models', () => {
  it('refuses a truncated file, naming it', async () => {
    const full = buildModel(addModel({ name: 'w', dims: [4], data: [1, 2, 3, 4] }));
    const p = write('truncated.onnx', full.subarray(0, full.length - 9));
    await expect(InferenceSession.create(p)).rejects.toThrow(/truncated\.onnx: not a valid ONNX model/);
  });
  it('refuses garbage bytes and empty input', async () => {
    const p = write('garbage.onnx', Uint8Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) & 0xff));
    await expect(InferenceSession.create(p)).rejects.toThrow(/garbage\.onnx: not a valid ONNX model/);
    await expect(InferenceSession.create(new Uint8Array(0))).rejects.toThrow(/<buffer>: not a valid ONNX model/);
    await expect(InferenceSession.create(path.join(tmp, 'nope.onnx'))).rejects.toThrow(/nope\.onnx: cannot read model \(ENOENT\)/);
  });
  it('refuses an unsupported op at create, naming node and op', async () => {
    const m = buildModel({ nodes: [{ op: 'NonMaxSuppression', inputs: ['x', 'x'], outputs: ['y'], name: 'nms_1' }], inputs: [{ name: 'x', dims: [1, 4, 4] }], outputs: [{ name: 'y' }] });
    await expect(InferenceSession.create(m)).rejects.toThrow(/unsupported op 'NonMaxSuppression' at node 'nms_1'/);
  });
  it('refuses opsets outside 13–21', async () => {
    const m = buildModel(addModel({ name: 'w', dims: [4], data: [1, 2, 3, 4] }, { opset: 11 }));
    await expect(InferenceSession.create(m)).rejects.toThrow(/opset 11 is not supported \(need 13–21\)/);
    const m22 = buildModel(addModel({ name: 'w', dims: [4], data: [1, 2, 3, 4] }, { opset: 22 }));
    await expect(InferenceSession.create(m22)).rejects.toThrow(/opset 22 is not supported \(need 13–21\)/);
  });
  it('reads initializers in raw (unaligned), typed and external form, every dtype', async () => {
    const vals = [1, -2, 3, 4];
    const forms: TensorSpec[] = [];
    for (const dtype of ['float32', 'float64', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'] as const) {
      for (const form of ['raw', 'typed'] as const) {
        const data = dtype === 'uint8' || dtype === 'bool' ? vals.map(Math.abs).map((v) => (dtype === 'bool' ? v % 2 : v)) : vals;
        forms.push({ name: `w_${dtype}_${form}`, dtype, dims: [4], data, form });
      }
    }
    // one name of odd length before raw_data shifts it off 4-byte alignment in the protobuf buffer
    forms.push({ name: 'w_odd', dims: [4], data: [0.5, 1.5, 2.5, 3.5] });
    const bin = new Uint8Array([1, 2, 3, ...tensorBytes('float32', [9, 8, 7, 6])]);
    fs.writeFileSync(path.join(tmp, 'weights.bin'), bin);
    forms.push({ name: 'w_ext', dims: [4], data: [], form: 'external', external: { location: 'weights.bin', offset: 3, length: 16 } });
    const nodes: ModelSpec['nodes'] = [];
    let acc = 'x';
    forms.forEach((w, i) => {
      nodes.push({ op: 'Cast', inputs: [w.name!], outputs: [`c${i}`], attrs: { to: 1 } });
      nodes.push({ op: 'Add', inputs: [acc, `c${i}`], outputs: [`s${i}`] });
      acc = `s${i}`;
    });
    nodes.push({ op: 'Identity', inputs: [acc], outputs: ['y'] });
    const p = write('forms.onnx', buildModel({ nodes, inputs: [{ name: 'x', dims: ['batch', 4] }], outputs: [{ name: 'y' }], initializers: forms, metadata: { author: 'test', task: 'forms' } }));
    const s = await InferenceSession.create(p);
    expect(s.metadata).toEqual({ author: 'test', task: 'forms' });
    expect(s.inputNames).toEqual(['x']);
    expect(s.outputNames).toEqual(['y']);
    expect(s.inputMetadata[0]).toMatchObject({ name: 'x', type: 'float32', shape: ['batch', 4] });
    expect(s.modelPath).toBe(p);
    const x = x4(3);
    const got = (await s.run({ x })).y.data as Float32Array;
    const ref = await ort.InferenceSession.create(p);
    const want = (await ref.run({ x: new ort.Tensor('float32', x.data as Float32Array, [3, 4]) })).y.data as Float32Array;
    expect(Array.from(got)).toEqual(Array.from(want));
    // every Cast of an initializer folds: only the adds of x remain
    expect(s.planStats({ x: [3, 4] }).opCounts).toEqual({ binary: forms.length });
    s.release();
  });
  it('refuses missing external data, `..` escapes and absolute paths, naming tensor and file', async () => {
    const ext = (location: string) => addModel({ name: 'w_far', dims: [4], data: [], form: 'external', external: { location } });
    await expect(InferenceSession.create(write('m1.onnx', buildModel(ext('missing.bin'))))).rejects.toThrow(/tensor 'w_far': cannot open external data file 'missing\.bin'/);
    await expect(InferenceSession.create(write('m2.onnx', buildModel(ext('../etc/passwd'))))).rejects.toThrow(/tensor 'w_far': external data location '\.\.\/etc\/passwd' must be a relative path inside the model directory/);
    await expect(InferenceSession.create(write('m3.onnx', buildModel(ext('/etc/passwd'))))).rejects.toThrow(/tensor 'w_far': external data location '\/etc\/passwd' must be a relative path/);
    fs.writeFileSync(path.join(tmp, 'short.bin'), new Uint8Array(8));
    await expect(InferenceSession.create(write('m4.onnx', buildModel(ext('short.bin'))))).rejects.toThrow(/tensor 'w_far': external data range .* is outside 'short\.bin' \(8 bytes\)/);
    await expect(InferenceSession.create(buildModel(ext('weights.bin')))).rejects.toThrow(/cannot be resolved for a model loaded from a buffer/);
  });
  it('refuses initializers whose data does not match their dims', () => {
    expect(() => loadModel(buildModel(addModel({ name: 'w_bad', dims: [5], data: [1, 2, 3, 4] })))).toThrow(/tensor 'w_bad': has 16 bytes of data, expected 5 elements × 4 bytes = 20/);
    expect(() => loadModel(buildModel(addModel({ name: 'w_bad', dims: [5], data: [1, 2, 3, 4], form: 'typed' })))).toThrow(/tensor 'w_bad': has 4 values, expected 5/);
    expect(() => loadModel(buildModel(addModel({ name: 'w_huge', dims: [1 << 20, 1 << 20], data: [] })))).toThrow(/tensor 'w_huge': 1099511627776 elements is too large/);
  });
});

describe('validating feeds and shapes', () => {
  const model = buildModel({
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: ['batch', 3, 4] }], outputs: [{ name: 'y' }], initializers: [{ name: 'w', dims: [4, 2], data: rand(8, 1) }],
  });
  it('names the input, expected vs got', async () => {
    const s = await InferenceSession.create(model);
    await expect(s.run({})).rejects.toThrow(/missing input 'x'/);
    await expect(s.run({ x: new Tensor('float32', rand(12, 1), [1, 3, 4]), z: x4() })).rejects.toThrow(/unknown input 'z'/);
    await expect(s.run({ x: new Tensor('int32', new Int32Array(12), [1, 3, 4]) })).rejects.toThrow(/input 'x' has type int32, expected float32/);
    await expect(s.run({ x: new Tensor('float32', rand(12, 1), [3, 4]) })).rejects.toThrow(/input 'x' has rank 2 .*expected rank 3/);
    await expect(s.run({ x: new Tensor('float32', rand(10, 1), [1, 2, 5]) })).rejects.toThrow(/input 'x' dim 1 is 2, expected 3 \(expected \[batch,3,4\], got \[1,2,5\]\)/);
    expect(() => new Tensor('float32', rand(5, 1), [2, 3])).toThrow(/data has 5 elements but dims \[2,3\] need 6/);
    const ok = await s.run({ x: new Tensor('float32', rand(24, 1), [2, 3, 4]) });
    expect(ok.y.dims).toEqual([2, 3, 2]);
    s.release();
    await expect(s.run({ x: new Tensor('float32', rand(24, 1), [2, 3, 4]) })).rejects.toThrow(/released/);
  });
  it('hostile dims (2^40 elements) give an error naming the node, never a crash', async () => {
    const m = buildModel({
      nodes: [{ op: 'Expand', inputs: ['x', 'shape'], outputs: ['y'], name: 'expand_big' }],
      inputs: [{ name: 'x', dims: [1, 1] }], outputs: [{ name: 'y' }],
      initializers: [{ name: 'shape', dtype: 'int64', dims: [2], data: [2 ** 20, 2 ** 20] }],
    });
    const s = await InferenceSession.create(m);
    await expect(s.run({ x: new Tensor('float32', [1], [1, 1]) })).rejects.toThrow(/node 'expand_big' \(Expand\).*1099511627776 elements, more than the limit/);
    const r = buildModel({
      nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'], name: 'reshape_bad' }],
      inputs: [{ name: 'x', dims: ['n', 4] }], outputs: [{ name: 'y' }],
      initializers: [{ name: 'shape', dtype: 'int64', dims: [2], data: [3, -1] }],
    });
    const s2 = await InferenceSession.create(r);
    await expect(s2.run({ x: new Tensor('float32', rand(8, 1), [2, 4]) })).rejects.toThrow(/node 'reshape_bad' \(Reshape\): cannot reshape \[2,4\]/);
  });
  it('ops that cannot run on run-time data name the node', async () => {
    const m = buildModel({
      nodes: [{ op: 'Gather', inputs: ['w', 'i'], outputs: ['y'], name: 'dyn_gather' }],
      inputs: [{ name: 'i', dtype: 'int64', dims: [2] }], outputs: [{ name: 'y' }], initializers: [{ name: 'w', dims: [4], data: [1, 2, 3, 4] }],
    });
    const s = await InferenceSession.create(m);
    await expect(s.run({ i: new Tensor('int64', [1, 2], [2]) })).rejects.toThrow(/node 'dyn_gather' \(Gather\): indices must be constant/);
  });
});
