import { z } from 'zod';
import type { SquareStep } from '../plan.js';
import { withOperand, type StepKind } from './kind.js';

/**
 * y² (or y² + λ·y, a quadratic activation too close to linear to merge into
 * one square) per ciphertext, rescaled once. The one operand is λ in every
 * slot, encoded at the input's scale so y·λ and y² share a scale.
 */
export const squareKind: StepKind<SquareStep> = {
  kind: 'square',
  prepare(env, step) {
    const q = env.b.rescalePrime(env.level);
    const operands = step.linear === undefined ? [] : [env.operand(new Float64Array(env.b.slots).fill(step.linear), env.scale)];
    return { operands, scale: (env.scale * env.scale) / q };
  },
  run({ b }, s, xs) {
    const [linear] = s.operands;
    return xs.map((c) => {
      let sq = b.mul(c, c);
      if (linear) {
        const l = withOperand(b, linear, (p) => b.mulPlain(c, p));
        const sum = b.add(sq, l);
        b.free(sq);
        b.free(l);
        sq = sum;
      }
      const r = b.rescale(sq);
      b.free(sq);
      return r;
    });
  },
  reads: () => [],
  artifact: {
    fields: () => ({ linear: z.number().optional() }),
    write: (s) => (s.linear !== undefined ? { linear: s.linear } : {}),
    read: (e) => (typeof e.linear === 'number' ? { linear: e.linear } : {}),
  },
};
