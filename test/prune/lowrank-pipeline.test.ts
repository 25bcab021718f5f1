import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { loadOnnxRuntime } from '../../train/onnx/runtime.js';

const { ort } = await loadOnnxRuntime();

/** train → lowrank (truncated SVD, fine-tuned in rounds) → export, on SYNTHETIC data (tests only). */
const config = (out: string, name: string, o: { model?: string; train?: string; prune: string; evaluate?: string; export?: string }) => `
name: ${name}
outDir: ${out}
dataset: { name: synthetic, trainCount: 192, testCount: 32, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: lenet5, conv1: 8, conv2: 16, groups: 1, hidden: 8, activation: square${o.model ?? ''} }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: ${o.train ?? 'wasm'} }
prune: ${o.prune}
export: ${o.export ?? '{}'}
${o.evaluate ?? ''}
`;

type Summary = {
  prune: {
    method: string;
    layers: string[];
    rounds: { ranks?: Record<string, number> }[];
    testAccuracy: number;
    densePlan: { mulPlain: number; rotations: number };
    prunedPlan: { mulPlain: number; rotations: number };
  };
  export: { plaintextMultiplications: number; rotations: number; depth: number };
};

test('synthetic: lowrank pruning factorises every conv to rank 2 in two rounds, fine-tunes, and the exported plan has fewer plaintext multiplications and rotations; re-runs resume', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'lowrank.yaml');
    // Split pinned: in a LeNet this small the cost model rightly fuses the pairs back (the split plan's extra levels need a larger N).
    await writeFile(
      cfg,
      config(t.path, 'tiny-lowrank', {
        prune: '{ method: lowrank, rank: 2, steps: 2, fineTuneEpochs: 1 }',
        export: '{ factorized: split }',
      }),
    );
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/prune: round 1: ranks conv1 5, conv2 9/);
    const s: Summary = JSON.parse(await readFile(join(t.path, 'tiny-lowrank', 'summary.json'), 'utf8'));
    expect(s.prune.layers).toEqual(['conv1', 'conv2']);
    expect(s.prune.rounds.map((x) => x.ranks)).toEqual([
      { conv1: 5, conv2: 9 },
      { conv1: 2, conv2: 2 },
    ]);
    const { densePlan: d, prunedPlan: p } = s.prune;
    process.stdout.write(
      `lowrank rank 2 (synthetic LeNet-5 8/16 ch, 12x12): dense ${d.mulPlain} mulPlain / ${d.rotations} rotations → factorised ${p.mulPlain} / ${p.rotations}\n`,
    );
    expect(p.mulPlain).toBeLessThan(d.mulPlain);
    expect(p.rotations).toBeLessThan(d.rotations);
    // The export is the factorised plan: two more linear steps, no more squares.
    expect(s.export.plaintextMultiplications).toBe(p.mulPlain);
    expect(s.export.rotations).toBe(p.rotations);
    const again = await runCli(['run', cfg]);
    expect(again.stderr).toMatch(/prune: already complete; skipped/);
    // A longer last round (prune.finalFineTuneEpochs) reuses round 1 and fine-tunes round 2 for 2 epochs.
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('fineTuneEpochs: 1 }', 'fineTuneEpochs: 1, finalFineTuneEpochs: 2 }'));
    const longer = await runCli(['run', cfg]);
    expect(longer.code).toBe(0);
    expect(longer.stderr).toMatch(/prune: round 1 already complete; skipped/);
    expect(longer.stderr).not.toMatch(/prune: round 2 already complete/);
    const csv = await readFile(join(t.path, 'tiny-lowrank', 'prune', 'round2', 'metrics.csv'), 'utf8');
    expect(csv.trim().split('\n')).toHaveLength(3); // a header and 2 epochs
  } finally {
    await t.cleanup();
  }
}, 600_000);

