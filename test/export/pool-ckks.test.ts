import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { expectPlanMatchesModel } from '../helpers/ckks-triple.js';

/**
 * The pooling and power-of-two block kernels under real CKKS: conv, x²,
 * pool by rotation, grouped conv on the strided grid, x², dense. tfjs ≈
 * simulator ≈ node-seal, and static, simulator and node-seal op counts equal.
 */
test.each(['pow2', 'mux'] as const)(
  'pool by rotation + grouped conv, %s blocks: tfjs ≈ simulator ≈ node-seal, identical op counts',
  async (blocks) => {
    await initBackend('wasm');
    const model = withSeededRandom(31, () => {
      const m = tf.sequential();
      m.add(new GroupedConv2D({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [8, 8, 1] }));
      m.add(new PolyActivation({ kind: 'quadratic', init: { alpha: 0.5, beta: 0.4, c: 0.1 } }));
      m.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }));
      m.add(new GroupedConv2D({ filters: 4, kernelSize: 3, padding: 'same', groups: 2 }));
      m.add(new PolyActivation({ kind: 'square' }));
      m.add(tf.layers.flatten());
      m.add(tf.layers.dense({ units: 3 }));
      return m;
    });
    const plan = compileChain(lowerModel(model), {
      params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 },
      channelBlocks: blocks,
    });
    if (blocks === 'mux') expect(plan.steps[3].out.desc).toContain('4 channels per block');
    expect(plan.steps.map((s) => s.kind)).toEqual(['linear', 'square', 'pool', 'linear', 'square', 'linear']);
    await expectPlanMatchesModel(plan, model, [8, 8, 1], 31);
  },
);
