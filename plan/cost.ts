import { zeroCounts, type OpCounts } from './op-counts.js';
import type { Plan, PlanStep } from './plan.js';

/**
 * Static op counts of one inference, from the plan alone (no execution):
 * the cost model pruning optimises. Must equal what the interpreter does on
 * any backend (asserted in tests).
 */
export function stepCounts(st: PlanStep): OpCounts {
  const c = zeroCounts();
  if (st.kind === 'square') { c.mul = 1; c.rescale = 1; return c; }
  const babies = new Set<number>();
  for (const g of st.giants) {
    for (const t of g.terms) if (t.baby !== 0) babies.add(t.baby);
    c.mulPlain += g.terms.length;
    c.add += g.terms.length - 1;
    c.rescale += 1;
    if (g.giant !== 0) c.rotate += 1;
  }
  c.rotate += babies.size + st.rotateSum.length;
  c.add += st.giants.length - 1 + st.rotateSum.length;
  if (st.bias) c.addPlain = 1;
  return c;
}

export function planCounts(plan: Plan): { total: OpCounts; perStep: { name: string; counts: OpCounts }[]; plaintexts: number } {
  const perStep = plan.steps.map((s) => ({ name: s.name, counts: stepCounts(s) }));
  const total = zeroCounts();
  for (const { counts } of perStep) for (const k of Object.keys(total) as (keyof OpCounts)[]) total[k] += counts[k];
  const plaintexts = plan.steps.reduce((a, s) => a + (s.kind === 'linear' ? s.giants.reduce((x, g) => x + g.terms.length, 0) + (s.bias ? 1 : 0) : 0), 0);
  return { total, perStep, plaintexts };
}
