import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** A tiny training on SYNTHETIC data (tests only), 3 epochs. */
function tinyConfig(out: string, name: string, train: string, extra = ''): string {
  return `
name: ${name}
outDir: ${out}
dataset: { name: synthetic, trainCount: 256, testCount: 64, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: cryptonets, filters: 4, hidden: 16, activation: square }
train: { ${train}, batchSize: 32, learningRate: 0.01, backend: wasm }
${extra}`;
}

describe('zoo: a training outlives its machine, and finished entries are started from', () => {
  test('publish an interrupted training, continue it elsewhere from the zoo, publish it finished, adopt it with train.from: zoo:', async () => {
    const t = await tempDir();
    const env = { HEPRUNE_ZOO: join(t.path, 'zoo') };
    try {
      const runs = join(t.path, 'runs');
      const cfg = join(t.path, 'ref.yaml');
      await writeFile(cfg, tinyConfig(runs, 'ref', 'epochs: 3'));
      let killed = false;
      await runCli(['run', cfg], {
        env,
        onStderr: (all, kill) => {
          if (!killed && /epoch 2\/3: train loss/.test(all)) {
            killed = true;
            kill();
          }
        },
      });
      expect(killed).toBe(true);

      const partial = await runCli(['zoo', 'publish', '--run', join(runs, 'ref'), '--name', 'tiny-ref'], { env });
      expect(partial.code).toBe(0);
      expect(partial.stdout).toMatch(/tiny-ref checkpoint at epoch 2 of 3/);
      const entry = join(t.path, 'zoo', 'tiny-ref');
      await access(join(entry, 'resume', 'last', 'optimizer.bin'));
      const listed = await runCli(['zoo', 'list'], { env });
      expect(listed.stdout).toMatch(/tiny-ref\s+cryptonets\s+synthetic\s+training 2\/3/);
      // An unfinished entry cannot be adopted.
      const early = join(t.path, 'early.yaml');
      await writeFile(early, tinyConfig(runs, 'early', 'from: "zoo:tiny-ref"'));
      const refused = await runCli(['run', early], { env });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/train.from: zoo entry "tiny-ref" is still training \(epoch 2 of 3\)/);

      // A new machine: no runs/. The same training continues from the zoo's checkpoint, at epoch 3.
      await rm(runs, { recursive: true });
      const resumed = await runCli(['run', cfg], { env });
      expect(resumed.code).toBe(0);
      expect(resumed.stderr).toMatch(/continuing zoo entry tiny-ref's training \(epoch 2 of 3 done/);
      expect(resumed.stderr).toMatch(/resuming training at epoch 3\/3/);
      expect(resumed.stderr).not.toMatch(/epoch 1\/3: train loss/);
      const csv = (await readFile(join(runs, 'ref', 'train', 'metrics.csv'), 'utf8')).trim().split('\n');
      expect(csv).toHaveLength(4);

      const finished = await runCli(['zoo', 'publish', '--run', join(runs, 'ref'), '--name', 'tiny-ref'], { env });
      expect(finished.code).toBe(0);
      expect(finished.stdout).toMatch(/tiny-ref finished \(3 epochs, test \d+\.\d\d%\)/);
      await expect(access(join(entry, 'resume'))).rejects.toThrow();
      const prov = JSON.parse(await readFile(join(entry, 'provenance.json'), 'utf8'));
      expect(prov.status).toBe('finished');
      expect(prov.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(prov.commands.join('\n')).toMatch(/heprune run .*ref\.yaml/);
      expect(prov.config.train.epochs).toBe(3);
      const summary = JSON.parse(await readFile(join(runs, 'ref', 'summary.json'), 'utf8'));
      expect(prov.metrics.testAccuracy).toBe(summary.train.testAccuracy);

      // Another new machine: the same config adopts the finished entry instead of training it again.
      await rm(runs, { recursive: true });
      const again = await runCli(['run', cfg], { env });
      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/this training is the zoo's finished entry tiny-ref \(3 epochs/);
      expect(again.stderr).not.toMatch(/epoch \d\/3: train loss/);
      expect(
        Buffer.compare(await readFile(join(entry, 'weights.bin')), await readFile(join(runs, 'ref', 'train', 'best', 'weights.bin'))),
      ).toBe(0);
      expect(JSON.parse(await readFile(join(runs, 'ref', 'summary.json'), 'utf8')).train.testAccuracy).toBe(prov.metrics.testAccuracy);
      // --from-scratch trains it here anyway.
      const scratch = await runCli(['run', cfg, '--from-scratch', '--set', `outDir=${join(t.path, 'scratch')}`], { env });
      expect(scratch.code).toBe(0);
      expect(scratch.stderr).toMatch(/epoch 1\/3: train loss/);
      expect(scratch.stderr).not.toMatch(/zoo's finished entry/);

      // Another pipeline starts from the zoo entry: the same weights, exported.
      const adopt = join(t.path, 'adopt.yaml');
      await writeFile(
        adopt,
        tinyConfig(
          join(t.path, 'elsewhere'),
          'adopt',
          'from: "zoo:tiny-ref"',
          'export: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }',
        ),
      );
      const adopted = await runCli(['run', adopt], { env });
      expect(adopted.code).toBe(0);
      expect(adopted.stderr).toMatch(/train: from zoo:tiny-ref/);
      const w1 = await readFile(join(entry, 'weights.bin'));
      const w2 = await readFile(join(t.path, 'elsewhere', 'adopt', 'train', 'best', 'weights.bin'));
      expect(Buffer.compare(w1, w2)).toBe(0);
      await access(join(t.path, 'elsewhere', 'adopt', 'export', 'manifest.json'));

      const missing = join(t.path, 'missing.yaml');
      await writeFile(missing, tinyConfig(runs, 'missing', 'from: "zoo:nope"'));
      const none = await runCli(['run', missing], { env });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/train.from: no zoo entry "nope" in .*\(finished entries: tiny-ref; heprune zoo list\)/);
      const badName = await runCli(['zoo', 'publish', '--run', join(runs, 'ref'), '--name', 'Bad Name'], { env });
      expect(badName.code).toBe(2);
      expect(badName.stderr).toMatch(/--name Bad Name: must be a zoo entry name/);
    } finally {
      await t.cleanup();
    }
  }, 240_000);
});
