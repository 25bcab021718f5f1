import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts } from '../../plan/cost.js';
import { expectPlanMatchesModel } from '../helpers/ckks-triple.js';

/**
 * A residual network deeper than the parameters (15 levels, N=8192 holds 5)
 * under real CKKS: residual inputs mod-switched into the next linear step,
 * masked refreshes through the client by bytes. tfjs ≈ simulator ≈
 * node-seal, and static, simulator and node-seal op counts equal.
 */
test('ResNet-8 with masked refresh: tfjs ≈ simulator ≈ node-seal, identical op and refresh counts', async () => {
  await initBackend('wasm');
  const model = withSeededRandom(41, () =>
    buildModel(
      modelSchema.parse({
        name: 'resnet20',
        depth: 8,
        width: 2,
        activation: 'quadratic',
        quadraticInit: { alpha: 0.3, beta: 0.5, c: 0.1 },
      }),
      { inputShape: [4, 4, 3], numClasses: 3 },
    ),
  );
  const plan = compileChain(lowerModel(model), {
    params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 },
    refresh: { levels: 5, maskBits: 6 },
  });
  const expected = planCounts(plan).total;
  expect(expected.refresh).toBeGreaterThanOrEqual(2);
  await expectPlanMatchesModel(plan, model, [4, 4, 3], 41);
});
