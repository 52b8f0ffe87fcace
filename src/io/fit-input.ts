// Fits MNIST-style gray images (h×w uint8) to a model's image input [N, C, H, W] (or [N, H, W]):
// pixel/255 → bilinear resize to H×W (F.interpolate(mode='bilinear', align_corners=False,
// antialias=False): what a torchvision pipeline does to a tensor) → the gray plane replicated to C
// channels → per-channel (x − mean[c]) / std[c], all in float32 like ToTensor + Normalize.
// Used by calibrate and eval so an RGB 224×224 model (torchvision Swin-T) can be fed Fashion-MNIST.
import { formatDims, type Dim } from './model-info.js';
import { IdxError, type LabelledImages } from './idx.js';

export interface ImageLayout {
  /** the model input's name (for messages) */
  name: string;
  /** 4: [N, C, H, W]; 3: [N, H, W] (C = 1) */
  rank: 3 | 4;
  channels: number;
  height: number;
  width: number;
  /** the data set's image size */
  srcHeight: number;
  srcWidth: number;
  /** true when H×W differs from the data's h×w (the images are resized) */
  resized: boolean;
}

// Bound on what a model may ask for, so a corrupt dim gives an error, not a multi-GB allocation.
const MAX_SIDE = 8192;
const MAX_CHANNELS = 64;

/**
 * How to feed the images of `dataName` (srcH×srcW gray) to input `inp`. Symbolic C/H/W take the
 * data's values (C = 1); fixed ones are honoured (resize to H×W, replicate to C channels).
 */
export function imageLayout(
  inp: { name: string; dims: readonly Dim[] | null },
  srcH: number, srcW: number, dataName: string,
): ImageLayout {
  const d = inp.dims;
  const fixed = (x: Dim | undefined, dflt: number) => (typeof x === 'number' && x > 0 ? x : dflt);
  let rank: 3 | 4;
  let C: number, H: number, W: number;
  if (d === null) { rank = 4; C = 1; H = srcH; W = srcW; }
  else if (d.length === 4) { rank = 4; C = fixed(d[1], 1); H = fixed(d[2], srcH); W = fixed(d[3], srcW); }
  else if (d.length === 3) { rank = 3; C = 1; H = fixed(d[1], srcH); W = fixed(d[2], srcW); }
  else {
    throw new IdxError(`input '${inp.name}' expects ${formatDims(d)}; images from ${dataName} can be fed as [batch, C, H, W] or [batch, H, W] only`);
  }
  if (C > MAX_CHANNELS) throw new IdxError(`input '${inp.name}' expects ${formatDims(d)}: ${C} channels is more than the ${MAX_CHANNELS} gray images can be replicated to`);
  if (H > MAX_SIDE || W > MAX_SIDE) throw new IdxError(`input '${inp.name}' expects ${formatDims(d)}: ${H}×${W} is larger than ${MAX_SIDE}×${MAX_SIDE}`);
  return { name: inp.name, rank, channels: C, height: H, width: W, srcHeight: srcH, srcWidth: srcW, resized: H !== srcH || W !== srcW };
}

/** The dims of one batch of `batch` images. */
export function layoutDims(l: ImageLayout, batch: number): number[] {
  return l.rank === 4 ? [batch, l.channels, l.height, l.width] : [batch, l.height, l.width];
}

/** One line for stderr: what is done to the images, or '' when they are fed as they are. */
export function describeLayout(l: ImageLayout): string {
  if (!l.resized && l.channels === 1) return '';
  const parts: string[] = [];
  if (l.resized) parts.push(`resized ${l.srcHeight}×${l.srcWidth} → ${l.height}×${l.width} (bilinear, align_corners=false)`);
  if (l.channels > 1) parts.push(`gray replicated to ${l.channels} channels`);
  return `input '${l.name}': images ${parts.join(', ')}`;
}

