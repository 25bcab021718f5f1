import { learningRateAt } from '../../train/optimizer.js';
import { trainSchema } from '../../train/options.js';

describe('learning-rate schedule', () => {
  const cfg = trainSchema.parse({ epochs: 10, learningRate: 0.001, warmupEpochs: 0.5, schedule: 'cosine' });

  test('warm-up ramps linearly from 1% of the rate to the full rate', () => {
    expect(learningRateAt(cfg, 0)).toBeCloseTo(0.001 * 0.01, 12);
    expect(learningRateAt(cfg, 0.25)).toBeCloseTo(0.0005, 12);
    expect(learningRateAt(cfg, 0.5)).toBeCloseTo(0.001, 12);
  });

  test('cosine falls from the full rate to 1% of it at the last epoch, halfway at the middle', () => {
    expect(learningRateAt(cfg, 5.25)).toBeCloseTo(0.001 * (0.01 + 0.99 * 0.5), 12);
    expect(learningRateAt(cfg, 10)).toBeCloseTo(0.001 * 0.01, 12);
    for (let e = 0.5; e < 10; e += 0.5) expect(learningRateAt(cfg, e + 0.5)).toBeLessThan(learningRateAt(cfg, e));
  });

  test('step decays by stepGamma every stepEvery epochs; constant stays', () => {
    const step = trainSchema.parse({ epochs: 30, learningRate: 0.1, schedule: 'step', stepEvery: 10, stepGamma: 0.5 });
    expect([0, 9.9, 10, 25].map((e) => learningRateAt(step, e))).toEqual([0.1, 0.1, 0.05, 0.025]);
    const constant = trainSchema.parse({ epochs: 3, learningRate: 0.02, schedule: 'constant' });
    expect(learningRateAt(constant, 2.7)).toBe(0.02);
  });
});
