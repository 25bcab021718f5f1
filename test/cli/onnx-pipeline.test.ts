/**
 * @jest-environment jest-environment-node-single-context
 *
 * One realm for the test and onnxruntime-node, which checks its inputs with instanceof Float32Array.
 */
import * as tf from '@tensorflow/tfjs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { batchPixels, type Normalization } from '../../datasets/prepare.js';
import { datasetSchema } from '../../pipeline/config-schema.js';
import { loadRaw } from '../../pipeline/stages/data-stage.js';
import { initBackend } from '../../train/backend.js';
import { loadModel } from '../../train/checkpoint.js';
import { loadOnnxRuntime } from '../../train/onnx/runtime.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * ONNX in and out on real MNIST: a model PyTorch exported
 * (test/fixtures/onnx/lenet-poly.onnx, seeded random weights) is imported by
 * `heprune import`, fine-tuned one epoch, its grouped conv2 sub-block pruned,
 * exported under CKKS and back to ONNX; the exported ONNX computes what the
 * exported (pruned) tfjs model computes, and CKKS agrees with it.
 */
test('heprune import → run (fine-tune, sub-block prune, CKKS export, export.onnx) on a PyTorch-exported model', async () => {
  const tmp = await tempDir();
  try {
    const base = join(tmp.path, 'imported.yaml');
    const imp = await runCli(['import', 'test/fixtures/onnx/lenet-poly.onnx', '--out', base]);
    expect(imp.code).toBe(0);
    expect(imp.stderr).toMatch(/1 conv|2 conv/);
    expect(imp.stderr).toMatch(/matches onnxruntime to [\d.e-]+ on 4 random inputs/);
    const config = join(tmp.path, 'pruned.yaml');
    await writeFile(
      config,
      [
        'extends: imported.yaml',
        `outDir: ${tmp.path}`,
        'prune: { method: subblock, layers: [conv2], sparsity: 0.5, steps: 1, fineTuneEpochs: 1 }',
        'evaluate: { samples: 4, encrypted: true, workers: 1 }',
      ].join('\n'),
    );
    const run = await runCli(['run', config]);
    if (run.code !== 0) throw new Error(run.stderr);
    const dir = join(tmp.path, 'lenet-poly');
    const ev = JSON.parse(await readFile(join(dir, 'evaluation.json'), 'utf8')) as { agreement: number };
    expect(ev.agreement).toBe(1);
    const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as { prune?: unknown };
    expect(summary.prune).toBeDefined();

    // The exported ONNX against the exported tfjs model on MNIST test images (NCHW in, as PyTorch feeds it).
    await initBackend('wasm');
    const { ort } = await loadOnnxRuntime();
    const session = await ort!.InferenceSession.create(await readFile(join(dir, 'export', 'model.onnx')));
    const meta = (JSON.parse(await readFile(join(dir, 'export', 'manifest.json'), 'utf8')) as { meta: { normalization: Normalization } })
      .meta;
    const raw = await loadRaw(datasetSchema.parse({ name: 'mnist' }), undefined, silentLogger);
    const xs = batchPixels(
      raw.test,
      Int32Array.from({ length: 8 }, (_, i) => i),
      [28, 28, 1],
      meta.normalization,
    );
    const model = await loadModel(join(dir, 'export', 'model'));
    const ref = tf.tidy(() => (model.predict(tf.tensor4d(xs, [8, 28, 28, 1])) as tf.Tensor).dataSync());
    model.dispose();
    const Tensor = (ort as unknown as { Tensor: new (t: string, d: Float32Array, s: number[]) => unknown }).Tensor;
    // One channel: NHWC and NCHW hold the same order.
    const out = (await session.run({ input: new Tensor('float32', Float32Array.from(xs), [8, 1, 28, 28]) } as never)) as Record<
      string,
      { data: Float32Array }
    >;
    const got = out.output.data;
    const scale = Math.max(1, ...Array.from(ref, Math.abs));
    for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i] - ref[i]) / scale).toBeLessThan(1e-4);
  } finally {
    await tmp.cleanup();
  }
}, 600_000);