/** Source index and weights along one axis, as PyTorch's upsample_bilinear2d (align_corners=false). */
function axisTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w0: Float32Array; w1: Float32Array } {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize), w1 = new Float32Array(outSize);
  const f = Math.fround;
  const scale = f(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    // src = scale·(o + 0.5) − 0.5, clamped at 0 (PyTorch's area_pixel_compute_source_index)
    const src = Math.max(f(f(scale * f(o + 0.5)) - 0.5), 0);
    const x0 = Math.min(Math.floor(src), inSize - 1);
    const l1 = f(src - x0);
    i0[o] = x0;
    i1[o] = x0 < inSize - 1 ? x0 + 1 : x0;
    w1[o] = l1;
    w0[o] = f(1 - l1);
  }
  return { i0, i1, w0, w1 };
}

/**
 * Bilinear resize of one h×w float plane to H×W (align_corners=false, no antialias), float32
 * arithmetic in PyTorch's order: h0λ·(w0λ·a + w1λ·b) + h1λ·(w0λ·c + w1λ·d).
 */
export function resizeBilinear(src: ArrayLike<number>, h: number, w: number, H: number, W: number, out = new Float32Array(H * W)): Float32Array {
  for (const [k, v] of Object.entries({ h, w, H, W })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`resizeBilinear: ${k} must be an integer ≥ 1, got ${v}`);
  }
  if (src.length !== h * w) throw new RangeError(`resizeBilinear: source has ${src.length} values, ${h}×${w} needs ${h * w}`);
  if (out.length !== H * W) throw new RangeError(`resizeBilinear: output has ${out.length} values, ${H}×${W} needs ${H * W}`);
  const f = Math.fround;
  const ry = axisTaps(h, H), rx = axisTaps(w, W);
  for (let y = 0; y < H; y++) {
    const a = ry.i0[y] * w, b = ry.i1[y] * w, hy0 = ry.w0[y], hy1 = ry.w1[y];
    for (let x = 0; x < W; x++) {
      const x0 = rx.i0[x], x1 = rx.i1[x], wx0 = rx.w0[x], wx1 = rx.w1[x];
      const top = f(f(wx0 * src[a + x0]) + f(wx1 * src[a + x1]));
      const bot = f(f(wx0 * src[b + x0]) + f(wx1 * src[b + x1]));
      out[y * W + x] = f(f(hy0 * top) + f(hy1 * bot));
    }
  }
  return out;
}

/**
 * Images [start, start+count) of `ds` as float32 in the layout's dims, normalised per channel.
 * mean/std have 1 or C values. With no resize and C = 1 the result equals normalizedImages.
 */
export function fitImages(
  ds: LabelledImages, start: number, count: number, l: ImageLayout, norm: { mean: readonly number[]; std: readonly number[] },
): Float32Array {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > ds.count) {
    throw new IdxError(`${ds.imagesFile}: images [${start}, ${start + count}) out of range (has ${ds.count})`);
  }
  if (ds.height !== l.srcHeight || ds.width !== l.srcWidth) {
    throw new IdxError(`${ds.imagesFile}: images are ${ds.height}×${ds.width}, the input layout was made for ${l.srcHeight}×${l.srcWidth}`);
  }
  const C = l.channels;
  const per = (k: 'mean' | 'std') => {
    const v = norm[k];
    if (v.length !== 1 && v.length !== C) throw new Error(`--${k} has ${v.length} values; input '${l.name}' has ${C} channels: give 1 or ${C}`);
    return Array.from({ length: C }, (_, c) => Math.fround(v.length === 1 ? v[0] : v[c]));
  };
  const mean = per('mean'), std = per('std');
  const f = Math.fround;
  const px = ds.height * ds.width;
  const plane = l.height * l.width;
  const out = new Float32Array(count * C * plane);
  // pixel/255 as ToTensor gives it
  const unit = new Float32Array(256);
  for (let v = 0; v < 256; v++) unit[v] = f(v / 255);
  const gray = new Float32Array(px);
  const big = l.resized ? new Float32Array(plane) : gray;
  for (let i = 0; i < count; i++) {
    const src = ds.images.subarray((start + i) * px, (start + i + 1) * px);
    for (let k = 0; k < px; k++) gray[k] = unit[src[k]];
    if (l.resized) resizeBilinear(gray, ds.height, ds.width, l.height, l.width, big);
    for (let c = 0; c < C; c++) {
      const o = (i * C + c) * plane, m = mean[c], s = std[c];
      for (let k = 0; k < plane; k++) out[o + k] = f(f(big[k] - m) / s);
    }
  }
  return out;
}
