/**
 * @jest-environment jest-environment-node-single-context
 *
 * One realm for the test and onnxruntime-node, which checks its inputs with instanceof Float32Array.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { compileChain } from '../../export/compile.js';
import { lowerModel } from '../../export/lower.js';
import { initBackend } from '../../train/backend.js';
import { importOnnx } from '../../train/import/onnx-import.js';
import { buildInferenceGraph } from '../../train/onnx/model-graph.js';
import { loadOnnxRuntime, type OrtApi } from '../../train/onnx/runtime.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';

/**
 * The importer on files PyTorch's exporter wrote (test/fixtures/onnx,
 * made by make_fixtures.py; seeded random weights): the tfjs model computes
 * what onnxruntime computes from the original file, exported back to ONNX it
 * still does, and it compiles to an HE plan that agrees with it.
 */
const FIXTURES = 'test/fixtures/onnx';
let ort: OrtApi;

beforeAll(async () => {
  await initBackend('wasm');
  const r = await loadOnnxRuntime();
  if (!r.ort) throw new Error(`onnxruntime-node is needed for this test: ${r.reason}`);
  ort = r.ort;
});

/** onnxruntime's output for NCHW inputs. */
async function ortRun(bytes: Uint8Array, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({
    input: new (ort as unknown as { Tensor: new (t: string, d: Float32Array, s: number[]) => unknown }).Tensor('float32', x, dims),
  } as never);
  return (out as Record<string, { data: Float32Array }>).output.data;
}

const nchw = (seed: number, [n, c, h, w]: number[]) =>
  tf.tidy(() => tf.randomNormal([n, c, h, w], 0, 1, 'float32', seed).dataSync() as Float32Array);
const toNhwc = (x: Float32Array, [n, c, h, w]: number[]) =>
  tf.tidy(() => tf.transpose(tf.tensor(x, [n, c, h, w]), [0, 2, 3, 1]).dataSync() as Float32Array);
const relative = (a: ArrayLike<number>, b: ArrayLike<number>) => maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));

describe.each([
  ['lenet-poly', [3, 1, 28, 28]],
  ['tiny-resnet', [3, 3, 32, 32]],
])('%s.onnx (torch.onnx.export)', (name, dims) => {
  const bytes = readFileSync(`${FIXTURES}/${name}.onnx`);

  test('imported: the tfjs model computes what onnxruntime computes from the file; exported back to ONNX, the same', async () => {
    const m = importOnnx(bytes, `${name}.onnx`);
    expect(m.inputShape).toEqual([dims[2], dims[3], dims[1]]);
    expect(m.producer).toMatch(/^pytorch/);
    const x = nchw(5, dims);
    const ref = await ortRun(bytes, x, dims);
    const got = tf.tidy(() => (m.model.predict(tf.tensor(toNhwc(x, dims), [dims[0], dims[2], dims[3], dims[1]])) as tf.Tensor).dataSync());
    expect(got.length).toBe(ref.length);
    expect(relative(got, ref)).toBeLessThan(1e-4);
    const back = buildInferenceGraph(m.model, m.inputShape);
    expect(relative(await ortRun(back, x, dims), ref)).toBeLessThan(1e-4);
    m.model.dispose();
  });

  test('compiles to an HE plan whose slot simulation equals the imported model', () => {
    const m = importOnnx(bytes, `${name}.onnx`);
    const plan = compileChain(lowerModel(m.model), { refresh: { levels: 7, maskBits: 8 } });
    const x = toNhwc(nchw(6, [1, ...dims.slice(1)]), [1, ...dims.slice(1)]);
    const ref = tf.tidy(() => (m.model.predict(tf.tensor(x, [1, dims[2], dims[3], dims[1]])) as tf.Tensor).dataSync());
    expect(relative(simulate(plan, x).y, ref)).toBeLessThan(1e-4);
    m.model.dispose();
  });
});

test('a ReLU network is refused, naming the operator and the node, and leaves no tfjs variables behind', () => {
  const before = tf.memory().numTensors;
  expect(() => importOnnx(readFileSync(`${FIXTURES}/relu.onnx`), 'relu.onnx')).toThrow(
    /relu\.onnx: node .*\(Relu\): Relu is not HE-friendly/,
  );
  expect(tf.memory().numTensors).toBe(before);
  expect(() => importOnnx(Buffer.from('not onnx at all'), 'junk.onnx')).toThrow(/junk\.onnx: /);
});
