import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { loadOnnxRuntime } from '../../train/onnx/runtime.js';

const { ort } = await loadOnnxRuntime();

/** train → lowrank (truncated SVD, fine-tuned in rounds) → export, on SYNTHETIC data (tests only). */
const config = (out: string, name: string, o: { model?: string; train?: string; prune: string; evaluate?: string }) => `
name: ${name}
outDir: ${out}
dataset: { name: synthetic, trainCount: 192, testCount: 32, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: lenet5, conv1: 8, conv2: 16, groups: 1, hidden: 8, activation: square${o.model ?? ''} }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: ${o.train ?? 'wasm'} }
prune: ${o.prune}
export: {}
${o.evaluate ?? ''}
`;

type Summary = {
  prune: {
    method: string;
    layers: string[];
    rounds: { ranks?: Record<string, number> }[];
    testAccuracy: number;
    densePlan: { mulPlain: number; rotations: number };
    prunedPlan: { mulPlain: number; rotations: number };
  };
  export: { plaintextMultiplications: number; rotations: number; depth: number };
};

test('synthetic: lowrank pruning factorises every conv to rank 2 in two rounds, fine-tunes, and the exported plan has fewer plaintext multiplications and rotations; re-runs resume', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'lowrank.yaml');
    await writeFile(cfg, config(t.path, 'tiny-lowrank', { prune: '{ method: lowrank, rank: 2, steps: 2, fineTuneEpochs: 1 }' }));
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/prune: round 1: ranks conv1 5, conv2 9/);
    const s: Summary = JSON.parse(await readFile(join(t.path, 'tiny-lowrank', 'summary.json'), 'utf8'));
    expect(s.prune.layers).toEqual(['conv1', 'conv2']);
    expect(s.prune.rounds.map((x) => x.ranks)).toEqual([
      { conv1: 5, conv2: 9 },
      { conv1: 2, conv2: 2 },
    ]);
    const { densePlan: d, prunedPlan: p } = s.prune;
    process.stdout.write(
      `lowrank rank 2 (synthetic LeNet-5 8/16 ch, 12x12): dense ${d.mulPlain} mulPlain / ${d.rotations} rotations → factorised ${p.mulPlain} / ${p.rotations}\n`,
    );
    expect(p.mulPlain).toBeLessThan(d.mulPlain);
    expect(p.rotations).toBeLessThan(d.rotations);
    // The export is the factorised plan: two more linear steps, no more squares.
    expect(s.export.plaintextMultiplications).toBe(p.mulPlain);
    expect(s.export.rotations).toBe(p.rotations);
    const again = await runCli(['run', cfg]);
    expect(again.stderr).toMatch(/prune: already complete; skipped/);
  } finally {
    await t.cleanup();
  }
}, 600_000);

(ort ? test : test.skip)(
  'synthetic: a model trained factorised (model.factorize) on onnx, refactorised by lowrank with fine-tuning on onnx, evaluates under CKKS like the plaintext model',
  async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'onnx.yaml');
      await writeFile(
        cfg,
        config(t.path, 'tiny-ffconv-onnx', {
          model: ', factorize: { layers: [conv2], rank: 4 }',
          train: 'onnx',
          prune: '{ method: lowrank, layers: [conv2], rank: 2, steps: 1, fineTuneEpochs: 1 }',
          evaluate: 'evaluate: { samples: 2, encrypted: true, workers: 1 }',
        }),
      );
      const r = await runCli(['run', cfg]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/on backend onnx \(onnxruntime-node, \d+ threads\)/);
      expect(r.stderr).not.toMatch(/training on wasm instead/);
      const run = join(t.path, 'tiny-ffconv-onnx');
      const s: Summary = JSON.parse(await readFile(join(run, 'summary.json'), 'utf8'));
      expect(s.prune.rounds[0].ranks).toEqual({ conv2: 2 });
      expect(s.prune.prunedPlan.mulPlain).toBeLessThan(s.prune.densePlan.mulPlain);
      const ev = JSON.parse(await readFile(join(run, 'evaluation.json'), 'utf8'));
      expect(ev.agreement).toBe(1);
      expect(ev.maxAbsError).toBeLessThan(0.05);
    } finally {
      await t.cleanup();
    }
  },
  900_000,
);
