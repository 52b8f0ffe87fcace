// Input normalisation x = (pixel/255 − mean)/std. Precedence for each of mean and std:
// command-line flag > model metadata_props (swinq.mean / swinq.std) > sidecar `<model>.json`
// ("mean"/"std", as the shared reference models ship) > 0 and 1.
// resolveNormalization gives one number each (single-channel models); resolveChannelNormalization
// also takes per-channel lists ("0.485,0.456,0.406", "[…]" or a JSON array), one value or C values.
import fs from 'node:fs';

export interface Normalization {
  mean: number;
  std: number;
  /** Where each value came from, e.g. "flag --mean", "metadata swinq.std", "sidecar m.onnx.json", "default". */
  meanSource: string;
  stdSource: string;
}

function parseScalar(v: unknown, what: string): number {
  // Accept a number, a numeric string, or a one-element list (per-channel with one channel).
  let x: unknown = v;
  if (typeof x === 'string') {
    const s = x.trim().replace(/^\[(.*)\]$/, '$1').trim();
    x = s === '' ? NaN : Number(s);
  } else if (Array.isArray(x)) {
    if (x.length !== 1) throw new Error(`${what} must be one number (single-channel input), got ${JSON.stringify(v)}`);
    x = Number(x[0]);
  }
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${what} must be a finite number, got ${JSON.stringify(v)}`);
  return x;
}

function sidecarPaths(modelPath: string): string[] {
  const out = [`${modelPath}.json`];
  if (/\.onnx$/i.test(modelPath)) out.push(modelPath.replace(/\.onnx$/i, '.json'));
  return out;
}

function readSidecar(modelPath: string): { file: string; json: Record<string, unknown> } | null {
  for (const file of sidecarPaths(modelPath)) {
    if (!fs.existsSync(file)) continue;
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (json && typeof json === 'object' && !Array.isArray(json)) return { file, json: json as Record<string, unknown> };
    throw new Error(`${file}: expected a JSON object`);
  }
  return null;
}

export function resolveNormalization(opts: {
  mean?: number | string;
  std?: number | string;
  metadata?: Record<string, string>;
  modelPath?: string;
}): Normalization {
  const sidecar = opts.modelPath ? readSidecar(opts.modelPath) : null;
  const pick = (key: 'mean' | 'std', fallback: number): [number, string] => {
    const flag = opts[key];
    if (flag !== undefined) return [parseScalar(flag, `--${key}`), `flag --${key}`];
    const meta = opts.metadata?.[`swinq.${key}`];
    if (meta !== undefined) return [parseScalar(meta, `model metadata_props 'swinq.${key}'`), `metadata swinq.${key}`];
    if (sidecar && key in sidecar.json) return [parseScalar(sidecar.json[key], `${sidecar.file}: "${key}"`), `sidecar ${sidecar.file}`];
    return [fallback, 'default'];
  };
  const [mean, meanSource] = pick('mean', 0);
  const [std, stdSource] = pick('std', 1);
  if (!(std > 0)) throw new Error(`std must be > 0, got ${std} (from ${stdSource})`);
  return { mean, std, meanSource, stdSource };
}

/** One line for stderr saying which values were used and where they came from. */
export function describeNormalization(n: Normalization): string {
  const src = n.meanSource === n.stdSource ? `from ${n.meanSource}` : `mean from ${n.meanSource}, std from ${n.stdSource}`;
  return `normalization: mean=${n.mean} std=${n.std} (${src})`;
}

/** Per-channel normalisation: mean[c], std[c] for each of the model's C input channels. */
export interface ChannelNormalization {
  mean: number[];
  std: number[];
  meanSource: string;
  stdSource: string;
}

/** Parses one number or a list: 0.5, "0.5", "0.485,0.456,0.406", "[0.485, 0.456]", [0.485, 0.456]. */
export function parseNumberList(v: unknown, what: string): number[] {
  let xs: unknown[];
  if (typeof v === 'number') xs = [v];
  else if (Array.isArray(v)) xs = v;
  else if (typeof v === 'string') {
    const s = v.trim().replace(/^\[(.*)\]$/, '$1').trim();
    xs = s === '' ? [NaN] : s.split(',').map((t) => (t.trim() === '' ? NaN : Number(t.trim())));
  } else xs = [v];
  if (xs.length === 0) throw new Error(`${what} must be a number or a comma-separated list of numbers, got ${JSON.stringify(v)}`);
  const out = xs.map((x) => (typeof x === 'string' && x.trim() !== '' ? Number(x) : x));
  if (out.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new Error(`${what} must be a number or a comma-separated list of finite numbers, got ${JSON.stringify(v)}`);
  }
  return out as number[];
}

/**
 * Like resolveNormalization, but each of mean/std may be a list. With `channels` (the model input's
 * C) a list must have 1 or C values (the error names the flag or the metadata/sidecar it came from)
 * and the result is expanded to C values.
 */
export function resolveChannelNormalization(opts: {
  mean?: number | string | number[];
  std?: number | string | number[];
  metadata?: Record<string, string>;
  modelPath?: string;
  channels?: number;
}): ChannelNormalization {
  const sidecar = opts.modelPath ? readSidecar(opts.modelPath) : null;
  const C = opts.channels;
  const pick = (key: 'mean' | 'std', fallback: number): [number[], string] => {
    let vals: number[];
    let src: string;
    let what: string;
    const flag = opts[key];
    const meta = opts.metadata?.[`swinq.${key}`];
    if (flag !== undefined) { what = `--${key}`; vals = parseNumberList(flag, what); src = `flag --${key}`; }
    else if (meta !== undefined) { what = `model metadata_props 'swinq.${key}'`; vals = parseNumberList(meta, what); src = `metadata swinq.${key}`; }
    else if (sidecar && key in sidecar.json) { what = `${sidecar.file}: "${key}"`; vals = parseNumberList(sidecar.json[key], what); src = `sidecar ${sidecar.file}`; }
    else return [new Array(C ?? 1).fill(fallback), 'default'];
    if (C !== undefined) {
      if (vals.length !== 1 && vals.length !== C) {
        throw new Error(`${what} has ${vals.length} values; the model input has ${C} channel${C === 1 ? '' : 's'}: give 1${C === 1 ? '' : ` or ${C}`} (comma-separated)`);
      }
      if (vals.length === 1) vals = new Array(C).fill(vals[0]);
    }
    return [vals, src];
  };
  const [mean, meanSource] = pick('mean', 0);
  const [std, stdSource] = pick('std', 1);
  const bad = std.findIndex((s) => !(s > 0));
  if (bad >= 0) throw new Error(`std must be > 0, got ${std[bad]}${std.length > 1 ? ` for channel ${bad}` : ''} (from ${stdSource})`);
  return { mean, std, meanSource, stdSource };
}

/** The metadata_props string of a per-channel value: one number, or a comma list. */
export function formatNumberList(xs: readonly number[]): string {
  return xs.length > 1 && xs.every((x) => x === xs[0]) ? String(xs[0]) : xs.map(String).join(',');
}

/** One line for stderr, as describeNormalization, for per-channel values. */
export function describeChannelNormalization(n: ChannelNormalization): string {
  const src = n.meanSource === n.stdSource ? `from ${n.meanSource}` : `mean from ${n.meanSource}, std from ${n.stdSource}`;
  return `normalization: mean=${formatNumberList(n.mean)} std=${formatNumberList(n.std)} (${src})`;
}