(ort ? test : test.skip)(
  'synthetic: a model trained factorised (model.factorize) on onnx, refactorised by lowrank with fine-tuning on onnx, evaluates under CKKS like the plaintext model',
  async () => {
    const t = await tempDir();
    try {
      const cfg = join(t.path, 'onnx.yaml');
      await writeFile(
        cfg,
        config(t.path, 'tiny-ffconv-onnx', {
          model: ', factorize: { layers: [conv2], rank: 4 }',
          train: 'onnx',
          prune: '{ method: lowrank, layers: [conv2], rank: 2, steps: 1, fineTuneEpochs: 1 }',
          export: '{ factorized: split }',
          evaluate: 'evaluate: { samples: 2, encrypted: true, workers: 1 }',
        }),
      );
      const r = await runCli(['run', cfg]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/on backend onnx \(onnxruntime-node, \d+ threads\)/);
      expect(r.stderr).not.toMatch(/training on wasm instead/);
      const run = join(t.path, 'tiny-ffconv-onnx');
      const s: Summary = JSON.parse(await readFile(join(run, 'summary.json'), 'utf8'));
      expect(s.prune.rounds[0].ranks).toEqual({ conv2: 2 });
      expect(s.prune.prunedPlan.mulPlain).toBeLessThan(s.prune.densePlan.mulPlain);
      const ev = JSON.parse(await readFile(join(run, 'evaluation.json'), 'utf8'));
      expect(ev.agreement).toBe(1);
      expect(ev.maxAbsError).toBeLessThan(0.05);
    } finally {
      await t.cleanup();
    }
  },
  900_000,
);

type Round = {
  round: number;
  ranks?: Record<string, number>;
  validationAccuracy?: number;
  overBudget?: boolean;
  estimatedSeconds?: number;
};

test('synthetic: lowrank to a latency target picks each round the highest ranks whose plan meets its goal; the rounds record the rank/accuracy/latency curve', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'latency.yaml');
    // A small VGG whose 16-channel convolutions dominate its plan (in a LeNet this small, other steps do and no rank reaches the goal);
    // 26-bit primes for linear steps keep the split pairs' extra levels at the dense plan's N.
    await writeFile(
      cfg,
      `name: tiny-lowrank-latency
outDir: ${t.path}
dataset: { name: synthetic, trainCount: 192, testCount: 32, imageSize: [8, 8], channels: 1, validation: 0.25 }
model: { name: vgg5, filters: [4, 16, 16], groups: [1, 1, 1], activation: square }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm }
prune: { method: lowrank, layers: [conv2, conv3], latency: 0.9, steps: 2, fineTuneEpochs: 1 }
export: { weightBits: 26 }
`,
    );
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/prune: lowrank to 0.9 of the dense plan's estimated latency/);
    expect(r.stderr).not.toMatch(/the goal is out of reach/);
    const s = JSON.parse(await readFile(join(t.path, 'tiny-lowrank-latency', 'summary.json'), 'utf8'));
    const rounds: Round[] = s.prune.rounds;
    expect(rounds).toHaveLength(2);
    for (const x of rounds) {
      expect(x.validationAccuracy).toBeGreaterThanOrEqual(0);
      expect(x.estimatedSeconds).toBeGreaterThan(0);
    }
    // Ranks fall (never rise) round by round, and the final plan meets the target.
    for (const n of ['conv2', 'conv3']) expect(rounds[1].ranks![n]).toBeLessThanOrEqual(rounds[0].ranks![n]);
    expect(rounds[1].estimatedSeconds!).toBeLessThanOrEqual(rounds[0].estimatedSeconds!);
    expect(s.prune.prunedPlan.estimatedCost).toBeLessThanOrEqual(0.9 * s.prune.densePlan.estimatedCost + 0.1);
    // The export says where the estimated time goes, step by step, and how many levels each block of the model costs.
    const perStepMs = s.export.perStep.reduce((a: number, x: { estimatedMs: number }) => a + x.estimatedMs, 0);
    expect(Math.abs(perStepMs - 1000 * s.export.estimatedSeconds)).toBeLessThan(0.01 * 1000 * s.export.estimatedSeconds + 1);
    const levels = s.export.depthPerBlock.reduce((a: number, b: { levels: number }) => a + b.levels, 0);
    expect(levels).toBe(s.export.depth);
    expect(s.export.depthPerBlock.find((b: { block: string }) => b.block === 'conv2').levels).toBeGreaterThanOrEqual(2); // its linear step(s) and the square after
  } finally {
    await t.cleanup();
  }
}, 600_000);

