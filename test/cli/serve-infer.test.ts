import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import sharp from 'sharp';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { writeExport } from '../../export/artifact.js';
import { runCli } from '../helpers/cli.js';
import { startServe } from '../../cli/serve-process.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `heprune serve` and `heprune infer` as processes: a tiny seeded model on a
 * synthetic image (a PNG drawn here), classified over loopback HTTP; the
 * prediction equals the tfjs model's on the same normalised pixels.
 */
test('synthetic image: heprune infer --image through heprune serve predicts what the plaintext model does', async () => {
  await initBackend('wasm');
  const tmp = await tempDir();
  const model = withSeededRandom(5, () =>
    buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
      inputShape: [12, 12, 1],
      numClasses: 5,
    }),
  );
  const norm = { kind: 'symmetric', mean: [0.5], std: [0.5] };
  const dir = join(tmp.path, 'export');
  await writeExport(
    dir,
    compileChain(lowerModel(model), { params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 } }),
    { model: 'tiny', dataset: 'synthetic', shape: [12, 12, 1], numClasses: 5, normalization: norm },
  );
  const pixels = Uint8Array.from({ length: 144 }, (_, i) => (i * 53 + 17) % 256);
  await sharp(Buffer.from(pixels), { raw: { width: 12, height: 12, channels: 1 } })
    .png()
    .toFile(join(tmp.path, 'x.png'));
  const x = Float32Array.from(pixels, (v) => v / 255 / 0.5 - 1);
  const ref = tf.tidy(() => Array.from((model.predict(tf.tensor(x, [1, 12, 12, 1])) as tf.Tensor).dataSync()));
  model.dispose();

  const server = await startServe(['--model', dir, '--port', '0', '--workers', '1']);
  try {
    const url = server.url;
    const r = await runCli(['infer', '--server', url, '--image', join(tmp.path, 'x.png')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      prediction: number;
      output: number[];
      bytes: { up: number; down: number };
      session: { keyBytesUp: number };
    };
    expect(out.prediction).toBe(ref.indexOf(Math.max(...ref)));
    const scale = Math.max(1, ...ref.map(Math.abs));
    for (let j = 0; j < ref.length; j++) expect(Math.abs(out.output[j] - ref[j]) / scale).toBeLessThan(2e-2);
    expect(out.bytes.up).toBeGreaterThan(1e4);
    expect(out.session.keyBytesUp).toBeGreaterThan(1e6);
    const bad = await runCli(['infer', '--server', url]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/give --image FILE or --index N/);
  } finally {
    await server.stop();
    await tmp.cleanup();
  }
});
