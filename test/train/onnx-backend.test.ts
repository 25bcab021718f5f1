/**
 * @jest-environment jest-environment-node-single-context
 *
 * One realm for the test and onnxruntime-node: the runtime checks its inputs
 * with instanceof Float32Array, which fails across jest's vm contexts.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { makeEngine, type TrainEngine } from '../../train/engine.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { buildStepGraph, layoutOf } from '../../train/onnx/model-graph.js';
import { loadOnnxRuntime, sessionOptions, type OrtApi } from '../../train/onnx/runtime.js';
import { trainSchema } from '../../train/options.js';
import { computeGradients } from '../../train/step.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import type { PreparedData } from '../../datasets/prepare.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { Rng } from '../../common/rng.js';

/**
 * The onnx training backend against tfjs (RANDOM inputs, tests only): each
 * layer type's gradients, and whole optimizer steps. Skipped where
 * onnxruntime-node is not installed; the fallback is tested in either case.
 */
const { ort } = await loadOnnxRuntime();
beforeAll(async () => {
  await initBackend('wasm');
});

const rng = new Rng(7);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * (rng.next() * 2 - 1));

interface Case {
  name: string;
  shape: [number, number, number];
  classes: number;
  task?: 'classification' | 'reconstruction';
  build: () => tf.LayersModel;
  penalty?: { bound: number; weight: number };
}

const seq = (shape: [number, number, number], layers: tf.layers.Layer[]) => {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape: shape }));
  for (const l of layers) m.add(l);
  return m;
};
const conv = (o: ConstructorParameters<typeof GroupedConv2D>[0]) => new GroupedConv2D(o);
const poly = (kind: 'square' | 'quadratic', name: string) => new PolyActivation({ kind, name, init: { alpha: 0.3, beta: 0.8, c: 0.1 } });
const flat = (name = 'flatten') => tf.layers.flatten({ name });
const fc = (units: number, name: string, useBias = true) => tf.layers.dense({ units, name, useBias });

