import { readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** A tiny pipeline on SYNTHETIC data (tests only): fast, exercises every stage file. */
function tinyConfig(out: string, epochs: number, extra = ''): string {
  return `
name: tiny
outDir: ${out}
dataset: { name: synthetic, trainCount: 256, testCount: 64, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: cryptonets, filters: 4, hidden: 16, activation: square }
train: { epochs: ${epochs}, batchSize: 32, learningRate: 0.01, backend: wasm${extra} }
`;
}

describe('pipeline end to end (CLI, synthetic data)', () => {
  test('run writes config, log, metrics, checkpoints and summary; a re-run skips the finished stage', async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'tiny.yaml');
      await writeFile(cfg, tinyConfig(t.path, 3));
      const r = await runCli(['run', cfg]);
      expect(r.stderr).toMatch(/backend wasm/);
      expect(r.code).toBe(0);
      const run = join(t.path, 'tiny');
      const summary = JSON.parse(await readFile(join(run, 'summary.json'), 'utf8'));
      expect(summary.train.backend).toBe('wasm');
      expect(summary.train.epochs).toBe(3);
      expect(summary.dataset.synthetic).toBe(true);
      // The synthetic classes are separable: training must actually learn.
      expect(summary.train.testAccuracy).toBeGreaterThan(0.5);
      const csv = (await readFile(join(run, 'train', 'metrics.csv'), 'utf8')).trim().split('\n');
      expect(csv[0]).toBe('epoch,learning_rate,train_loss,train_accuracy,val_loss,val_accuracy,seconds,ms_per_step,batch_ms_per_step');
      expect(csv).toHaveLength(4);
      const curves = await readFile(join(run, 'train', 'curves.svg'), 'utf8');
      expect(curves).toMatch(/training curves/);
      expect(curves).toMatch(/>validation<\/text>/);
      for (const f of [
        'config.yaml',
        'log.txt',
        'state.json',
        'train/best/model.json',
        'train/best/weights.bin',
        'train/last/optimizer.bin',
        'train/curves.png',
      ]) {
        await access(join(run, f));
      }
      const again = await runCli(['run', cfg]);
      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/train: already complete \(3 epochs, best epoch \d\); skipped/);
      // More epochs later continue the same run.
      const more = await runCli(['run', cfg, '--set', 'train.epochs=4']);
      expect(more.code).toBe(0);
      expect(more.stderr).toMatch(/resuming training at epoch 4\/4/);
      // A change to what training computes is refused unless --fresh.
      const recorded = await readFile(join(run, 'config.yaml'), 'utf8');
      const changed = await runCli(['run', cfg, '--set', 'train.learningRate=0.02']);
      expect(changed.code).toBe(2);
      expect(changed.stderr).toMatch(/holds training from a different config \(changed: train.learningRate\).*--fresh/);
      // The refused run leaves the record of the config the run was made with.
      expect(await readFile(join(run, 'config.yaml'), 'utf8')).toBe(recorded);
    } finally {
      await t.cleanup();
    }
  });

  test('train → export → evaluate under real CKKS (N=8192), then `heprune evaluate` on the export alone', async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'he.yaml');
      await writeFile(
        cfg,
        tinyConfig(t.path, 2) +
          `export: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }
evaluate: { samples: 6, encrypted: true, workers: 2 }
`,
      );
      const r = await runCli(['run', cfg]);
      expect(r.code).toBe(0);
      const ev = JSON.parse(await readFile(join(t.path, 'tiny', 'evaluation.json'), 'utf8'));
      expect(ev.samples).toBe(6);
      expect(ev.agreement).toBe(1);
      expect(ev.simulatedAccuracy).toBe(ev.plaintextAccuracy);
      expect(ev.maxAbsError).toBeLessThan(0.05);
      // The error's yardstick: the largest plaintext output, and the error relative to it.
      expect(ev.maxAbsOutput).toBeGreaterThan(0);
      expect(ev.relativeError).toBeCloseTo(ev.maxAbsError / ev.maxAbsOutput, 12);
      expect(r.stderr).toMatch(/evaluate \(6 images\): .*max error \d\.\d\de-\d+ \([\d.e+-]+% of the largest output\)/);
      expect(ev.throughput.workers).toBe(2);
      expect(ev.opCountsPerImage.rotate).toBe(ev.staticCounts.rotate);
      expect(ev.opCountsPerImage.mulPlain).toBe(ev.staticCounts.mulPlain);
      expect(ev.keys.galoisKeys).toBe(ev.galoisKeys);
      const csv = (await readFile(join(t.path, 'tiny', 'evaluation.csv'), 'utf8')).trim().split('\n');
      expect(csv).toHaveLength(7);
      // The per-step latency breakdown, one bar per plan step.
      const lat = await readFile(join(t.path, 'tiny', 'evaluation-latency.svg'), 'utf8');
      for (const step of Object.keys(ev.latencyMs.perStep)) expect(lat).toContain(step);
      const again = await runCli(['run', cfg]);
      expect(again.stderr).toMatch(/export: already complete; skipped[\s\S]*evaluate: already complete; skipped/);
      // The export directory alone (plus the dataset) is enough to evaluate.
      const alone = await runCli(['evaluate', '--model', join(t.path, 'tiny', 'export'), '--samples', '3', '--out', t.path]);
      expect(alone.code).toBe(0);
      expect(JSON.parse(alone.stdout).simulatedAccuracy).toBeDefined();
      // An output path that cannot be written fails before any CKKS work, as a user error.
      for (const bad of ['/dev/null/x', '/proc/nope']) {
        const t0 = performance.now();
        const r2 = await runCli(['evaluate', '--model', join(t.path, 'tiny', 'export'), '--samples', '3', '--encrypted', '--out', bad]);
        expect(r2.code).toBe(2);
        expect(r2.stderr).toContain(`heprune: error: the evaluation output directory ${bad} is not a writable directory`);
        expect(r2.stderr).not.toMatch(/CKKS \d|internal error/);
        expect(performance.now() - t0).toBeLessThan(30_000);
      }
    } finally {
      await t.cleanup();
    }
  });

  test('a diverging run stops with a clear error (exit 3) and writes no checkpoint of the broken model', async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'tiny.yaml');
      await writeFile(cfg, tinyConfig(t.path, 2));
      const r = await runCli([
        'run',
        cfg,
        '--set',
        'train.learningRate=1.0e+6',
        '--set',
        'train.clipNorm=null',
        '--set',
        'train.optimizer=sgd',
      ]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /heprune: error: training diverged: loss is (NaN|Infinity|-Infinity) at epoch 1, step \d+.*train.learningRate/,
      );
      await expect(access(join(t.path, 'tiny', 'train', 'last'))).rejects.toThrow();
      // With gradient worker threads too: they are closed, so the process exits (it used to hang).
      const w = await runCli([
        'run',
        cfg,
        '--set',
        'train.learningRate=1.0e+6',
        '--set',
        'train.clipNorm=null',
        '--set',
        'train.optimizer=sgd',
        '--set',
        'train.workers=2',
      ]);
      expect(w.code).toBe(3);
      expect(w.stderr).toMatch(/training diverged/);
    } finally {
      await t.cleanup();
    }
  });

  test('a run killed after its first epoch resumes from the checkpoint, not from scratch', async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'tiny.yaml');
      await writeFile(cfg, tinyConfig(t.path, 3));
      let killed = false;
      const first = await runCli(['run', cfg], {
        onStderr: (all, kill) => {
          if (!killed && /epoch 1\/3: train loss/.test(all)) {
            killed = true;
            kill();
          }
        },
      });
      expect(killed).toBe(true);
      expect(first.code).toBeNull(); // died by signal
      const state = JSON.parse(await readFile(join(t.path, 'tiny', 'train', 'last', 'state.json'), 'utf8'));
      expect(state.epoch).toBeGreaterThanOrEqual(1);
      const second = await runCli(['run', cfg]);
      expect(second.code).toBe(0);
      expect(second.stderr).toMatch(new RegExp(`resuming training at epoch ${state.epoch + 1}/3`));
      expect(second.stderr).not.toMatch(/epoch 1\/3: train loss/);
      const csv = (await readFile(join(t.path, 'tiny', 'train', 'metrics.csv'), 'utf8')).trim().split('\n');
      expect(csv.map((l) => l.split(',')[0])).toEqual(['epoch', '1', '2', '3']);
    } finally {
      await t.cleanup();
    }
  });
});
