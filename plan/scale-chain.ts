import { stepLevels, type Plan } from './plan.js';

/**
 * Which rescale primes must match the scale. A linear step encodes its
 * weights at the prime its rescale divides by, so its output keeps the
 * input's scale whatever that prime's size: its bits are only the weights'
 * precision. A square multiplies two ciphertexts at scale Δ and divides Δ²
 * by its level's prime, so that prime must be ≈ Δ or the scale drifts by
 * their ratio at every square until the values are noise (while the
 * simulator, dividing exactly, still looks right).
 */
export function scaleChainError(plan: Plan): string | undefined {
  const { coeffModulusBits: bits, scaleBits } = plan.params;
  const levels = stepLevels(plan);
  for (const [i, st] of plan.steps.entries()) {
    if (st.kind !== 'square') continue;
    const b = bits[levels[i]];
    if (b === undefined || Math.abs(b - scaleBits) > 1)
      return (
        `step ${st.name} squares at level ${levels[i]}, whose rescale prime has ${b} bits against the ${scaleBits}-bit scale ` +
        `(coeffModulusBits [${bits.join(', ')}]): the scale would drift by 2^${(b ?? 0) - scaleBits} at each square and the result be noise; ` +
        `a square's prime must be the scale's size (linear steps' primes may be smaller: they set only the weights' precision)`
      );
  }
  return undefined;
}
