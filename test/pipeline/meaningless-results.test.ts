import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkParams } from '../../he/params.js';
import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { primesOfSize } from '../../he/prime-supply.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** SYNTHETIC data (tests only). */
const config = (out: string, train: string, rest = '') => `
name: mr
outDir: ${out}
dataset: { name: synthetic, trainCount: 256, testCount: 16, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: cryptonets, filters: 4, hidden: 16, activation: square }
train: { epochs: 2, batchSize: 16, backend: wasm, ${train} }
${rest}`;

describe('results that would mean nothing are refused', () => {
  test("explicit CKKS parameters: a scale that does not match a square's rescale prime, and primes that do not exist", async () => {
    await initBackend('wasm');
    // conv → square → dense: levels linear, square, linear; the square's 29-bit prime would drift a 20-bit scale.
    const model = withSeededRandom(1, () => {
      const m = tf.sequential();
      m.add(new GroupedConv2D({ filters: 2, kernelSize: 3, inputShape: [6, 6, 1] }));
      m.add(new PolyActivation({ kind: 'square' }));
      m.add(tf.layers.flatten());
      m.add(tf.layers.dense({ units: 3 }));
      return m;
    });
    try {
      const params = { polyModulusDegree: 8192, coeffModulusBits: [38, 29, 29, 29, 38], scaleBits: 20 };
      expect(() => compileChain(lowerModel(model), { params })).toThrow(
        /export.coeffModulusBits: step square1 squares at level 2, whose rescale prime has 29 bits against the 20-bit scale \(coeffModulusBits \[38, 29, 29, 29, 38\]\)/,
      );
      // Linear steps' primes may differ from the scale (they set the weights' precision only).
      expect(() => compileChain(lowerModel(model), { params: { ...params, coeffModulusBits: [38, 29, 20, 29, 38] } })).not.toThrow();
    } finally {
      model.dispose();
    }
    expect(() => checkParams({ polyModulusDegree: 16384, coeffModulusBits: [30, 20, 20, 20, 20, 20, 20, 20, 30], scaleBits: 20 })).toThrow(
      /asks for 7 primes of 20 bits at N=16384, but only 2 such primes \(p ≡ 1 mod 32768\) exist/,
    );
    expect(primesOfSize(20, 16384, 10)).toBe(2);
    // What the toolkit's own choices use passes.
    expect(() => checkParams({ polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 })).not.toThrow();
  });

  test('a training whose loss explodes (finite, Adam at a learning rate of 10) stops with a clear error, also in log.txt', async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'c.yaml');
      await writeFile(cfg, config(t.path, 'optimizer: adam, learningRate: 10, clipNorm: null'));
      const r = await runCli(['run', cfg]);
      expect(r.code).toBe(3); // the exit code of a diverged training
      expect(r.stderr).toMatch(/training diverged: the loss rose to [\d.e+]+ at epoch \d+, step \d+, [\d.e+]+ times its first step's/);
      expect(await readFile(join(t.path, 'mr', 'log.txt'), 'utf8')).toMatch(/warn stopped: training diverged/);
    } finally {
      await t.cleanup();
    }
  });

  test('CKKS outputs beyond evaluate.tolerance of the simulator fail the evaluation, which is kept', async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'c.yaml');
      await writeFile(
        cfg,
        config(
          t.path,
          'learningRate: 0.01',
          `export: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }
evaluate: { samples: 2, encrypted: true, tolerance: 1.0e-9 }`,
        ),
      );
      const r = await runCli(['run', cfg]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /CKKS outputs deviate from the simulator's by [\d.e-]+% of the largest output, beyond the tolerance of 1e-7% \(evaluate.tolerance\)/,
      );
      const ev = JSON.parse(await readFile(join(t.path, 'mr', 'evaluation.json'), 'utf8'));
      expect(ev.ckksDeviation.from).toBe('simulator');
      // The explosion guard's yardstick is kept with the checkpoint, so a resumed run judges by the run's first step.
      expect(JSON.parse(await readFile(join(t.path, 'mr', 'train', 'last', 'state.json'), 'utf8')).firstLoss).toBeGreaterThan(0);
      expect(ev.ckksDeviation.value).toBeGreaterThan(1e-9);
      // At the default tolerance the same plan passes.
      await writeFile(
        cfg,
        config(
          t.path,
          'learningRate: 0.01',
          `export: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }
evaluate: { samples: 2, encrypted: true }`,
        ),
      );
      expect((await runCli(['run', cfg])).code).toBe(0);
    } finally {
      await t.cleanup();
    }
  });
});
