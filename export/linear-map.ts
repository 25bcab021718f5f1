import { convPad } from '../train/layers/conv-padding.js';

/**
 * A linear map between flattened tensors (tfjs HWC order) as sparse entries
 * plus a bias: out[o] = Σ w·in[i] + bias[o]. Conv, dense, pooling, batch norm
 * and flatten all become one of these, and consecutive ones compose into one
 * (pooling and batch norm cost no HE level).
 */
export interface LinearMap {
  inShape: number[];
  outShape: number[];
  /**
   * Row-grouped entries, flat: rows[o] = [inIndex, weight, inIndex, weight, …]
   * (one array per row, not per entry: a wide conv has tens of millions).
   */
  rows: number[][];
  bias: Float64Array;
  /** Spatial subsampling of an image→image map (conv stride × pool size, through composition). */
  stride: number;
  /** Channel groups of a grouped convolution (kept through composition with elementwise maps). */
  groups?: number;
  /**
   * The model's weight layers (conv, dense) whose weights the map carries, in
   * the order they apply, parallel branches (a sum, a concatenation) in the
   * order of their inputs (batch norm, pooling and flatten fold in without
   * being named): the plan step computing the map is stamped with them, so
   * pruning finds a layer's step without matching layers to steps by order.
   */
  layers?: string[];
}

/** The weight layers of b then a (a ∘ b), or of parallel maps in their order, each once. */
export function layersOf(...maps: LinearMap[]): string[] | undefined {
  const names = [...new Set(maps.flatMap((m) => m.layers ?? []))];
  return names.length ? names : undefined;
}

export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function emptyMap(inShape: number[], outShape: number[]): LinearMap {
  return {
    inShape,
    outShape,
    rows: Array.from({ length: sizeOf(outShape) }, () => []),
    bias: new Float64Array(sizeOf(outShape)),
    stride: 1,
  };
}

/** True when row o is the single entry [o, w] (identity, scaling, batch norm): composition then just scales rows. */
function isElementwise(m: LinearMap): boolean {
  return m.rows.length === sizeOf(m.inShape) && m.rows.every((r, o) => r.length === 2 && r[0] === o);
}

/** a ∘ b: apply b, then a. */
export function compose(a: LinearMap, b: LinearMap): LinearMap {
  const out = emptyMap(b.inShape, a.outShape);
  out.stride = a.stride * b.stride;
  const layers = layersOf(b, a);
  if (layers) out.layers = layers;
  const ea = isElementwise(a),
    eb = isElementwise(b);
  const groups = ea ? b.groups : eb ? a.groups : undefined;
  if (groups && groups > 1) out.groups = groups;
  // Fast paths (a wide conv has tens of millions of entries): an elementwise map on either side only scales entries.
  if (ea) {
    a.rows.forEach((ra, o) => {
      const wa = ra[1];
      out.rows[o] = b.rows[o].map((v, e) => (e % 2 ? wa * v : v));
      out.bias[o] = a.bias[o] + wa * b.bias[o];
    });
    return out;
  }
  if (eb) {
    a.rows.forEach((r, o) => {
      let bias = a.bias[o];
      const row = r.slice();
      for (let e = 0; e < row.length; e += 2) {
        bias += row[e + 1] * b.bias[row[e]];
        row[e + 1] *= b.rows[row[e]][1];
      }
      out.rows[o] = row;
      out.bias[o] = bias;
    });
    return out;
  }
  for (let o = 0; o < a.rows.length; o++) {
    const acc = new Map<number, number>();
    let bias = a.bias[o];
    const ra = a.rows[o];
    for (let e = 0; e < ra.length; e += 2) {
      const m = ra[e],
        wa = ra[e + 1],
        rb = b.rows[m];
      bias += wa * b.bias[m];
      for (let f = 0; f < rb.length; f += 2) acc.set(rb[f], (acc.get(rb[f]) ?? 0) + wa * rb[f + 1]);
    }
    out.rows[o] = [...acc.entries()].filter(([, w]) => w !== 0).flat();
    out.bias[o] = bias;
  }
  return out;
}

/**
 * Maps of one tensor stacked along the last axis of their outputs (channel
 * concatenation, HWC order): output (p, c) is row (p, c − off_i) of part i,
 * for off_i ≤ c < off_i + C_i, with its bias; a part without a map (it does
 * not read this tensor) gives empty rows and `bias` (its own, or zero).
 * Every part has the output's shape but for the last axis, and the maps
 * share their input (`inShape`) and spatial stride.
 */
