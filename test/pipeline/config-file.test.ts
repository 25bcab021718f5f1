import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, loadConfigs } from '../../pipeline/load-config.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';

let t: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  t = await tempDir();
});
afterAll(async () => {
  await t.cleanup();
});

/** Writes files (name → YAML text) into a fresh directory of the temp dir and returns its path. */
let n = 0;
async function files(texts: Record<string, string>): Promise<string> {
  const dir = join(t.path, `case${n++}`);
  for (const [name, text] of Object.entries(texts)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

async function error(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

const BASE = `
name: base
dataset: { name: mnist, normalize: unit, trainLimit: 100 }
model: { name: autoencoder, activation: square, hidden: [128, 64] }
train: { epochs: 10, batchSize: 64, learningRate: 0.001 }
export: { scaleBits: 40, tiles: auto }
`;

describe('extends', () => {
  test('the file is deep-merged over its base: mappings merge, arrays and scalars replace', async () => {
    const dir = await files({
      'base.yaml': BASE,
      'sub/child.yaml':
        'extends: ../base.yaml\nname: child\ndataset: { trainLimit: 50 }\nmodel: { hidden: [32] }\ntrain: { epochs: 2 }\nexport: { tiles: { t1: 512, t2: 16 } }\n',
    });
    const c = await loadConfig(join(dir, 'sub/child.yaml'));
    expect(c.name).toBe('child');
    expect(c.dataset).toMatchObject({ name: 'mnist', normalize: 'unit', trainLimit: 50 });
    expect(c.model).toMatchObject({ name: 'autoencoder', activation: 'square', hidden: [32] });
    expect(c.train).toMatchObject({ epochs: 2, batchSize: 64, learningRate: 0.001 });
    // A mapping over a scalar replaces it whole.
    expect(c.export?.tiles).toEqual({ t1: 512, t2: 16, first: 'outer' });
    expect(c.export?.scaleBits).toBe(40);
  });

  test('chains: a base may extend another, the nearest file wins', async () => {
    const dir = await files({
      'a.yaml': BASE,
      'b.yaml': 'extends: a.yaml\nname: b\ntrain: { epochs: 5, batchSize: 32 }\n',
      'c.yaml': 'extends: b.yaml\nname: c\ntrain: { epochs: 1 }\n',
    });
    const c = await loadConfig(join(dir, 'c.yaml'));
    expect(c.train).toMatchObject({ epochs: 1, batchSize: 32, learningRate: 0.001 });
    expect(c.model).toMatchObject({ hidden: [128, 64] });
    // An absolute path is taken as it is.
    await writeFile(join(dir, 'sub.yaml'), `extends: ${join(dir, 'b.yaml')}\nname: d\n`);
    expect((await loadConfig(join(dir, 'sub.yaml'))).train).toMatchObject({ epochs: 5, batchSize: 32 });
  });

  test('a cycle is an error naming the files in order', async () => {
    const dir = await files({ 'a.yaml': 'extends: b.yaml\nname: a\n', 'b.yaml': 'extends: c.yaml\n', 'c.yaml': 'extends: a.yaml\n' });
    const a = join(dir, 'a.yaml'),
      b = join(dir, 'b.yaml'),
      c = join(dir, 'c.yaml');
    expect(await error(loadConfig(a))).toBe(`extends cycle: ${a} → ${b} → ${c} → ${a}`);
    const self = await files({ 'x.yaml': 'extends: ./x.yaml\n' });
    expect(await error(loadConfig(join(self, 'x.yaml')))).toMatch(/^extends cycle: .*x\.yaml → .*x\.yaml$/);
  });

  test('a missing base is an error naming the file that extends it, the base and the value', async () => {
    const dir = await files({ 'a.yaml': 'extends: nope/base.yaml\nname: a\n' });
    expect(await error(loadConfig(join(dir, 'a.yaml')))).toBe(
      `${join(dir, 'a.yaml')}: extends: cannot read the base config ${join(dir, 'nope/base.yaml')}: no such file (got "nope/base.yaml")`,
    );
    const bad = await files({ 'a.yaml': 'extends: [x.yaml]\nname: a\n' });
    expect(await error(loadConfig(join(bad, 'a.yaml')))).toMatch(
      /a\.yaml: extends: expected the path of a base config, relative to this file \(got \["x.yaml"\]\)/,
    );
  });

  test('a bad value names the file it came from: the base for an inherited key, the file for its own', async () => {
    const dir = await files({
      'base.yaml': BASE.replace('batchSize: 64', 'batchSize: -1'),
      'child.yaml': 'extends: base.yaml\nname: child\ntrain: { epochs: "many" }\ndataset: { nmae: x }\n',
    });
    const base = join(dir, 'base.yaml'),
      child = join(dir, 'child.yaml');
    const msg = await error(loadConfig(child));
    expect(msg).toContain(`${child}: train.epochs: Invalid input: expected number, received string (got "many")`);
    expect(msg).toContain(`${base}: train.batchSize: Too small: expected number to be >0 (got -1)`);
    expect(msg).toContain(`${child}: dataset: unknown key 'nmae'`);
  });
});

const VARIANTS = `
extends: base.yaml
name: pruned
train: { from: base }
prune: { method: tile, sparsity: 0.5, steps: 2, fineTuneEpochs: 3 }
variants:
  - suffix: 25
    prune: { sparsity: 0.25 }
  - suffix: permute-50
    prune: { permute: true, expand: true }
  - name: other-run
    train: { epochs: 3 }
`;

describe('variants', () => {
  test('each variant is deep-merged over the file into one run, named by name or by the file name and its suffix', async () => {
    const dir = await files({ 'base.yaml': BASE, 'v.yaml': VARIANTS });
    const runs = await loadConfigs(join(dir, 'v.yaml'));
    expect(runs.map((r) => [r.variant, r.config.name])).toEqual([
      ['25', 'pruned-25'],
      ['permute-50', 'pruned-permute-50'],
      ['other-run', 'other-run'],
    ]);
    expect(runs[0].config.prune).toMatchObject({ method: 'tile', sparsity: 0.25, steps: 2 });
    expect(runs[1].config.prune).toMatchObject({ sparsity: 0.5, permute: true, expand: true });
    expect(runs[2].config.train).toMatchObject({ epochs: 3, batchSize: 64, from: 'base' });
    // --set applies to every run.
    expect((await loadConfigs(join(dir, 'v.yaml'), ['train.epochs=7'])).map((r) => r.config.train?.epochs)).toEqual([7, 7, 7]);
  });

  test('--variant picks one by its name, suffix or run name; an unknown one lists them', async () => {
    const dir = await files({ 'base.yaml': BASE, 'v.yaml': VARIANTS });
    const f = join(dir, 'v.yaml');
    expect((await loadConfigs(f, [], '25')).map((r) => r.config.name)).toEqual(['pruned-25']);
    expect((await loadConfigs(f, [], 'pruned-permute-50')).map((r) => r.config.name)).toEqual(['pruned-permute-50']);
    expect((await loadConfig(f, [], 'other-run')).name).toBe('other-run');
    expect(await error(loadConfigs(f, [], 'nope'))).toBe(`${f}: no variant 'nope'; it has 25, permute-50, other-run`);
    expect(await error(loadConfig(f))).toBe(`${f}: has 3 variants (25, permute-50, other-run); name one (--variant)`);
    expect(await error(loadConfigs(join(dir, 'base.yaml'), [], 'x'))).toMatch(/base\.yaml: --variant x: this config has no variants/);
  });

  test('a variant without a name or suffix, two runs of one name, and a bad value in a variant are errors that say where', async () => {
    const dir = await files({
      'base.yaml': BASE,
      'noname.yaml': 'extends: base.yaml\nvariants:\n  - train: { epochs: 1 }\n',
      'twice.yaml': 'extends: base.yaml\nvariants:\n  - suffix: a\n  - name: base-a\n',
      'both.yaml': 'extends: base.yaml\nvariants:\n  - { name: x, suffix: y }\n',
      'nested.yaml': 'extends: base.yaml\nvariants:\n  - { suffix: y, extends: base.yaml }\n',
      'bad.yaml': 'extends: base.yaml\nvariants:\n  - suffix: ok\n  - suffix: bad\n    train: { epochs: 0 }\n',
      'empty.yaml': 'extends: base.yaml\nvariants: []\n',
    });
    expect(await error(loadConfigs(join(dir, 'noname.yaml')))).toMatch(/noname\.yaml: variants\.0: a variant needs a name .* or a suffix/);
    expect(await error(loadConfigs(join(dir, 'twice.yaml')))).toMatch(/twice\.yaml: variants: two variants are runs named 'base-a'/);
    expect(await error(loadConfigs(join(dir, 'both.yaml')))).toMatch(
      /both\.yaml: variants\.0: give the variant a name or a suffix, not both/,
    );
    expect(await error(loadConfigs(join(dir, 'nested.yaml')))).toMatch(/nested\.yaml: variants\.0: 'extends' belongs at the top of a file/);
    expect(await error(loadConfigs(join(dir, 'empty.yaml')))).toMatch(/empty\.yaml: variants: expected a list of variants/);
    const bad = join(dir, 'bad.yaml');
    expect(await error(loadConfigs(bad))).toBe(
      `invalid config (${bad}, variant bad):\n  ${bad} (variant bad): train.epochs: Too small: expected number to be >0 (got 0)`,
    );
  });

  test('variants in a base are inherited (a file of its own replaces them)', async () => {
    const dir = await files({ 'base.yaml': BASE, 'v.yaml': VARIANTS, 'w.yaml': 'extends: v.yaml\nname: w\n' });
    expect((await loadConfigs(join(dir, 'w.yaml'))).map((r) => r.config.name)).toEqual(['w-25', 'w-permute-50', 'other-run']);
  });
});

describe('heprune config', () => {
  test('prints every run of a file (YAML documents, or one JSON array), or the variant named', async () => {
    const dir = await files({ 'base.yaml': BASE, 'v.yaml': VARIANTS });
    const f = join(dir, 'v.yaml');
    const json = await runCli(['config', f, '--json']);
    expect(json.code).toBe(0);
    const all = JSON.parse(json.stdout) as { name: string; prune: { sparsity: number } }[];
    expect(all.map((c) => c.name)).toEqual(['pruned-25', 'pruned-permute-50', 'other-run']);
    expect(all[0].prune.sparsity).toBe(0.25);
    const yaml = await runCli(['config', f]);
    expect(yaml.stdout.split('---\n')).toHaveLength(3);
    expect(yaml.stdout).toContain(`# ${f}, variant 25\nname: pruned-25\n`);
    const one = await runCli(['config', f, '--variant', 'permute-50', '--json']);
    expect(JSON.parse(one.stdout)).toMatchObject({
      name: 'pruned-permute-50',
      prune: { permute: true, expand: true },
      dataset: { validation: 0.1 },
    });
    const plain = await runCli(['config', join(dir, 'base.yaml')]);
    expect(plain.stdout).toMatch(/^name: base\noutDir: runs\n/);
  });

  test('heprune run runs every variant (one JSON array), or the one named (its result as for a plain config)', async () => {
    const dir = await files({
      'v.yaml':
        'name: syn\ndataset: { name: synthetic, imageSize: [4, 4], channels: 1, trainCount: 20, testCount: 10, numClasses: 2 }\n' +
        'variants:\n  - suffix: a\n  - suffix: b\n    dataset: { seed: 2 }\n',
    });
    const out = join(dir, 'runs');
    const all = await runCli(['run', join(dir, 'v.yaml'), '--out', out]);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual([
      { variant: 'a', runDir: join(out, 'syn-a'), train: null, export: null, evaluate: null },
      { variant: 'b', runDir: join(out, 'syn-b'), train: null, export: null, evaluate: null },
    ]);
    const one = await runCli(['run', join(dir, 'v.yaml'), '--out', out, '--variant', 'b']);
    expect(JSON.parse(one.stdout)).toEqual({ runDir: join(out, 'syn-b'), train: null, export: null, evaluate: null });
  });

  test('an unknown variant is an error listing the variants, with a non-zero exit (config and run alike)', async () => {
    const dir = await files({ 'base.yaml': BASE, 'v.yaml': VARIANTS });
    const f = join(dir, 'v.yaml');
    for (const cmd of ['config', 'run']) {
      const r = await runCli([cmd, f, '--variant', 'nope']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`heprune: error: ${f}: no variant 'nope'; it has 25, permute-50, other-run`);
      expect(r.stdout).toBe('');
    }
  });
});
