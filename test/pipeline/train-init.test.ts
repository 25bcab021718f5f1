import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** A LeNet-5 trained ungrouped, then turned into an HE-grouped one by train.init and fine-tuned, on SYNTHETIC data (tests only). */
const config = (out: string, name: string, groups: number, train = '') => `
name: ${name}
outDir: ${out}
dataset: { name: synthetic, trainCount: 128, testCount: 32, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: lenet5, conv1: 8, conv2: 8, groups: ${groups}, hidden: 8, activation: square }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm${train} }
`;

test("train.init: a grouped model starts from a dense run's weights (diagonal blocks kept), is fine-tuned, resumes, and refuses what does not fit", async () => {
  const t = await tempDir();
  try {
    const dense = join(t.path, 'dense.yaml'),
      grouped = join(t.path, 'grouped.yaml');
    await writeFile(dense, config(t.path, 'dense', 1));
    await writeFile(grouped, config(t.path, 'grouped', 2, ', init: dense'));
    const early = await runCli(['run', grouped]);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/train\.init: no run "dense"/);
    expect((await runCli(['run', dense])).code).toBe(0);
    const r = await runCli(['run', grouped]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /train: starting from run dense's weights; regrouped conv2 1→2 groups \(\d+\.\d% of its kernel's squared norm kept\)/,
    );
    const s = JSON.parse(await readFile(join(t.path, 'grouped', 'summary.json'), 'utf8'));
    expect(s.train.init.run).toBe('dense');
    expect(s.train.init.regrouped).toHaveLength(1);
    expect(s.train.init.regrouped[0]).toMatchObject({ layer: 'conv2', from: 1, to: 2 });
    expect(s.train.init.regrouped[0].keptEnergy).toBeGreaterThan(0);
    expect(s.train.init.regrouped[0].keptEnergy).toBeLessThan(1);
    expect(s.train.epochs).toBe(1);
    const again = await runCli(['run', grouped]);
    expect(again.stderr).toMatch(/train: already complete/);
    // A retrained source changes what the grouped run starts from: its training is then from a different config.
    await writeFile(dense, config(t.path, 'dense', 1, ', seed: 7'));
    expect((await runCli(['run', dense, '--fresh'])).code).toBe(0);
    const stale = await runCli(['run', grouped]);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/holds training from a different config \(changed: initTraining\)/);
    // A model the source does not fit, and both from and init: clear errors naming the key.
    const wide = join(t.path, 'wide.yaml');
    await writeFile(wide, config(t.path, 'wide', 2, ', init: dense').replace('conv2: 8', 'conv2: 16'));
    const w = await runCli(['run', wide]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/wide\/config\.yaml: train\.init: run dense's model does not fit this model: layer conv2: weight 0 has shape/);
    const both = join(t.path, 'both.yaml');
    await writeFile(both, config(t.path, 'both', 2, ', init: dense, from: dense'));
    const b = await runCli(['run', both]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/train\.init.*exclude each other/);
  } finally {
    await t.cleanup();
  }
}, 120_000);
