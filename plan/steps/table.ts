import type { PlanStep } from '../plan.js';
import type { StepKind } from './kind.js';
import { linearKind } from './linear.js';
import { poolKind } from './pool.js';
import { refreshKind } from './refresh.js';
import { squareKind } from './square.js';

type StepOf<K extends PlanStep['kind']> = Extract<PlanStep, { kind: K }>;

/** Every step kind a plan can hold; adding one is adding a module and a row here. */
export const STEP_KINDS: { readonly [K in PlanStep['kind']]: StepKind<StepOf<K>> } = {
  linear: linearKind,
  square: squareKind,
  pool: poolKind,
  refresh: refreshKind,
};

/** The kind of a step (TypeScript cannot correlate the table's row with the step's union member by itself). */
export const kindOf = <S extends PlanStep>(step: S): StepKind<S> => STEP_KINDS[step.kind] as unknown as StepKind<S>;
