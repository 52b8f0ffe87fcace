export { native } from './native.js';
export { InferenceSession, type SessionOptions, type RunOptions, type FetchesType, type InputMetadata, type PlanStats } from './session.js';
export { Tensor, type TensorType, type TensorData } from './tensor.js';
export { fewbit, type FewbitFn, type FewbitBits, type FewbitOptions, type FewbitTable } from './fewbit.js';
export { distill, type DistillOptions, type DistillResult, type DistillStep } from './distill/distill.js';
export { OnnxTrainGraph, type ActInfo, type TapeState } from './train/onnx-graph.js';
