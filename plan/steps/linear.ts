import { z } from 'zod';
import type { LinearStep } from '../plan.js';
import { rotate, sumInto, withOperand, type Operand, type RunEnv, type StepKind } from './kind.js';

/**
 * y = Σ_g rot( Σ_terms diag ⊙ rot(x_input, baby), g ) per output ciphertext,
 * then z += rot(z, s) for each rotate-and-sum step. Operands, in order: each
 * output's terms (giant by giant), then its bias.
 */

function runOutputs<C extends object, P>({ b, keys, given }: RunEnv<C, P>, step: LinearStep, ops: Operand<P>[], xs: C[]): C[] {
  // Baby steps: each distinct rotation of each input once, shared by every output and giant step.
  const babies = xs.map((x) => new Map<number, C>([[0, x]]));
  const baby = (input: number, r: number) => {
    let c = given[input]?.get(r) ?? babies[input].get(r);
    if (!c) {
      c = rotate(b, xs[input], r, keys);
      babies[input].set(r, c);
    }
    return c;
  };
  let k = 0;
  const outs = step.outputs.map((o) => {
    const terms = o.giants.reduce((n, g) => n + g.terms.length, 0);
    const bias = o.bias ? ops[k + terms] : undefined;
    let total: C | undefined;
    o.giants.forEach((g, gi) => {
      let acc: C | undefined;
      for (const term of g.terms) {
        const op = ops[k++];
        acc = sumInto(
          b,
          acc,
          withOperand(b, op, (p) => b.mulPlain(baby(term.input, term.baby), p)),
        );
      }
      if (gi === 0 && bias) {
        const a = acc!;
        acc = withOperand(b, bias, (p) => b.addPlain(a, p));
        b.free(a);
      }
      // Rescale before the giant rotation: rotations are cheaper with fewer primes left.
      let part = b.rescale(acc!);
      b.free(acc!);
      if (g.giant !== 0) {
        const r = rotate(b, part, g.giant, keys);
        b.free(part);
        part = r;
      }
      total = sumInto(b, total, part);
    });
    if (bias) k++;
    let z = total!;
    for (const r of step.rotateSum) z = sumInto(b, z, rotate(b, z, r, keys));
    return z;
  });
  for (const m of babies) for (const [r, c] of m) if (r !== 0) b.free(c);
  return outs;
}

export const linearKind: StepKind<LinearStep> = {
  kind: 'linear',
  prepare(env, step) {
    const q = env.b.rescalePrime(env.level);
    // A residual input arrives at its own scale: its weights are encoded so its products match the main ones (scale·q).
    const mainCts = env.index === 0 ? env.plan.input.cts : env.plan.steps[env.index - 1].out.cts;
    const skipQ = step.skip ? (q * env.scale) / (step.skip.step === -1 ? env.b.scale : env.outScale[step.skip.step]) : q;
    const operands = step.outputs.flatMap((o) => [
      ...o.giants.flatMap((g) => g.terms.map((t) => env.operand(t.diag, t.input < mainCts ? q : skipQ))),
      ...(o.bias ? [env.operand(o.bias, env.scale * q)] : []),
    ]);
    return { operands, scale: env.scale };
  },
  run(env, s, xs) {
    const { b, saved } = env;
    const skip = s.step.skip;
    const extra = skip ? saved.get(skip.step)!.map((c) => b.modSwitchTo(c, b.levelOf(xs[0]))) : [];
    const y = runOutputs(env, s.step, s.operands, [...xs, ...extra]);
    for (const c of extra) b.free(c);
    return y;
  },
  reads: (step) => (step.skip ? [step.skip] : []),
  artifact: {
    fields: (operand) => ({
      outputs: z.array(
        z.object({
          giants: z.array(
            z.object({
              giant: z.number().int(),
              terms: z.array(z.object({ input: z.number().int().nonnegative(), baby: z.number().int(), diag: operand })),
            }),
          ),
          bias: operand.optional(),
        }),
      ),
      rotateSum: z.array(z.number().int()),
      skip: z
        .object({ step: z.number().int().min(-1), cts: z.number().int().positive(), layers: z.array(z.string()).optional() })
        .optional(),
      layers: z.array(z.string()).optional(),
    }),
    write: (s, write) => ({
      outputs: s.outputs.map((o) => ({
        giants: o.giants.map((g) => ({
          giant: g.giant,
          terms: g.terms.map((t) => ({ input: t.input, baby: t.baby, diag: write(t.diag) })),
        })),
        bias: o.bias ? write(o.bias) : undefined,
      })),
      rotateSum: s.rotateSum,
      skip: s.skip,
      layers: s.layers,
    }),
    read(entry, read) {
      const e = entry as {
        outputs: { giants: { giant: number; terms: { input: number; baby: number; diag: unknown }[] }[]; bias?: unknown }[];
        rotateSum: number[];
        skip?: LinearStep['skip'];
        layers?: string[];
      };
      return {
        rotateSum: e.rotateSum,
        ...(e.skip ? { skip: e.skip } : {}),
        ...(e.layers ? { layers: e.layers } : {}),
        outputs: e.outputs.map((o) => ({
          giants: o.giants.map((g) => ({
            giant: g.giant,
            terms: g.terms.map((t) => ({ input: t.input, baby: t.baby, diag: read(t.diag) })),
          })),
          bias: o.bias ? read(o.bias) : undefined,
        })),
      };
    },
  },
};
