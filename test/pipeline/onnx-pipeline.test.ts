import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { loadOnnxRuntime } from '../../train/onnx/runtime.js';

const { ort } = await loadOnnxRuntime();

/** train (onnx) → sub-block prune with fine-tuning (onnx) → export → CKKS evaluation, on SYNTHETIC data (tests only). */
const config = (out: string, backend: string) => `
name: tiny-${backend}
outDir: ${out}
dataset: { name: synthetic, trainCount: 192, testCount: 32, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: cryptonets, filters: 4, hidden: 16, activation: square }
train: { epochs: 2, batchSize: 32, learningRate: 0.01, backend: ${backend} }
prune: { method: subblock, layers: [fc1], sparsity: 0.5, steps: 1, fineTuneEpochs: 1 }
export: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }
evaluate: { samples: 4, encrypted: true, workers: 1 }
`;

(ort ? test : test.skip)(
  'a model trained and fine-tuned on onnx is pruned, exported and evaluated under CKKS as one trained on wasm',
  async () => {
    const t = await tempDir();
    try {
      const out: Record<
        string,
        {
          train: { backend: string; testAccuracy: number };
          prune: { sparsity: number; densePlan: { mulPlain: number }; prunedPlan: { mulPlain: number } };
          export: { plaintextMultiplications: number };
        }
      > = {};
      for (const backend of ['onnx', 'wasm']) {
        const cfg = join(t.path, `${backend}.yaml`);
        await writeFile(cfg, config(t.path, backend));
        const r = await runCli(['run', cfg]);
        expect(r.code).toBe(0);
        const run = join(t.path, `tiny-${backend}`);
        out[backend] = JSON.parse(await readFile(join(run, 'summary.json'), 'utf8'));
        const ev = JSON.parse(await readFile(join(run, 'evaluation.json'), 'utf8'));
        expect(ev.agreement).toBe(1);
        expect(ev.maxAbsError).toBeLessThan(0.05);
        if (backend === 'onnx') expect(r.stderr).toMatch(/on backend onnx \(onnxruntime-node, \d+ threads\)/);
      }
      expect(out.onnx.train.backend).toBe('onnx');
      expect(out.wasm.train.backend).toBe('wasm');
      // The synthetic classes are separable: onnx training learns as wasm's does.
      expect(out.onnx.train.testAccuracy).toBeGreaterThan(0.5);
      // Pruning works on the onnx-trained weights as on wasm's: the same sparsity, a plan the export then runs, and the
      // sub-blocks it removed really skip plaintext multiplications.
      expect(out.onnx.prune.sparsity).toBeCloseTo(out.wasm.prune.sparsity, 2);
      expect(out.onnx.export.plaintextMultiplications).toBe(out.onnx.prune.prunedPlan.mulPlain);
      expect(out.onnx.prune.prunedPlan.mulPlain).toBeLessThan(out.onnx.prune.densePlan.mulPlain);
    } finally {
      await t.cleanup();
    }
  },
);