const CASES: Case[] = [
  {
    name: 'conv 3x3 same stride 1, square, flatten, dense',
    shape: [6, 6, 2],
    classes: 3,
    build: () =>
      seq([6, 6, 2], [conv({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same' }), poly('square', 'a1'), flat(), fc(3, 'f1')]),
  },
  {
    name: 'conv stride 2 same (odd and even sizes), no bias',
    shape: [7, 8, 2],
    classes: 3,
    build: () =>
      seq([7, 8, 2], [conv({ name: 'c1', filters: 4, kernelSize: 3, strides: 2, padding: 'same', useBias: false }), flat(), fc(3, 'f1')]),
  },
  {
    name: 'conv 5x5 valid stride 2 (CryptoNets), numeric pad 2',
    shape: [12, 12, 1],
    classes: 4,
    build: () =>
      seq(
        [12, 12, 1],
        [
          conv({ name: 'c1', filters: 3, kernelSize: 5, strides: 2, padding: 'valid' }),
          poly('square', 'a1'),
          conv({ name: 'c2', filters: 2, kernelSize: 3, padding: 2 }),
          flat(),
          fc(4, 'f1'),
        ],
      ),
  },
  {
    name: 'grouped conv (4 groups) and 1x1 stride 2 conv',
    shape: [8, 8, 4],
    classes: 3,
    build: () =>
      seq(
        [8, 8, 4],
        [
          conv({ name: 'c1', filters: 8, kernelSize: 3, padding: 'same', groups: 4 }),
          conv({ name: 'c2', filters: 4, kernelSize: 1, strides: 2, padding: 'same' }),
          flat(),
          fc(3, 'f1'),
        ],
      ),
  },
  {
    name: 'depthwise conv (groups = channels; stride 1, and stride 2 without bias) with pointwise convs',
    shape: [7, 7, 3],
    classes: 3,
    build: () =>
      seq(
        [7, 7, 3],
        [
          conv({ name: 'dw1', filters: 3, kernelSize: 3, padding: 'same', groups: 3 }),
          conv({ name: 'pw1', filters: 4, kernelSize: 1, padding: 'valid' }),
          poly('square', 'a1'),
          conv({ name: 'dw2', filters: 4, kernelSize: 3, strides: 2, padding: 'same', groups: 4, useBias: false }),
          conv({ name: 'pw2', filters: 2, kernelSize: 1, padding: 'valid' }),
          flat(),
          fc(3, 'f1'),
        ],
      ),
  },
  {
    name: 'batch norm (training mode) on conv and dense outputs',
    shape: [6, 6, 2],
    classes: 3,
    build: () =>
      seq(
        [6, 6, 2],
        [
          conv({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same', useBias: false }),
          tf.layers.batchNormalization({ name: 'bn1', momentum: 0.9 }),
          poly('quadratic', 'a1'),
          flat(),
          fc(5, 'f1'),
          tf.layers.batchNormalization({ name: 'bn2' }),
          fc(3, 'f2'),
        ],
      ),
  },
  {
    name: 'quadratic activation with the range penalty, ReLU',
    shape: [5, 5, 1],
    classes: 3,
    penalty: { bound: 0.5, weight: 0.7 },
    build: () =>
      seq(
        [5, 5, 1],
        [
          conv({ name: 'c1', filters: 3, kernelSize: 3, padding: 'same' }),
          poly('quadratic', 'a1'),
          flat(),
          fc(6, 'f1'),
          tf.layers.reLU({ name: 'r1' }),
          fc(3, 'f2'),
        ],
      ),
  },
  {
    name: 'average pooling (even and odd inputs) and global average pooling',
    shape: [9, 9, 2],
    classes: 3,
    build: () =>
      seq(
        [9, 9, 2],
        [
          conv({ name: 'c1', filters: 3, kernelSize: 3, padding: 'same' }),
          tf.layers.averagePooling2d({ name: 'p1', poolSize: 2, strides: 2, padding: 'valid' }),
          conv({ name: 'c2', filters: 4, kernelSize: 3, padding: 'same' }),
          tf.layers.averagePooling2d({ name: 'p2', poolSize: 2, strides: 2, padding: 'valid' }),
          tf.layers.globalAveragePooling2d({ name: 'g1' }),
          fc(3, 'f1'),
        ],
      ),
  },
  {
    name: 'residual add with a projection shortcut (functional model)',
    shape: [6, 6, 2],
    classes: 3,
    build: () => {
      const x = tf.input({ shape: [6, 6, 2] });
      const a = poly('quadratic', 'a1').apply(
        conv({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same' }).apply(x),
      ) as tf.SymbolicTensor;
      const b = conv({ name: 'c2', filters: 4, kernelSize: 3, padding: 'same' }).apply(a) as tf.SymbolicTensor;
      const s = conv({ name: 'c3', filters: 4, kernelSize: 1, padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const y = tf.layers.add({ name: 'add1' }).apply([b, s]) as tf.SymbolicTensor;
      const z = tf.layers.add({ name: 'add2' }).apply([y, a]) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: fc(3, 'f1').apply(flat().apply(z)) as tf.SymbolicTensor });
    },
  },
  {
    name: 'channel concatenation of two branches reading one tensor (a Fire module), and of a dense layer with its input',
    shape: [6, 6, 2],
    classes: 3,
    build: () => {
      const x = tf.input({ shape: [6, 6, 2] });
      const s = poly('quadratic', 'a1').apply(conv({ name: 'squeeze', filters: 2, kernelSize: 1, padding: 'valid' }).apply(x));
      const e1 = conv({ name: 'e1', filters: 3, kernelSize: 1, padding: 'valid' }).apply(s) as tf.SymbolicTensor;
      const e3 = conv({ name: 'e3', filters: 2, kernelSize: 3, padding: 'same' }).apply(s) as tf.SymbolicTensor;
      const cat = tf.layers.concatenate({ name: 'cat1' }).apply([e1, e3]) as tf.SymbolicTensor;
      const h = flat().apply(poly('square', 'a2').apply(cat)) as tf.SymbolicTensor;
      const d = fc(4, 'f1').apply(h) as tf.SymbolicTensor;
      const both = tf.layers.concatenate({ name: 'cat2' }).apply([h, d]) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: fc(3, 'f2').apply(both) as tf.SymbolicTensor });
    },
  },
  {
    name: 'squeezenet with every kind of block (conv, Fire, mobile with and without its middle activation), batch norm',
    shape: [8, 8, 3],
    classes: 3,
    build: () =>
      buildModel(
        modelSchema.parse({
          name: 'squeezenet',
          blocks: [
            { kind: 'conv', filters: 4, pool: true },
            { kind: 'fire', squeeze: 2, expand: 2 },
            { kind: 'mobile', filters: 3, middleActivation: true },
            { kind: 'mobile', filters: 4, middleActivation: false },
          ],
        }),
        { inputShape: [8, 8, 3], numClasses: 3 },
      ),
  },
  {
    name: 'autoencoder (mean squared error)',
    shape: [4, 4, 1],
    classes: 2,
    task: 'reconstruction',
    build: () => seq([4, 4, 1], [flat(), fc(6, 'f1'), poly('square', 'a1'), fc(16, 'f2')]),
  },
];

/** max|a − b| / max|b| per weight; weights whose exact gradient is 0 (a bias before batch norm) compare absolutely against the largest gradient. */
function relativeErrors(model: tf.LayersModel, onnxGrad: Float32Array, ref: tf.Tensor[], count: number): Record<string, number> {
  const lay = layoutOf(model);
  const refs = ref.map((t) => Float32Array.from(t.dataSync(), (v) => v / count));
  const global = Math.max(...refs.map((r) => r.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  const out: Record<string, number> = {};
  model.trainableWeights.forEach((w, j) => {
    const slot = lay.weights[model.weights.indexOf(w)];
    const a = onnxGrad.subarray(slot.offset, slot.offset + slot.size),
      b = refs[j];
    let diff = 0,
      scale = 0;
    for (let k = 0; k < b.length; k++) {
      diff = Math.max(diff, Math.abs(a[k] - b[k]));
      scale = Math.max(scale, Math.abs(b[k]));
    }
    out[w.name] = diff / (scale > 1e-3 * global ? scale : global);
  });
  return out;
}

const onnx = () => (ort ? test : test.skip);

describe('onnx training graph: gradients of each layer type against tfjs', () => {
  for (const c of CASES) {
    onnx()(c.name, async () => {
      const model = c.build();
      const task = c.task ?? 'classification';
      const count = 5;
      const pixels = c.shape[0] * c.shape[1] * c.shape[2];
      const xs = randn(count * pixels),
        labels = Int32Array.from({ length: count }, (_, i) => i % c.classes);
      const { bytes } = buildStepGraph({
        model,
        task,
        numClasses: c.classes,
        shape: c.shape,
        optimizer: 'sgd',
        momentum: 0,
        clipNorm: null,
        weightDecay: 0,
        rangePenalty: c.penalty,
        masked: [],
        exposeGradients: true,
      });
      const session = await ort!.InferenceSession.create(bytes, sessionOptions(1));
      try {
        const lay = layoutOf(model);
        const theta = new Float32Array(lay.size);
        const feeds: Record<string, InstanceType<OrtApi['Tensor']>> = {
          x: new ort!.Tensor('float32', xs, [count, ...c.shape]),
          labels: new ort!.Tensor(
            'int64',
            BigInt64Array.from(labels, (v) => BigInt(v)),
            [count],
          ),
          lr: new ort!.Tensor('float32', Float32Array.of(0.1), []),
        };
        model.weights.forEach((w, i) => {
          const s = lay.weights[i],
            v = w.read().dataSync() as Float32Array;
          if (s.trainable) theta.set(v, s.offset);
          else feeds[`w${i}`] = new ort!.Tensor('float32', v.slice(), s.shape);
        });
        feeds.theta = new ort!.Tensor('float32', theta, [lay.size]);
        const out = await session.run(feeds);
        const ref = computeGradients(
          { model, task, numClasses: c.classes, shape: c.shape, rangePenalty: c.penalty },
          { xs, labels, count },
        );
        expect((out.loss.data as Float32Array)[0]).toBeCloseTo(ref.lossSum / count, 4);
        const errs = relativeErrors(model, out.grad.data as Float32Array, ref.grads, count);
        expect(Object.keys(errs)).toHaveLength(model.trainableWeights.length);
        // Every weight within 1e-4 (the failures, with their errors, would be listed).
        expect(Object.entries(errs).filter(([, e]) => !(e <= 1e-4))).toEqual([]);
        tf.dispose(ref.grads);
      } finally {
        await session.release();
        model.dispose();
      }
    });
  }
});

/** A small synthetic batch source shaped like PreparedData (tests only). */
function fakeData(shape: [number, number, number], classes: number): PreparedData {
  return { shape, numClasses: classes } as unknown as PreparedData;
}

async function stepsWith(engine: TrainEngine, shape: [number, number, number], classes: number, n: number, seed: number) {
  const r = new Rng(seed);
  const pixels = shape[0] * shape[1] * shape[2];
  for (let s = 0; s < n; s++) {
    const count = s === n - 1 ? 5 : 8; // a short last batch, as at the end of an epoch
    const xs = Float32Array.from({ length: count * pixels }, () => r.next() * 2 - 1);
    const labels = Int32Array.from({ length: count }, () => Math.floor(r.next() * classes));
    await engine.step({ xs, labels, count }, 0.01 * (1 + s));
  }
  await engine.sync();
}

describe('onnx training step: the updated weights equal the tfjs step', () => {
  const settings = [
    {
      name: 'Adam, batch norm, a mask, weight decay, clipping',
      cfg: { optimizer: 'adam', weightDecay: 0.05, clipNorm: 0.5 },
      mask: true,
    },
    {
      name: 'SGD, no clipping',
      cfg: { optimizer: 'sgd', clipNorm: null },
      mask: false,
      zoo: { name: 'lenet5', conv1: 4, conv2: 4, groups: 2, hidden: 6 },
    },
    { name: 'momentum with a mask', cfg: { optimizer: 'momentum', momentum: 0.8 }, mask: true },
    {
      name: 'SGD, a small squeezenet: a Fire module, a conv, a mobile block without its middle activation, batch norm, a mask',
      cfg: { optimizer: 'sgd', clipNorm: null },
      mask: true,
      zoo: {
        name: 'squeezenet',
        blocks: [
          { kind: 'fire', squeeze: 2, expand: 3, pool: true },
          { kind: 'conv', filters: 4 },
          { kind: 'mobile', filters: 4, middleActivation: false, pool: true },
        ],
      },
    },
  ] as const;
  for (const st of settings) {
    onnx()(st.name, async () => {
      const shape: [number, number, number] = [16, 16, 1];
      // With batch norm, convs have no bias and activations no offset before it: their exact gradient would be 0,
      // and Adam turns the rounding noise both backends see there into full-size steps of random sign.
      // Seeded initial weights: the comparison is of one fixed problem, not of whatever a draw gives.
      const make = () =>
        withSeededRandom(5, () =>
          'zoo' in st
            ? buildModel(modelSchema.parse(st.zoo), { inputShape: shape, numClasses: 3 })
            : seq(shape, [
                conv({ name: 'conv1', filters: 4, kernelSize: 5, padding: 2, useBias: false }),
                tf.layers.batchNormalization({ name: 'bn1', momentum: 0.9 }),
                poly('square', 'act1'),
                tf.layers.averagePooling2d({ name: 'pool1', poolSize: 2, strides: 2, padding: 'valid' }),
                conv({ name: 'conv2', filters: 4, kernelSize: 5, groups: 2, padding: 'valid', useBias: false }),
                tf.layers.batchNormalization({ name: 'bn2', momentum: 0.9 }),
                poly('square', 'act2'),
                flat(),
                fc(6, 'fc1'),
                poly('quadratic', 'act3'),
                fc(3, 'fc2'),
              ]),
        );
      const a = make(),
        b = make();
      b.setWeights(a.getWeights());
      const mask = new Float32Array(a.getLayer('conv2').trainableWeights[0].shape.reduce((x: number, y) => x * (y as number), 1)).map(
        (_, i) => (i % 3 === 0 ? 0 : 1),
      );
      const masks = st.mask ? new Map([['conv2', mask]]) : undefined;
      const cfg = trainSchema.parse({ ...st.cfg, backend: 'auto' });
      const data = fakeData(shape, 3);
      const onnxEngine = await makeEngine({ model: a, data, task: 'classification', cfg, backend: 'onnx', masks, logger: silentLogger });
      const tfjsEngine = await makeEngine({ model: b, data, task: 'classification', cfg, backend: 'wasm', masks, logger: silentLogger });
      try {
        expect(onnxEngine.name).toBe('onnx');
        await stepsWith(onnxEngine, shape, 3, 4, 11);
        await stepsWith(tfjsEngine, shape, 3, 4, 11);
        const wa = a.weights,
          wb = b.weights;
        for (let i = 0; i < wa.length; i++) {
          const x = wa[i].read().dataSync(),
            y = wb[i].read().dataSync();
          let d = 0,
            s = 0;
          for (let k = 0; k < y.length; k++) {
            d = Math.max(d, Math.abs(x[k] - y[k]));
            s = Math.max(s, Math.abs(y[k]));
          }
          expect({ weight: wa[i].name, within: d <= 1e-4 * Math.max(s, 1e-2) }).toEqual({ weight: wa[i].name, within: true });
        }
        if (masks) {
          const k = a.getLayer('conv2').trainableWeights[0].read().dataSync();
          expect(k.every((v, i) => mask[i] !== 0 || v === 0)).toBe(true);
        }
        // The optimizer state comes out in tfjs's names and order, so a checkpoint resumes on either backend.
        const sa = await onnxEngine.optimizerState.getWeights(),
          sb = await tfjsEngine.optimizerState.getWeights();
        // (tfjs numbers a variable whose name is taken, as for the second model here: compare names without that suffix)
        const bare = (n: { name: string }) => n.name.replace(/_\d+(?=\/)/, '');
        expect(sa.map(bare)).toEqual(sb.map(bare));
        expect(sa[0].tensor.dataSync()[0]).toBe(4);
        const global = Math.max(...sb.slice(1).map((n) => Math.max(...Array.from(n.tensor.dataSync(), Math.abs))));
        for (let i = 1; i < sa.length; i++) {
          const x = sa[i].tensor.dataSync(),
            y = sb[i].tensor.dataSync();
          const s = Math.max(Math.max(...Array.from(y, Math.abs)), 1e-3 * global);
          expect({ slot: sa[i].name, within: Math.max(...Array.from(x, (v, k) => Math.abs(v - y[k]))) / s < 1e-3 }).toEqual({
            slot: sa[i].name,
            within: true,
          });
        }
        // Restored into a fresh onnx engine, the state continues identically.
        const c = make();
        c.setWeights(a.getWeights());
        const again = await makeEngine({ model: c, data, task: 'classification', cfg, backend: 'onnx', masks, logger: silentLogger });
        await again.optimizerState.setWeights(sa);
        await stepsWith(again, shape, 3, 1, 99);
        await stepsWith(onnxEngine, shape, 3, 1, 99);
        const dc = c.weights.map((w, i) =>
          Math.max(...Array.from(w.read().dataSync(), (v, k) => Math.abs(v - a.weights[i].read().dataSync()[k]))),
        );
        expect(Math.max(...dc)).toBe(0);
        await again.close();
        c.dispose();
      } finally {
        await onnxEngine.close();
        await tfjsEngine.close();
        a.dispose();
        b.dispose();
      }
    });
  }
});

describe('backend choice and fallback', () => {
  test('without onnxruntime-node, auto trains on wasm and an explicit onnx request is a clear error', async () => {
    const before = process.env.HEPRUNE_ONNX;
    process.env.HEPRUNE_ONNX = 'off';
    try {
      expect(await initBackend('auto')).not.toBe('onnx');
      await expect(initBackend('onnx')).rejects.toThrow(
        /train.backend onnx is not available on this machine: onnxruntime-node \(an optional dependency\) does not load \(disabled by HEPRUNE_ONNX=off\); use --backend wasm/,
      );
    } finally {
      if (before === undefined) delete process.env.HEPRUNE_ONNX;
      else process.env.HEPRUNE_ONNX = before;
    }
  });

  onnx()('a layer without an onnx rule falls back to tfjs under auto (with a warning) and is an error under onnx', async () => {
    const model = seq(
      [6, 6, 1],
      [
        conv({ name: 'c1', filters: 2, kernelSize: 3, padding: 'same' }),
        tf.layers.maxPooling2d({ name: 'mp', poolSize: 2 }),
        flat(),
        fc(3, 'f1'),
      ],
    );
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (m: string) => {
        warnings.push(m);
      },
    };
    const data = fakeData([6, 6, 1], 3);
    const auto = await makeEngine({
      model,
      data,
      task: 'classification',
      cfg: trainSchema.parse({ backend: 'auto' }),
      backend: 'onnx',
      logger,
    });
    try {
      expect(auto.name).toBe('wasm');
      expect(warnings.join('\n')).toMatch(/layer mp \(MaxPooling2D\) has no onnx training rule; training on wasm instead/);
    } finally {
      await auto.close();
    }
    await expect(
      makeEngine({ model, data, task: 'classification', cfg: trainSchema.parse({ backend: 'onnx' }), backend: 'onnx', logger }),
    ).rejects.toThrow(/train.backend onnx: layer mp \(MaxPooling2D\) has no onnx training rule; use train.backend: wasm/);
    model.dispose();
  });
});
