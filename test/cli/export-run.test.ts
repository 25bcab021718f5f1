import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** SYNTHETIC data (tests only). */
const config = (out: string, epochs = 2) => `
name: ex
outDir: ${out}
dataset: { name: synthetic, trainCount: 128, testCount: 16, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: cryptonets, filters: 4, hidden: 16, activation: square }
train: { epochs: ${epochs}, batchSize: 32, learningRate: 0.01, backend: wasm }
export: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }
evaluate: { samples: 4, encrypted: false }
`;

test('export --run: overrides persist only when the export succeeds, config.yaml keeps evaluate:, summary.json keeps the evaluation', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'c.yaml');
    await writeFile(cfg, config(t.path));
    expect((await runCli(['run', cfg])).code).toBe(0);
    const run = join(t.path, 'ex');
    const recorded = await readFile(join(run, 'config.yaml'), 'utf8');
    // Refused (too few levels for the plan): nothing of the call is kept.
    const refused = await runCli(['export', '--run', run, '--set', 'export.coeffModulusBits=[38,28,40]']);
    expect(refused.code).toBe(2);
    expect(await readFile(join(run, 'config.yaml'), 'utf8')).toBe(recorded);
    // Accepted: the override is recorded, the evaluate section and the summary's evaluation stay.
    const ok = await runCli(['export', '--run', run, '--set', 'export.scaleBits=27']);
    expect(ok.code).toBe(0);
    const now = YAML.parse(await readFile(join(run, 'config.yaml'), 'utf8'));
    expect(now.export.scaleBits).toBe(27);
    expect(now.export.coeffModulusBits).toEqual([38, 28, 28, 28, 28, 28, 40]);
    expect(now.evaluate).toBeDefined();
    const summary = JSON.parse(await readFile(join(run, 'summary.json'), 'utf8'));
    expect(summary.evaluate).toBeDefined();
    expect(summary.export.params.coeffModulusBits).toEqual([38, 28, 28, 28, 28, 28, 40]);
    // heprune evaluate writes beside the export by default, so a re-export (which replaces export/) keeps the result.
    const ev = await runCli(['evaluate', '--model', join(run, 'export'), '--samples', '2']);
    expect(ev.code).toBe(0);
    expect(JSON.parse(await readFile(join(run, 'evaluation.json'), 'utf8')).samples).toBe(2);
    expect((await runCli(['export', '--run', run, '--set', 'export.scaleBits=28'])).code).toBe(0);
    expect(JSON.parse(await readFile(join(run, 'evaluation.json'), 'utf8')).samples).toBe(2);
  } finally {
    await t.cleanup();
  }
});

test('export --run on a run whose training has not finished says so and trains nothing', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'c.yaml');
    await writeFile(cfg, config(t.path, 1));
    expect((await runCli(['run', cfg])).code).toBe(0);
    const run = join(t.path, 'ex');
    // The config now asks for more epochs than were trained.
    const c = YAML.parse(await readFile(join(run, 'config.yaml'), 'utf8'));
    c.train.epochs = 3;
    await writeFile(join(run, 'config.yaml'), YAML.stringify(c));
    const r = await runCli(['export', '--run', run]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no finished training for its config \(1 of 3 epochs\); finish it first: heprune run/);
    expect(r.stderr).not.toMatch(/epoch 2\/3/);
  } finally {
    await t.cleanup();
  }
});
