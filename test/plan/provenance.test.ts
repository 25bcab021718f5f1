import { vectorLayout } from '../../plan/layout.js';
import type { LinearStep, Plan, PlanStep } from '../../plan/plan.js';
import { layerPlaces, mapSteps } from '../../plan/provenance.js';

/** Hand-made plans (no compiler): how the layer stamps read. */
const out = vectorLayout(4);
const linear = (name: string, layers: string[] | undefined, skip?: LinearStep['skip']): LinearStep => ({
  kind: 'linear',
  name,
  outputs: [],
  rotateSum: [],
  out,
  ...(layers ? { layers } : {}),
  ...(skip ? { skip } : {}),
});
const planOf = (steps: PlanStep[]) => ({ steps }) as unknown as Plan;

test('a layer composed into both the main map and the residual part (a conv right after an Add) is a main layer, not a shortcut', () => {
  const plan = planOf([
    linear('linear1', ['conv1']),
    linear('linear2', ['conv2', 'conv3'], { step: 0, cts: 1, layers: ['proj', 'conv3'] }),
  ]);
  const places = layerPlaces(plan);
  expect(places.get('conv3')).toEqual({ step: 'linear2', index: 1, with: ['conv2'], shortcut: false });
  expect(places.get('proj')).toEqual({ step: 'linear2', index: 1, with: [], shortcut: true });
  expect(places.get('conv1')).toEqual({ step: 'linear1', index: 0, with: [], shortcut: false });
});

test('data-moving steps carry no stamp and are no map; a plan with linear steps and no stamps at all is refused', () => {
  const plan = planOf([linear('linear1', ['fc1']), linear('replicate1', undefined), linear('linear2', ['fc2'])]);
  expect(mapSteps(plan).map((s) => s.name)).toEqual(['linear1', 'linear2']);
  expect(() => mapSteps(planOf([linear('linear1', undefined)]))).toThrow('the plan records no source layers for its steps');
  expect(() => layerPlaces(planOf([linear('linear1', undefined)]))).toThrow('recompile it from the model');
});
