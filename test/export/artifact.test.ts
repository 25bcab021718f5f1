import { readFile, writeFile, readdir, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { loadExport, writeExport } from '../../export/artifact.js';
import { planCounts } from '../../plan/cost.js';
import { rotationSteps } from '../../plan/rotations.js';
import { tempDir } from '../helpers/tmp.js';

let t: { path: string; cleanup: () => Promise<void> };
let dir: string;
let plan: ReturnType<typeof compileChain>;
let model: tf.LayersModel;

beforeAll(async () => {
  await initBackend('wasm');
  t = await tempDir();
  model = withSeededRandom(2, () =>
    buildModel(modelSchema.parse({ name: 'cryptonets', filters: 2, hidden: 8 }), { inputShape: [10, 10, 1], numClasses: 3 }),
  );
  plan = compileChain(lowerModel(model));
  dir = join(t.path, 'export');
  await writeExport(dir, plan, { note: 'test' });
});
afterAll(async () => {
  model.dispose();
  await t.cleanup();
});

describe('export artifact', () => {
  test('round-trips: same params, layouts, rotation steps and op counts; operands equal to float32', async () => {
    const { plan: back, manifest } = await loadExport(dir);
    expect(back.params).toEqual(plan.params);
    expect(Array.from(back.input.slotOf)).toEqual(Array.from(plan.input.slotOf));
    expect(rotationSteps(back)).toEqual(rotationSteps(plan));
    expect(planCounts(back).total).toEqual(planCounts(plan).total);
    expect(manifest.totals.counts).toEqual(planCounts(plan).total);
    // The layer stamps pruning reads survive the artifact.
    expect(back.steps.map((s) => (s.kind === 'linear' ? s.layers : undefined))).toEqual(
      plan.steps.map((s) => (s.kind === 'linear' ? s.layers : undefined)),
    );
    expect(plan.steps.some((s) => s.kind === 'linear' && s.layers?.length)).toBe(true);
    const a = plan.steps[0],
      b = back.steps[0];
    if (a.kind !== 'linear' || b.kind !== 'linear') throw new Error('expected a linear first step');
    const d0 = a.outputs[0].giants[0].terms[0].diag,
      e0 = b.outputs[0].giants[0].terms[0].diag;
    for (let i = 0; i < d0.length; i++) expect(e0[i]).toBeCloseTo(Math.fround(d0[i]), 12);
  });

  test('a tile-packed plan round-trips with its tile shape, memory totals and constant outputs', async () => {
    const ae = withSeededRandom(3, () =>
      buildModel(modelSchema.parse({ name: 'autoencoder', hidden: [20] }), { inputShape: [10, 10, 1], numClasses: 2 }),
    );
    // Outputs 64..99 lose every weight: with 64-row tiles their tile row is gone, and they are constants.
    const out = ae.layers[ae.layers.length - 1];
    const [k, b] = out.getWeights();
    const mask = tf.tensor2d(
      Array.from({ length: 20 * 100 }, (_, e) => (e % 100 >= 64 ? 0 : 1)),
      [20, 100],
    );
    const masked = tf.mul(k, mask);
    out.setWeights([masked, b]);
    masked.dispose();
    const tiled = compileChain(lowerModel(ae), { tiles: { t1: 64, t2: 64, first: 'outer' }, scaleBits: 30 });
    expect(Object.keys(tiled.outputConstants!)).toHaveLength(36);
    const d = join(t.path, 'tiled');
    const m = await writeExport(d, tiled, {});
    expect(m.totals.memory!.plaintextBytes).toBeGreaterThan(0);
    const { plan: back } = await loadExport(d);
    expect(back.tiles).toEqual(tiled.tiles);
    expect(back.outputConstants).toEqual(tiled.outputConstants);
    expect(planCounts(back).total).toEqual(planCounts(tiled).total);
    ae.dispose();
    mask.dispose();
  });

  test('holds no key material: only the manifest, the packed weights (and the plaintext model) are written', async () => {
    expect((await readdir(dir)).sort()).toEqual(['manifest.json', 'weights.bin']);
    const text = await readFile(join(dir, 'manifest.json'), 'utf8');
    expect(text).not.toMatch(/secret|privateKey|galoisKeys"|relinKeys/i);
  });

  test('the plaintext reference model in model/ is covered by the manifest: zeroed or missing, the export is refused', async () => {
    const withModel = join(t.path, 'with-model');
    const { writeModelFiles } = await import('../../train/checkpoint.js');
    const m = await writeExport(withModel, plan, { note: 'test' }, (tmp) => writeModelFiles(join(tmp, 'model'), model));
    expect(m.files!.map((f) => f.path)).toEqual(['model/model.json', 'model/weights.bin']);
    await expect(loadExport(withModel)).resolves.toBeDefined();
    const w = await readFile(join(withModel, 'model', 'weights.bin'));
    await writeFile(join(withModel, 'model', 'weights.bin'), Buffer.alloc(w.length));
    await expect(loadExport(withModel)).rejects.toThrow(/model\/weights.bin: checksum mismatch \(the export's file was altered\)/);
    const { rm } = await import('node:fs/promises');
    await rm(join(withModel, 'model', 'model.json'));
    await expect(loadExport(withModel)).rejects.toThrow(/model\/model.json: cannot read a file the export lists/);
  });

  test('a flipped byte in weights.bin, a truncated file or an edited manifest is an error, never a wrong answer', async () => {
    const copy = async (name: string) => {
      const d = join(t.path, name);
      const { cp } = await import('node:fs/promises');
      await cp(dir, d, { recursive: true });
      return d;
    };
    const flipped = await copy('flipped');
    const w = await readFile(join(flipped, 'weights.bin'));
    w[w.length >> 1] ^= 0x40;
    await writeFile(join(flipped, 'weights.bin'), w);
    await expect(loadExport(flipped)).rejects.toThrow(/weights.bin: checksum mismatch \(the packed weights were altered\)/);

    const short = await copy('short');
    await truncate(join(short, 'weights.bin'), 100);
    await expect(loadExport(short)).rejects.toThrow(/weights.bin: 100 bytes, the manifest says \d+ \(truncated or replaced\)/);

    const edited = await copy('edited');
    const man = JSON.parse(await readFile(join(edited, 'manifest.json'), 'utf8'));
    man.rotationSteps[0] += 1;
    await writeFile(join(edited, 'manifest.json'), JSON.stringify(man));
    await expect(loadExport(edited)).rejects.toThrow(/manifest integrity check failed/);

    // A manifest rewritten with a matching hash but an operand pointing past the weights: a clear error, not a RangeError.
    const far = await copy('far');
    const fm = JSON.parse(await readFile(join(far, 'manifest.json'), 'utf8'));
    const firstOperand = fm.steps.find((st: { kind: string }) => st.kind === 'linear').outputs[0].giants[0].terms[0].diag.values;
    firstOperand.offset = fm.weights.bytes + 64;
    const { integrity: _drop, ...fbody } = fm;
    const { createHash } = await import('node:crypto');
    fm.integrity = createHash('sha256').update(JSON.stringify(fbody)).digest('hex');
    await writeFile(join(far, 'manifest.json'), JSON.stringify(fm));
    await expect(loadExport(far)).rejects.toThrow(
      /an operand at byte \d+ \(\d+ values\) lies outside .*weights.bin \(\d+ bytes\): the manifest and the packed weights do not belong together/,
    );

    const cut = await copy('cut');
    const text = await readFile(join(cut, 'manifest.json'), 'utf8');
    await writeFile(join(cut, 'manifest.json'), text.slice(0, text.length / 2));
    await expect(loadExport(cut)).rejects.toThrow(/manifest.json: cannot read the export manifest/);

    const version = await copy('version');
    const v = JSON.parse(await readFile(join(version, 'manifest.json'), 'utf8'));
    v.formatVersion = 99;
    await writeFile(join(version, 'manifest.json'), JSON.stringify(v));
    await expect(loadExport(version)).rejects.toThrow(/format version 99, this heprune reads versions 2, 3/);
    await expect(loadExport(join(t.path, 'nothing'))).rejects.toThrow(/cannot read the export manifest/);
  });

  test("tfjs is not needed to load and run an export: a child process that cannot import tfjs gets the model's outputs", async () => {
    {
      const x = tf.randomNormal([1, 10, 10, 1], 0, 1, 'float32', 9);
      const ref = Array.from((model.predict(x) as tf.Tensor).dataSync());
      const script = fileURLToPath(new URL('../helpers/no-tfjs-run.js', import.meta.url));
      const run = (args: string[]) =>
        new Promise<{ code: number | null; out: string; err: string }>((res) => {
          const c = spawn(process.execPath, [script, ...args]);
          let out = '',
            err = '';
          c.stdout.on('data', (d) => {
            out += d;
          });
          c.stderr.on('data', (d) => {
            err += d;
          });
          c.on('close', (code) => res({ code, out, err }));
        });
      const r = await run([dir, JSON.stringify(Array.from(x.dataSync()))]);
      expect(r.err).toBe('');
      const y = JSON.parse(r.out) as number[];
      expect(y).toHaveLength(ref.length);
      for (let i = 0; i < ref.length; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-3);
    }
  });
});
