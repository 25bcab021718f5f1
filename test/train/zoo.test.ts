import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { buildModel, modelSchema, MODEL_NAMES } from '../../train/zoo/registry.js';
import { countParams } from '../../pipeline/stages/train-stage.js';
import { withSeededRandom } from '../../train/seeded.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('model zoo', () => {
  const mnist = { inputShape: [28, 28, 1] as const, numClasses: 10 };
  const cifar = { inputShape: [32, 32, 3] as const, numClasses: 10 };

  test.each(MODEL_NAMES.map((n) => [n]))('%s builds with defaults and maps a batch to the right shape', (name) => {
    const ctx = ['vgg5', 'hefnet', 'resnet20', 'squeezenet'].includes(name) ? cifar : mnist;
    const cfg = modelSchema.parse({ name });
    const m = buildModel(cfg, ctx);
    const out = tf.tidy(() => (m.predict(tf.randomNormal([2, ...ctx.inputShape])) as tf.Tensor).shape);
    expect(out).toEqual(name === 'autoencoder' ? [2, 784] : [2, 10]);
    m.dispose();
  });

  test('shapes follow the papers: LeNet-5 (SpENCNN), ResNet-20, HEFNet FC 256→10', () => {
    const lenet = buildModel(modelSchema.parse({ name: 'lenet5', finalPool: 'global' }), mnist);
    expect(lenet.getLayer('conv1').outputShape).toEqual([null, 28, 28, 64]);
    expect((lenet.getLayer('conv2') as GroupedConv2D).groups).toBe(4);
    expect((lenet.getLayer('conv2') as GroupedConv2D).kernel!.shape).toEqual([5, 5, 16, 32]);
    expect(lenet.getLayer('fc1').getWeights()[0].shape).toEqual([32, 32]);
    const resnet = buildModel(modelSchema.parse({ name: 'resnet20' }), cifar);
    // He et al.: ResNet-20 has 0.27M parameters.
    expect(countParams(resnet)).toBeGreaterThan(0.26e6);
    expect(countParams(resnet)).toBeLessThan(0.28e6);
    const hefnet = buildModel(modelSchema.parse({ name: 'hefnet' }), cifar);
    expect(hefnet.getLayer('fc1').getWeights()[0].shape).toEqual([256, 10]);
    [lenet, resnet, hefnet].forEach((m) => m.dispose());
  });

  test("squeezenet: the baseline and HEMET's Fire removals (each removed Fire a 3×3 conv of its width) have the documented layers", () => {
    const convs = (preset: string) => {
      const m = buildModel(modelSchema.parse({ name: 'squeezenet', preset }), cifar);
      const out = m.layers
        .filter((l): l is GroupedConv2D => l instanceof GroupedConv2D)
        .map((l) => `${l.name} ${l.kernelSize}x${l.kernelSize} ${l.kernel!.shape[2]}→${l.filters}`);
      const shapes = ['conv1_pool', 'fire3_pool', 'conv3_pool', 'fire5_pool', 'conv5_pool']
        .filter((n) => m.layers.some((l) => l.name === n))
        .map((n) => m.getLayer(n).outputShape);
      m.dispose();
      return { out, shapes };
    };
    const fire = (n: number, cin: number, s: number, e: number) => [
      `fire${n}_squeeze 1x1 ${cin}→${s}`,
      `fire${n}_expand1x1 1x1 ${s}→${e}`,
      `fire${n}_expand3x3 3x3 ${s}→${e}`,
    ];
    const [conv1, classifier] = ['conv1 3x3 3→64', 'classifier 1x1 256→10'];
    const pools = [
      [null, 16, 16, 64],
      [null, 8, 8, 128],
      [null, 4, 4, 256],
    ];
    expect(convs('baseline')).toEqual({
      out: [conv1, ...fire(2, 64, 32, 64), ...fire(3, 128, 32, 64), ...fire(4, 128, 32, 128), ...fire(5, 256, 32, 128), classifier],
      shapes: pools,
    });
    expect(convs('remove_fire4').out).toEqual([
      conv1,
      ...fire(2, 64, 32, 64),
      ...fire(3, 128, 32, 64),
      ...fire(4, 128, 32, 128),
      'conv5 3x3 256→256',
      classifier,
    ]);
    expect(convs('remove_fire34').out).toEqual([
      conv1,
      ...fire(2, 64, 32, 64),
      ...fire(3, 128, 32, 64),
      'conv4 3x3 128→256',
      'conv5 3x3 256→256',
      classifier,
    ]);
    expect(convs('remove_fire234')).toEqual({
      out: [conv1, ...fire(2, 64, 32, 64), 'conv3 3x3 128→128', 'conv4 3x3 128→256', 'conv5 3x3 256→256', classifier],
      shapes: pools,
    });
  });

  test('squeezenet: more pools than the input has halvings is a clear error', () => {
    const blocks = [1, 2, 3].map(() => ({ kind: 'conv', filters: 2, pool: true }));
    expect(() => buildModel(modelSchema.parse({ name: 'squeezenet', blocks }), { inputShape: [4, 4, 1], numClasses: 2 })).toThrow(
      /model.blocks: 3 pools halve a 4x4 input to nothing/,
    );
  });

  test('groups: auto picks the fewest groups whose input channels fit one ciphertext', () => {
    const groupsOf = (cfg: Record<string, unknown>, shape: [number, number, number]) => {
      const m = buildModel(modelSchema.parse(cfg), { inputShape: shape, numClasses: 10 });
      const g = m.layers.filter((l) => l instanceof GroupedConv2D).map((l) => (l as GroupedConv2D).groups);
      m.dispose();
      return g;
    };
    // LeNet-5 conv2 reads 64 channels of 14x14 (256-slot blocks): 8192 slots hold 32 of them, 4096 slots 16.
    expect(groupsOf({ name: 'lenet5', groups: 'auto', heSlots: 8192 }, [28, 28, 1])).toEqual([1, 2]);
    expect(groupsOf({ name: 'lenet5', groups: 'auto', heSlots: 4096 }, [28, 28, 1])).toEqual([1, 4]);
    // VGG-5 on 32x32: conv2 reads 64 channels of 16x16, conv3 128 of 8x8 (after two pools); conv1 3 channels of 32x32.
    expect(groupsOf({ name: 'vgg5', groups: ['auto', 'auto', 'auto'], heSlots: 8192 }, [32, 32, 3])).toEqual([1, 2, 1]);
    expect(groupsOf({ name: 'vgg5', groups: [1, 'auto', 'auto'], heSlots: 2048 }, [32, 32, 3])).toEqual([1, 8, 4]);
  });

  test('the same seed builds the same initial weights, another seed different ones', () => {
    const build = (seed: number) =>
      withSeededRandom(seed, () => buildModel(modelSchema.parse({ name: 'lenet5', conv1: 4, conv2: 4, groups: 2, hidden: 4 }), mnist));
    const [a, b, c] = [build(7), build(7), build(8)];
    const w = (m: tf.LayersModel) => m.getWeights().flatMap((t) => Array.from(t.dataSync()));
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    [a, b, c].forEach((m) => m.dispose());
  });

  test.each([
    ['grouped (3 groups of 2 channels)', { filters: 6, groups: 3, strides: 1, cin: 6 }],
    ['depthwise (groups = channels = filters), stride 1', { filters: 5, groups: 5, strides: 1, cin: 5 }],
    ['depthwise, stride 2', { filters: 4, groups: 4, strides: 2, cin: 4 }],
  ] as const)('%s conv equals an ordinary conv with a block-diagonal kernel', (_, o) => {
    const layer = new GroupedConv2D({ filters: o.filters, kernelSize: 3, groups: o.groups, strides: o.strides, padding: 'same' });
    const x = tf.randomNormal([2, 5, 5, o.cin]) as tf.Tensor4D;
    const y = layer.apply(x) as tf.Tensor;
    expect(layer.depthwise).toBe(o.groups === o.filters);
    const k = layer.kernel!.read(); // [3, 3, Cin/G, Cout]
    const cg = o.cin / o.groups,
      og = o.filters / o.groups;
    const full = tf.tidy(() => {
      const kd = k.arraySync() as number[][][][];
      const dense = tf.buffer([3, 3, o.cin, o.filters]);
      for (let a = 0; a < 3; a++)
        for (let b = 0; b < 3; b++)
          for (let i = 0; i < cg; i++) for (let c = 0; c < o.filters; c++) dense.set(kd[a][b][i][c], a, b, Math.floor(c / og) * cg + i, c);
      return tf.add(tf.conv2d(x, dense.toTensor() as tf.Tensor4D, o.strides, 'same'), layer.bias!.read());
    });
    expect(tf.max(tf.abs(tf.sub(y, full))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([x, y, full]);
    layer.dispose();
  });

  test('quadratic activation computes αx²+βx+c with trainable coefficients', () => {
    const layer = new PolyActivation({ kind: 'quadratic', init: { alpha: 0.5, beta: -2, c: 3 } });
    const y = layer.apply(tf.tensor1d([0, 1, 2])) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual([3, 1.5, 1]);
    expect(layer.trainableWeights.map((w) => w.originalName.split('/').pop())).toEqual(['alpha', 'beta', 'c']);
    expect(Array.from((new PolyActivation({ kind: 'square' }).apply(tf.tensor1d([-3, 2])) as tf.Tensor).dataSync())).toEqual([9, 4]);
  });
});
