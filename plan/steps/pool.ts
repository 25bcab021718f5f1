import { z } from 'zod';
import type { PoolStep } from '../plan.js';
import { rotate, type StepKind } from './kind.js';

/** Sum pooling by rotations (no multiplication, no level): per ciphertext and stage, x ← Σ_r rot(x, r). */
export const poolKind: StepKind<PoolStep> = {
  kind: 'pool',
  prepare: (env) => ({ operands: [], scale: env.scale }),
  run({ b, keys }, s, xs) {
    return xs.map((x) => {
      let cur = x;
      for (const stage of s.step.stages) {
        let acc: typeof x | undefined;
        for (const r of stage) {
          const term = r === 0 ? cur : rotate(b, cur, r, keys);
          if (acc === undefined) {
            acc = term;
            continue;
          }
          const next = b.add(acc, term);
          if (acc !== cur) b.free(acc);
          if (term !== cur) b.free(term);
          acc = next;
        }
        if (cur !== x && acc !== cur) b.free(cur);
        cur = acc!;
      }
      // A pool with no stages would alias its input; copy-free semantics need a fresh ciphertext.
      if (cur === x) throw new Error(`${s.step.name}: a pool step needs at least one rotation`);
      return cur;
    });
  },
  reads: () => [],
  artifact: {
    fields: () => ({ stages: z.array(z.array(z.number().int()).min(1)).min(1) }),
    write: (s) => ({ stages: s.stages }),
    read: (e) => ({ stages: e.stages as number[][] }),
  },
};