test('synthetic: prune.accuracyBudget stops at the first round past the budget and keeps the round before', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'budget.yaml');
    // Ranks 16 → 11 → 6 → 1 with no fine-tuning: the last rounds lose accuracy a budget of 2 points does not allow.
    await writeFile(
      cfg,
      config(t.path, 'tiny-lowrank-budget', {
        prune: '{ method: lowrank, layers: [conv2], rank: 1, steps: 3, fineTuneEpochs: 0, accuracyBudget: 2 }',
      }),
    );
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    const s = JSON.parse(await readFile(join(t.path, 'tiny-lowrank-budget', 'summary.json'), 'utf8'));
    const rounds: Round[] = s.prune.rounds;
    const dense: number = s.prune.denseValidationAccuracy;
    expect(dense).toBeGreaterThan(0);
    // Every round's flag says what its own figures say; no round runs after the first one past the budget.
    for (const x of rounds) expect(!!x.overBudget).toBe(100 * (dense - x.validationAccuracy!) > 2);
    const first = rounds.findIndex((x) => x.overBudget);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(rounds).toHaveLength(first + 1);
    expect(r.stderr).toMatch(
      first === 0 ? /no round is within it, round 1 is kept/ : new RegExp(`past the budget of 2; keeping round ${first}`),
    );
    // The kept model is the round before (round 1 when even it is past): the pruned plan is that round's.
    const kept = rounds[Math.max(first - 1, 0)];
    expect(Math.abs(s.prune.prunedPlan.estimatedCost * 0.66e-3 - kept.estimatedSeconds!) / kept.estimatedSeconds!).toBeLessThan(1e-3);
    expect(s.prune.keptRound).toBe(Math.max(first, 1));
    expect(s.prune.withinBudget).toBe(first > 0);
    // A re-run under a budget every round meets reuses the rounds on disk, judges them by the new budget and runs the rest.
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('accuracyBudget: 2', 'accuracyBudget: 100'));
    const again = await runCli(['run', cfg]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`round ${first + 1} already complete; skipped`));
    const s2 = JSON.parse(await readFile(join(t.path, 'tiny-lowrank-budget', 'summary.json'), 'utf8'));
    expect(s2.prune.rounds).toHaveLength(3);
    expect(s2.prune.rounds.some((x: Round) => x.overBudget)).toBe(false);
    expect(s2.prune.keptRound).toBe(3);
    expect(s2.prune.withinBudget).toBe(true);
  } finally {
    await t.cleanup();
  }
}, 600_000);

test('synthetic: factorisation, then sub-block pruning of the d×d halves (train.fromPruned): fewer plaintext multiplications than factorisation alone', async () => {
  const t = await tempDir();
  try {
    const base = (name: string, rest: string) => `name: ${name}
outDir: ${t.path}
dataset: { name: synthetic, trainCount: 192, testCount: 32, imageSize: [8, 8], channels: 1, validation: 0.25 }
model: { name: vgg5, filters: [4, 16, 16], groups: [1, 1, 1], activation: square }
export: { weightBits: 26, channelBlocks: pow2, factorized: split }
${rest}
`;
    const first = join(t.path, 'lowrank.yaml'),
      second = join(t.path, 'both.yaml');
    await writeFile(
      first,
      base(
        'tiny-lr',
        'train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm }\nprune: { method: lowrank, layers: [conv2, conv3], rank: 8, steps: 1, fineTuneEpochs: 1 }',
      ),
    );
    await writeFile(
      second,
      base(
        'tiny-lr-subblock',
        'train: { from: tiny-lr, fromPruned: true, batchSize: 32, learningRate: 0.01, backend: wasm }\nprune: { method: subblock, layers: [conv2, conv3], sparsity: 0.5, steps: 1, fineTuneEpochs: 1 }',
      ),
    );
    // The source must have pruned first: a clear error naming it otherwise (trained but not pruned here).
    const unpruned = (await readFile(first, 'utf8')).replace(/\nprune: .*\n/, '\n');
    await writeFile(first, unpruned);
    expect((await runCli(['run', first])).code).toBe(0);
    const early = await runCli(['run', second]);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/train.from with train.fromPruned: run "tiny-lr" has not finished pruning/);
    await writeFile(
      first,
      base(
        'tiny-lr',
        'train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm }\nprune: { method: lowrank, layers: [conv2, conv3], rank: 8, steps: 1, fineTuneEpochs: 1 }',
      ),
    );
    expect((await runCli(['run', first])).code).toBe(0);
    const r = await runCli(['run', second]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/train: from run tiny-lr's pruned model \(lowrank\)/);
    const a = JSON.parse(await readFile(join(t.path, 'tiny-lr', 'summary.json'), 'utf8'));
    const b = JSON.parse(await readFile(join(t.path, 'tiny-lr-subblock', 'summary.json'), 'utf8'));
    // The second run's dense plan is the first's factorised one; sub-blocks of the d×d halves cut it further.
    expect(b.prune.densePlan.mulPlain).toBe(a.prune.prunedPlan.mulPlain);
    expect(b.prune.prunedPlan.mulPlain).toBeLessThan(b.prune.densePlan.mulPlain);
    const model = JSON.parse(await readFile(join(t.path, 'tiny-lr-subblock', 'prune', 'best', 'model.json'), 'utf8'));
    expect(JSON.stringify(model)).toMatch(/conv2_1x1/);
  } finally {
    await t.cleanup();
  }
}, 600_000);
