// Input normalisation x = (pixel/255 − mean)/std. Precedence for each of mean and std:
// command-line flag > model metadata_props (swinq.mean / swinq.std) > sidecar `<model>.json`
// ("mean"/"std", as the shared reference models ship) > 0 and 1.
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