export function stackChannels(inShape: number[], parts: { map?: LinearMap; shape: number[]; bias?: Float64Array }[]): LinearMap {
  const channels = parts.map((q) => q.shape[q.shape.length - 1]);
  const C = channels.reduce((a, b) => a + b, 0);
  const outShape = [...parts[0].shape.slice(0, -1), C];
  const maps = parts.flatMap((q) => (q.map ? [q.map] : []));
  const strides = new Set(maps.map((m) => m.stride));
  if (strides.size > 1) throw new Error(`stackChannels: the maps subsample by different strides (${[...strides].join(', ')})`);
  const out = emptyMap(inShape, outShape);
  out.stride = maps[0]?.stride ?? 1;
  const layers = layersOf(...maps);
  if (layers) out.layers = layers;
  const pixels = sizeOf(outShape) / C;
  let offset = 0;
  parts.forEach((q, i) => {
    const Ci = channels[i],
      bias = q.bias ?? q.map?.bias;
    for (let p = 0; p < pixels; p++)
      for (let c = 0; c < Ci; c++) {
        const o = p * C + offset + c,
          from = p * Ci + c;
        if (q.map) out.rows[o] = q.map.rows[from];
        if (bias) out.bias[o] = bias[from];
      }
    offset += Ci;
  });
  return out;
}

/** Multiplies every weight (not the bias) by `s`. */
export function scaleWeights(m: LinearMap, s: number): void {
  for (const r of m.rows) for (let e = 1; e < r.length; e += 2) r[e] *= s;
}

/** Plain evaluation (reference for tests and for folding checks). */
export function applyMap(m: LinearMap, x: ArrayLike<number>): Float64Array {
  const y = Float64Array.from(m.bias);
  m.rows.forEach((r, o) => {
    for (let e = 0; e < r.length; e += 2) y[o] += r[e + 1] * x[r[e]];
  });
  return y;
}

/** Grouped 2-D convolution; kernel [k, k, Cin/G, Cout] flattened row-major. */
export function convMap(o: {
  inShape: [number, number, number];
  kernel: Float32Array;
  bias?: Float32Array;
  k: number;
  stride: number;
  pad: 'same' | 'valid' | number;
  groups: number;
  cout: number;
}): LinearMap {
  const [H, W, C] = o.inShape;
  const ph = convPad(o.pad, H, o.k, o.stride),
    pw = convPad(o.pad, W, o.k, o.stride);
  const cinG = C / o.groups,
    coutG = o.cout / o.groups;
  const m = emptyMap([H, W, C], [ph.out, pw.out, o.cout]);
  m.stride = o.stride;
  if (o.groups > 1) m.groups = o.groups;
  for (let oy = 0; oy < ph.out; oy++)
    for (let ox = 0; ox < pw.out; ox++)
      for (let co = 0; co < o.cout; co++) {
        const row = m.rows[(oy * pw.out + ox) * o.cout + co];
        const g = Math.floor(co / coutG);
        for (let ky = 0; ky < o.k; ky++) {
          const iy = oy * o.stride + ky - ph.top;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < o.k; kx++) {
            const ix = ox * o.stride + kx - pw.top;
            if (ix < 0 || ix >= W) continue;
            for (let c = 0; c < cinG; c++) {
              const w = o.kernel[((ky * o.k + kx) * cinG + c) * o.cout + co];
              if (w !== 0) row.push((iy * W + ix) * C + g * cinG + c, w);
            }
          }
        }
        if (o.bias) m.bias[(oy * pw.out + ox) * o.cout + co] = o.bias[co];
      }
  return m;
}

export function denseMap(kernel: Float32Array, bias: Float32Array | undefined, nIn: number, nOut: number, inShape: number[]): LinearMap {
  const m = emptyMap(inShape, [nOut]);
  for (let o = 0; o < nOut; o++) {
    for (let i = 0; i < nIn; i++) {
      const w = kernel[i * nOut + o];
      if (w !== 0) m.rows[o].push(i, w);
    }
    if (bias) m.bias[o] = bias[o];
  }
  return m;
}

/** Average pooling (window = stride = size); `global` averages each channel to 1x1. */
export function avgPoolMap(inShape: [number, number, number], size: number | 'global'): LinearMap {
  const [H, W, C] = inShape;
  const [sy, sx] = size === 'global' ? [H, W] : [size, size];
  const oh = Math.floor(H / sy),
    ow = Math.floor(W / sx);
  const m = emptyMap(inShape, size === 'global' ? [C] : [oh, ow, C]);
  m.stride = sy;
  const w = 1 / (sy * sx);
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++)
      for (let c = 0; c < C; c++) {
        const row = m.rows[(oy * ow + ox) * C + c];
        for (let dy = 0; dy < sy; dy++) for (let dx = 0; dx < sx; dx++) row.push(((oy * sy + dy) * W + ox * sx + dx) * C + c, w);
      }
  return m;
}

/** Batch norm in inference form: per channel (last axis) x·scale + shift. */
export function channelAffineMap(shape: number[], scale: Float64Array, shift: Float64Array): LinearMap {
  const C = shape[shape.length - 1];
  const m = emptyMap(shape, shape);
  m.rows.forEach((r, o) => {
    r.push(o, scale[o % C]);
    m.bias[o] = shift[o % C];
  });
  return m;
}

export function identityMap(inShape: number[], outShape: number[]): LinearMap {
  const m = emptyMap(inShape, outShape);
  m.rows.forEach((r, o) => r.push(o, 1));
  return m;
}
