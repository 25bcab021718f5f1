/**
 * Where each element of a tensor sits in the slots of one ciphertext. Tensors
 * are indexed in tfjs order (HWC for images, flattened the same way), so
 * element i of the flattened tensor is at slot `slotOf[i]`. Slots not listed
 * may hold garbage (partial sums, squared junk): consumers only read listed
 * slots, and every plaintext operand is zero elsewhere.
 */
export interface Layout {
  /** Tensor shape in tfjs order without the batch ([H, W, C] or [n]). */
  shape: number[];
  slotOf: Int32Array;
  /** The whole vector also repeats every `period` slots (dense outputs after rotate-and-sum). */
  period?: number;
  /** Compact description, e.g. "12x12x5 @ 784c+56y+2x". */
  desc: string;
}

export const layoutSize = (l: Layout) => l.shape.reduce((a, b) => a * b, 1);

/** An image [H, W, C] at slot offset + c·cStride + y·yStride + x·xStride. */
export function imageLayout(shape: [number, number, number], strides: { c: number; y: number; x: number }, offset = 0): Layout {
  const [H, W, C] = shape;
  const slotOf = new Int32Array(H * W * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) {
    slotOf[(y * W + x) * C + c] = offset + c * strides.c + y * strides.y + x * strides.x;
  }
  const term = (k: number, v: string) => (k === 0 ? '' : `${k === 1 ? '' : k}${v}`);
  const desc = `${H}x${W}x${C} @ ${[offset ? String(offset) : '', term(strides.c, 'c'), term(strides.y, 'y'), term(strides.x, 'x')].filter(Boolean).join('+') || '0'}`;
  return { shape: [H, W, C], slotOf, desc };
}

/** A vector of n at slots 0..n-1, repeated every `period` slots when given. */
export function vectorLayout(n: number, period?: number): Layout {
  return { shape: [n], slotOf: Int32Array.from({ length: n }, (_, i) => i), period, desc: `${n} @ i${period ? ` (every ${period})` : ''}` };
}

export function maxSlot(l: Layout): number {
  let m = 0;
  for (const s of l.slotOf) m = Math.max(m, s);
  return m;
}
