import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { writeModelFiles } from '../../train/checkpoint.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { writeExport } from '../../export/artifact.js';
import { evaluateExport } from '../../evaluate/evaluate.js';
import { syntheticSource } from '../../datasets/synthetic.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';

test('an autoencoder export is evaluated by reconstruction MSE: the simulated MSE equals the plaintext one', async () => {
  await initBackend('wasm');
  const t = await tempDir();
  try {
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 8, testCount: 6, imageSize: [6, 6], channels: 1, seed: 3 });
    const model = withSeededRandom(5, () =>
      buildModel(modelSchema.parse({ name: 'autoencoder', hidden: [16, 8, 16] }), { inputShape: [6, 6, 1], numClasses: 2 }),
    );
    const plan = compileChain(lowerModel(model));
    const dir = join(t.path, 'export');
    await writeExport(
      dir,
      plan,
      {
        task: 'reconstruction',
        dataset: 'synthetic',
        shape: [6, 6, 1],
        numClasses: 2,
        normalization: { kind: 'unit', mean: [0], std: [1] },
      },
      (tmp) => writeModelFiles(join(tmp, 'model'), model),
    );
    const r = await evaluateExport({
      exportDir: dir,
      test: ds.test,
      samples: 6,
      encrypted: false,
      simulate: true,
      workers: 1,
      outDir: t.path,
      logger: silentLogger,
    });
    expect(r.plaintextAccuracy).toBeUndefined();
    expect(typeof r.plaintextMse).toBe('number');
    expect(Math.abs((r.simulatedMse as number) - (r.plaintextMse as number))).toBeLessThan(1e-6 * Math.max(1, r.plaintextMse as number));
    expect(JSON.parse(await readFile(join(t.path, 'evaluation.json'), 'utf8')).samples).toBe(6);
    model.dispose();
  } finally {
    await t.cleanup();
  }
});
