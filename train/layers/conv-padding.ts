/**
 * A convolution's padding along one axis of H inputs (kernel k, stride s):
 * the rows added before the input and the output length, tfjs's rule for
 * 'same' (the odd row goes after) and 'valid', or an explicit padding. Read
 * by the lowering to HE and by sub-block pruning, which must agree on where
 * each kernel tap lands.
 */
export function convPad(pad: 'same' | 'valid' | number, H: number, k: number, s: number): { top: number; out: number } {
  if (pad === 'same') {
    const out = Math.ceil(H / s);
    return { top: Math.floor(Math.max(0, (out - 1) * s + k - H) / 2), out };
  }
  const p = pad === 'valid' ? 0 : pad;
  return { top: p, out: Math.floor((H + 2 * p - k) / s) + 1 };
}
