import { access, mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recoverReplacedDir } from '../../common/atomic-write.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** SYNTHETIC data (tests only). */
const config = (out: string, epochs: number, extra = '') => `
name: rec
outDir: ${out}
dataset: { name: synthetic, trainCount: 64, testCount: 16, imageSize: [8, 8], channels: 1, validation: 0.25 }
model: { name: mlp, hidden: [8], activation: square }
train: { epochs: ${epochs}, batchSize: 16, backend: wasm }
${extra}`;

const missing = (p: string) =>
  access(p).then(
    () => false,
    () => true,
  );

test('an interrupted checkpoint replacement is finished or put back at the next start, and leftovers are removed', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'c.yaml');
    await writeFile(cfg, config(t.path, 2));
    expect((await runCli(['run', cfg])).code).toBe(0);
    const train = join(t.path, 'rec', 'train');
    // Interrupted between the two renames of a checkpoint write: last/ moved aside, its replacement never half-built.
    await rename(join(train, 'last'), join(train, '.last.0123456789ab.old'));
    await mkdir(join(train, '.best.aaaaaaaaaaaa.tmp'));
    await writeFile(join(t.path, 'rec', '.summary.json.bbbbbbbbbbbb.tmp'), '{"half');
    await writeFile(cfg, config(t.path, 3));
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/resuming training at epoch 3\/3/);
    expect((await readdir(train)).filter((n) => n.startsWith('.'))).toEqual([]);
    expect((await readdir(join(t.path, 'rec'))).filter((n) => n.endsWith('.tmp') || n.endsWith('.old'))).toEqual([]);
  } finally {
    await t.cleanup();
  }
});

test('between the renames, a replacement that was fully built becomes the directory', async () => {
  const t = await tempDir();
  try {
    const final = join(t.path, 'ck');
    await mkdir(join(t.path, '.ck.00000000000a.old'));
    await writeFile(join(t.path, '.ck.00000000000a.old', 'v'), 'old');
    await mkdir(join(t.path, '.ck.00000000000a.tmp'));
    await writeFile(join(t.path, '.ck.00000000000a.tmp', 'v'), 'new');
    await mkdir(join(t.path, '.ck.00000000000b.tmp')); // an older, half-built attempt
    await recoverReplacedDir(final);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(final, 'v'), 'utf8')).toBe('new');
    expect(await readdir(t.path)).toEqual(['ck']);
  } finally {
    await t.cleanup();
  }
});

test('a run refused before any stage (missing dataset, evaluate without export) leaves no run directory', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'c.yaml');
    await writeFile(
      cfg,
      config(t.path, 1).replace(
        'name: synthetic, trainCount: 64, testCount: 16, imageSize: [8, 8], channels: 1,',
        `name: folder, path: ${join(t.path, 'nope')},`,
      ),
    );
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(2);
    expect(await missing(join(t.path, 'rec'))).toBe(true);
    await writeFile(cfg, config(t.path, 1, 'evaluate: { samples: 2 }'));
    const t0 = performance.now();
    const e = await runCli(['run', cfg]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/evaluate: runs the export of this config, and it has no export: section/);
    expect(e.stderr).not.toMatch(/epoch 1\/1/);
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(await missing(join(t.path, 'rec'))).toBe(true);
  } finally {
    await t.cleanup();
  }
});
