import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { loadConfig } from '../../pipeline/load-config.js';
import { searchHemet, type HemetSearchOptions } from '../../pipeline/search-hemet.js';
import { buildModel } from '../../train/zoo/registry.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `heprune search hemet` over the real compiler, on a two-block network of
 * 8×8 synthetic images (each network compiles in well under a second):
 * deterministic, within the budget, every candidate in search.json with its
 * figures, a written config that resolves and builds the chosen network,
 * resumable from measured.json, and bad input refused before anything is
 * written.
 */
let t: { path: string; cleanup: () => Promise<void> };
let config: string;
beforeAll(async () => {
  t = await tempDir();
  config = join(t.path, 'tiny.yaml');
  await writeFile(
    config,
    [
      'name: tiny',
      'dataset: { name: synthetic, imageSize: [8, 8], channels: 3, numClasses: 3, trainCount: 64, testCount: 32 }',
      'model:',
      '  name: squeezenet',
      '  blocks: [{ kind: conv, filters: 4 }, { kind: conv, filters: 16, pool: true }]',
      'train: { epochs: 1, batchSize: 32, from: some-run }',
      'export: { scaleBits: 30 }',
      'evaluate: { samples: 2, encrypted: false }',
      'reproduce: { table: tiny, row: tiny, role: dense }',
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await t.cleanup();
});

const search = (out: string, o: Partial<HemetSearchOptions> = {}) =>
  searchHemet({ config, outDir: join(t.path, out), logger: silentLogger, ...o });
const json = async (out: string) => JSON.parse(await readFile(join(t.path, out, 'search.json'), 'utf8'));

test('deterministic: two runs write the same search.json; the input depth as budget keeps a conv where the mobile pair only ties fused', async () => {
  const a = await search('a');
  await search('b');
  const [ja, jb] = await Promise.all([
    readFile(join(t.path, 'a', 'search.json'), 'utf8'),
    readFile(join(t.path, 'b', 'search.json'), 'utf8'),
  ]);
  expect(ja).toBe(jb);
  // Depth 5 (2 + 2 + classifier). Within it, the conv pair of a mobile block without its middle activation runs fused: a 3×3 conv again, the same cost.
  expect(a.outcome.budget).toEqual({ maxDepth: 5 });
  expect(a.outcome.result.blocks).toEqual(a.outcome.start.blocks);
  const b1 = a.outcome.steps[0].candidates;
  const linear = b1.find((c) => c.kind === 'mobile-linear')!;
  expect(linear.figures).toMatchObject({
    depth: 5,
    cost: a.outcome.start.figures.cost,
    factorized: [{ layers: ['mobile1_dw', 'mobile1_pw'], fused: true }],
  });
  expect(linear.reason).toMatch(/^as cheap as conv1 .*: a tie keeps the block as it is$/);
  expect(b1.find((c) => c.kind === 'mobile')!.reason).toBe('raises depth to 7 > 5');
});

test('search.json lists every candidate of every block with its figures and a reason; one is chosen per block', async () => {
  const j = await json('a');
  expect(j.budget).toEqual({ maxDepth: 5, maxDepthFrom: 'the input network' });
  expect(j.blocks.map((b: { block: string; inChannels: number; outChannels: number }) => [b.block, b.inChannels, b.outChannels])).toEqual([
    ['conv1', 3, 4],
    ['conv2', 4, 16],
  ]);
  for (const b of j.blocks) {
    expect(b.candidates.map((c: { kind: string }) => c.kind)).toEqual(['conv', 'fire', 'mobile', 'mobile-linear']);
    expect(b.candidates.filter((c: { status: string }) => c.status === 'chosen')).toHaveLength(1);
    for (const c of b.candidates) {
      expect(c.reason).not.toBe('');
      expect(Object.keys(c.figures).sort()).toEqual(
        expect.arrayContaining([
          'coeffModulusBits',
          'cost',
          'depth',
          'depthPerBlock',
          'estimatedSeconds',
          'plaintextMultiplications',
          'polyModulusDegree',
          'rotations',
        ]),
      );
      expect(c.figures.coeffModulusBits).toHaveLength(c.figures.depth + 2);
    }
  }
});

test('a generous budget: cheaper, deeper mobile blocks; the written config resolves and builds them, with the budget as export.maxDepth', async () => {
  const r = await search('wide', {
    maxDepth: 9,
    name: 'tiny-searched',
    outSets: ['reproduce.table=hemet', 'reproduce.row=tiny', 'reproduce.role=method'],
  });
  expect(r.outcome.result.blocks.map((b) => [b.kind, b.kind === 'mobile' && b.middleActivation])).toEqual([
    ['mobile', false],
    ['mobile', false],
  ]);
  expect(r.outcome.result.figures.cost).toBeLessThan(0.7 * r.outcome.start.figures.cost);
  expect(r.outcome.result.figures.depth).toBeLessThanOrEqual(9);
  for (const s of r.outcome.steps) for (const c of s.candidates) if (c.status === 'chosen') expect(c.figures!.depth).toBeLessThanOrEqual(9);
  expect(r.files.config).toBe(join(t.path, 'wide', 'tiny-searched.yaml'));
  const text = await readFile(r.files.config, 'utf8');
  expect(text).toMatch(
    /^# Written by `heprune search hemet .*tiny.yaml --max-depth 9 --name tiny-searched --out-set reproduce.table=hemet/,
  );
  const c = await loadConfig(r.files.config);
  expect(c.name).toBe('tiny-searched');
  expect(c.export).toMatchObject({ scaleBits: 30, maxDepth: 9 });
  expect(c.train).toMatchObject({ epochs: 1, batchSize: 32 });
  expect(c.train?.from).toBeUndefined();
  expect(c.reproduce).toEqual({ table: 'hemet', row: 'tiny', role: 'method' });
  expect(c.model).toMatchObject({ name: 'squeezenet', blocks: r.outcome.result.blocks });
  const model = buildModel(c.model!, { inputShape: [8, 8, 3], numClasses: 3 });
  try {
    expect(model.layers.map((l) => l.name).filter((n) => /^mobile\d_(dw|pw)$/.test(n))).toEqual([
      'mobile1_dw',
      'mobile1_pw',
      'mobile2_dw',
      'mobile2_pw',
    ]);
  } finally {
    model.dispose();
  }
});

test('resumable: a re-run into the same directory compiles nothing and writes the same search.json', async () => {
  const before = await readFile(join(t.path, 'wide', 'search.json'), 'utf8');
  await rm(join(t.path, 'wide', 'search.json'));
  const r = await search('wide', {
    maxDepth: 9,
    name: 'tiny-searched',
    outSets: ['reproduce.table=hemet', 'reproduce.row=tiny', 'reproduce.role=method'],
  });
  expect(r.compiled).toBe(0);
  expect(await readFile(join(t.path, 'wide', 'search.json'), 'utf8')).toBe(before);
});

test.each([
  [{ maxDepth: 4 }, /^--max-depth: the input network \(.*tiny.yaml\) has depth 5 > 4: the greedy search never leaves the budget/],
  [{ maxN: 8192 }, /^--max-n: the input network \(.*tiny.yaml\) needs N=16384 > 8192/],
  [{ maxN: 1000 }, /^--max-n 1000: expected one of 8192, 16384, 32768/],
  [{ maxDepth: 0 }, /^--max-depth 0: expected a positive integer/],
  [
    { outSets: ['train.epochs=many'] },
    /the config the search would write .*: train.epochs: Invalid input: expected number, received string \(got "many"\)/,
  ],
  [{ name: 'bad name' }, /the config the search would write .*: name: must be letters, digits/],
  [{ variant: 'x' }, /tiny.yaml: --variant x: this config has no variants/],
])('bad input %j: a clear error, nothing written', async (o, message) => {
  const out = `bad-${Object.keys(o)[0]}`;
  await expect(search(out, o)).rejects.toThrow(message);
  await expect(readdir(join(t.path, out))).rejects.toThrow(/ENOENT/);
});

test('a model without blocks: the error names model.name, nothing written', async () => {
  const vgg = join(t.path, 'vgg.yaml');
  await writeFile(vgg, 'name: v\ndataset: { name: synthetic }\nmodel: { name: vgg5 }\n');
  await expect(search('bad-model', { config: vgg })).rejects.toThrow(
    /vgg.yaml: model.name: the HEMET search replaces blocks of a block list \(model.blocks or model.preset\), which model.name squeezenet has \(got "vgg5"\)/,
  );
  await expect(readdir(join(t.path, 'bad-model'))).rejects.toThrow(/ENOENT/);
});
