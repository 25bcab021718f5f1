import { readFileSync, writeFileSync } from 'node:fs';
import { initBackend } from '../../train/backend.js';
import { configRuns, recordConfig, type PlanRecord } from '../helpers/plan-golden.js';

/**
 * Every shipped run (keyed `<directory>/<run name>`: a config with variants
 * is one run per variant) compiles to the plans recorded in plan-golden.json
 * (op counts, parameters and a hash of the whole plan): restructuring the
 * compiler must not change what it compiles. After an intended change of
 * plans, regenerate with HEPRUNE_UPDATE_GOLDEN=1 (and `-t <directory>/<run name>` for a new
 * or changed run alone) and say why in the commit.
 */
const GOLDEN = 'test/export/plan-golden.json';
const runs = configRuns('configs');
const all = runs.map((r) => r.key);
const golden: Record<string, Record<string, PlanRecord>> = JSON.parse(readFileSync(GOLDEN, 'utf8'));
const update = process.env.HEPRUNE_UPDATE_GOLDEN === '1';
/**
 * The CIFAR-10 VGG-5, HEFNet, ResNet-20 and SqueezeNet plans and every
 * N = 32768 plan take 15-160 s each to compile on 2 cores (SqueezeNet's up to
 * 6 GB): they run with HEPRUNE_GOLDEN=all (and when updating), the rest in
 * every test run.
 */
const heavy = (f: string) => /(vgg5|hefnet|resnet20|squeezenet)/.test(f) || Object.values(golden[f] ?? {}).some((r) => r.params.n >= 32768);
const files = update || process.env.HEPRUNE_GOLDEN === 'all' ? all : all.filter((f) => !heavy(f));
const seen: Record<string, Record<string, PlanRecord>> = {};

beforeAll(async () => {
  await initBackend('wasm');
});
// Updating records what ran (jest -t narrows it) over the existing records of configs that still exist.
afterAll(() => {
  if (!update) return;
  const merged = Object.fromEntries(all.map((f) => [f, seen[f] ?? golden[f]]).filter(([, r]) => r !== undefined));
  writeFileSync(GOLDEN, JSON.stringify(merged, null, 1) + '\n');
});

test('every config has a recorded plan, and no record outlives its config', () => {
  if (update) return;
  expect(Object.keys(golden).filter((f) => !all.includes(f))).toEqual([]);
  // A heavy config is compiled only with HEPRUNE_GOLDEN=all, which is where its record is required; its record is made
  // with HEPRUNE_UPDATE_GOLDEN=1 -t <directory>/<run name>.
  expect(files.filter((f) => !golden[f])).toEqual([]);
});

test.each(files)(
  '%s compiles to its recorded plans',
  async (file) => {
    const rec = await recordConfig(runs.find((r) => r.key === file)!);
    seen[file] = rec;
    if (!update) expect(rec).toEqual(golden[file]);
  },
  300_000,
);
