import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** train → prune (sub-blocks, 2 rounds) → export on SYNTHETIC data (tests only). */
const config = (out: string, method: string) => `
name: tiny-${method}
outDir: ${out}
dataset: { name: synthetic, trainCount: 192, testCount: 32, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: lenet5, conv1: 16, conv2: 16, groups: 2, hidden: 8, activation: square }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm }
prune: { method: ${method}, sparsity: 0.5, steps: 2, fineTuneEpochs: 1 }
export: { channelBlocks: pow2 }
`;

test('prune stage: sub-block pruning removes plaintext multiplications the export then skips; magnitude does not; re-runs resume', async () => {
  const t = await tempDir();
  try {
    const results: Record<
      string,
      {
        prune: {
          sparsity: number;
          densePlan: { mulPlain: number; rotations: number };
          prunedPlan: { mulPlain: number; rotations: number };
        };
        export: { plaintextMultiplications: number };
      }
    > = {};
    for (const method of ['subblock', 'magnitude']) {
      const cfg = join(t.path, `${method}.yaml`);
      await writeFile(cfg, config(t.path, method));
      const r = await runCli(['run', cfg]);
      expect(r.code).toBe(0);
      results[method] = JSON.parse(await readFile(join(t.path, `tiny-${method}`, 'summary.json'), 'utf8'));
      const again = await runCli(['run', cfg]);
      expect(again.stderr).toMatch(/prune: already complete; skipped/);
    }
    const sb = results.subblock,
      mg = results.magnitude;
    expect(sb.prune.sparsity).toBeGreaterThanOrEqual(0.5);
    expect(mg.prune.sparsity).toBeCloseTo(0.5, 1);
    // The export is the pruned plan.
    expect(sb.export.plaintextMultiplications).toBe(sb.prune.prunedPlan.mulPlain);
    expect(sb.prune.prunedPlan.mulPlain).toBeLessThan(0.8 * sb.prune.densePlan.mulPlain);
    expect(mg.prune.prunedPlan.mulPlain).toBeGreaterThan(sb.prune.prunedPlan.mulPlain);
    // Rounds on disk are reused only when computed from the same settings: a one-round schedule to 0.25 is round 1 of
    // the two-round schedule to 0.5; a schedule to 0.3 is not, and redoes it.
    const sbCfg = join(t.path, 'subblock.yaml');
    await writeFile(sbCfg, config(t.path, 'subblock').replace('sparsity: 0.5, steps: 2', 'sparsity: 0.25, steps: 1'));
    const reuse = await runCli(['run', sbCfg]);
    expect(reuse.code).toBe(0);
    expect(reuse.stderr).toMatch(/prune: round 1 already complete; skipped/);
    await writeFile(sbCfg, config(t.path, 'subblock').replace('sparsity: 0.5, steps: 2', 'sparsity: 0.3, steps: 1'));
    const redo = await runCli(['run', sbCfg]);
    expect(redo.code).toBe(0);
    expect(redo.stderr).toMatch(/prune: round 1 on disk was pruned with other settings; redoing it/);
    // A redone round fine-tunes afresh: never from the stale round's training checkpoint (whose best weights it would adopt).
    expect(redo.stderr).not.toMatch(/resuming training at epoch/);
    expect(redo.stderr).toMatch(/epoch 1\/1: train loss/);
    expect(JSON.parse(await readFile(join(t.path, 'tiny-subblock', 'summary.json'), 'utf8')).prune.rounds[0].target).toBeCloseTo(0.3);
    // A rotation budget instead of a sparsity: the exported plan meets it.
    const goal = sb.prune.densePlan.rotations - 4;
    const rcfg = join(t.path, 'rot.yaml');
    await writeFile(
      rcfg,
      config(t.path, 'subblock').replace('name: tiny-subblock', 'name: tiny-rot').replace('sparsity: 0.5', `rotations: ${goal}`),
    );
    const rr = await runCli(['run', rcfg]);
    expect(rr.code).toBe(0);
    const rot = JSON.parse(await readFile(join(t.path, 'tiny-rot', 'summary.json'), 'utf8'));
    expect(rot.prune.prunedPlan.rotations).toBeLessThanOrEqual(goal);
    expect(rot.export.rotations).toBe(rot.prune.prunedPlan.rotations);
    expect(rot.prune.rounds.map((x: { rotationGoal: number }) => x.rotationGoal)).toEqual([
      Math.round((sb.prune.densePlan.rotations + goal) / 2),
      goal,
    ]);
    // A latency budget: 80% of the dense plan's estimated latency (the cost model), reached in the last round.
    const lcfg = join(t.path, 'lat.yaml');
    await writeFile(
      lcfg,
      config(t.path, 'subblock').replace('name: tiny-subblock', 'name: tiny-lat').replace('sparsity: 0.5', 'latency: 0.8'),
    );
    const lr = await runCli(['run', lcfg]);
    expect(lr.code).toBe(0);
    const lat = JSON.parse(await readFile(join(t.path, 'tiny-lat', 'summary.json'), 'utf8'));
    expect(lat.prune.rounds[1].latencyGoal).toBeCloseTo(0.8 * lat.prune.densePlan.estimatedCost, 0);
    expect(lat.prune.prunedPlan.estimatedCost).toBeLessThanOrEqual(lat.prune.rounds[1].latencyGoal + 0.05); // (rounded to 0.1 in the summary)
    // A bad layer name is a clear error naming the key.
    const bad = join(t.path, 'bad.yaml');
    await writeFile(
      bad,
      config(t.path, 'subblock')
        .replace('name: tiny-subblock', 'name: tiny-bad')
        .replace('fineTuneEpochs: 1 }', 'fineTuneEpochs: 1, layers: [conv9] }'),
    );
    const b = await runCli(['run', bad]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/prune.layers: "conv9" is not a convolution or dense layer of lenet5 \(they are: conv1, conv2, fc1, fc2\)/);
  } finally {
    await t.cleanup();
  }
});

/** An MLP trained once, then tile-pruned (HE-PEx) from the same weights by another run (train.from), on SYNTHETIC data (tests only). */
const mlpConfig = (out: string, name: string, extra: string) => `
name: ${name}
outDir: ${out}
dataset: { name: synthetic, trainCount: 256, testCount: 32, imageSize: [8, 8], channels: 1, validation: 0.25 }
model: { name: mlp, hidden: [96, 64], activation: square }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm${extra.includes('prune') ? ', from: mlp-dense' : ''} }
export: { scaleBits: 30, tiles: { t1: 256, t2: 32, first: inner } }
${extra}
`;

test("tile pruning with permutation and expansion: from another run's model, fewer tiles in the exported plan, a clear error without tiles", async () => {
  const t = await tempDir();
  try {
    const dense = join(t.path, 'dense.yaml'),
      tiled = join(t.path, 'tiled.yaml');
    await writeFile(dense, mlpConfig(t.path, 'mlp-dense', ''));
    await writeFile(
      tiled,
      mlpConfig(
        t.path,
        'mlp-tiled',
        'prune: { method: tile, permute: true, expand: true, sparsity: 0.5, weightSparsity: 0.95, steps: 1, fineTuneEpochs: 1 }',
      ),
    );
    // Before its source has trained, train.from is a clear error.
    const early = await runCli(['run', tiled]);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/train\.from: no run "mlp-dense"/);
    expect((await runCli(['run', dense])).code).toBe(0);
    const r = await runCli(['run', tiled]);
    expect(r.stderr).toMatch(/train: from run mlp-dense/);
    expect(r.code).toBe(0);
    const s = JSON.parse(await readFile(join(t.path, 'mlp-tiled', 'summary.json'), 'utf8'));
    // The tile shape of the dense plan, with any input or output order the permutation chose.
    expect(s.prune.tiles).toMatchObject({ t1: 256, t2: 32, first: 'inner' });
    for (const [k, n] of [
      ['inputOrder', 64],
      ['outputOrder', 10],
    ] as const)
      if (s.prune.tiles[k])
        expect([...s.prune.tiles[k]].sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(s.export.plaintextMultiplications).toBe(s.prune.prunedPlan.mulPlain);
    expect(s.prune.prunedPlan.mulPlain).toBeLessThanOrEqual(Math.ceil(0.5 * s.prune.densePlan.mulPlain));
    expect(s.prune.prunedPlan.plaintextBytes).toBeLessThan(s.prune.densePlan.plaintextBytes);
    // 95% of the weights pruned before permuting leaves inputs and outputs with no survivor: both boundaries get an order.
    expect(s.prune.tiles.inputOrder).toHaveLength(64);
    expect(s.prune.tiles.outputOrder).toHaveLength(10);
    // Interrupted after its round finished (stage records lost, round marker kept): the rerun reuses the round and the
    // boundary orders it chose, so the export is the same plan.
    const state = join(t.path, 'mlp-tiled', 'state.json');
    const st = JSON.parse(await readFile(state, 'utf8'));
    for (const k of ['prune', 'export', 'evaluate']) delete st.stages[k];
    await writeFile(state, JSON.stringify(st));
    const again = await runCli(['run', tiled]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/prune: round 1 already complete; skipped/);
    const s2 = JSON.parse(await readFile(join(t.path, 'mlp-tiled', 'summary.json'), 'utf8'));
    expect(s2.prune.tiles).toEqual(s.prune.tiles);
    expect(s2.export.plaintextMultiplications).toBe(s.export.plaintextMultiplications);
    // The unstructured baseline on the same tiled plan (three layers, four linear steps with the replicate step): it prunes, and saves few tiles.
    const mag = join(t.path, 'mag.yaml');
    await writeFile(mag, mlpConfig(t.path, 'mlp-mag', 'prune: { method: magnitude, sparsity: 0.5, steps: 1, fineTuneEpochs: 0 }'));
    const rm = await runCli(['run', mag]);
    expect(rm.stderr).not.toMatch(/error/);
    const sm = JSON.parse(await readFile(join(t.path, 'mlp-mag', 'summary.json'), 'utf8'));
    expect(sm.prune.sparsity).toBeCloseTo(0.5, 2);
    expect(sm.prune.prunedPlan.mulPlain).toBeGreaterThan(s.prune.prunedPlan.mulPlain);
    // Tile pruning of a plan packed by diagonals is refused, naming the key to set.
    const bad = join(t.path, 'bad.yaml');
    await writeFile(
      bad,
      mlpConfig(t.path, 'mlp-bad', 'prune: { method: tile, sparsity: 0.5, steps: 1, fineTuneEpochs: 0 }').replace(/export: .*\n/, ''),
    );
    const b = await runCli(['run', bad]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/set export\.tiles/);
  } finally {
    await t.cleanup();
  }
}, 120_000);

test('a CNN with every dense layer tiled (export.tileFirstDense): prune + permute + expand runs end to end on SYNTHETIC data (tests only), fewer tiles in the exported plan (with its rows step), no input order', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'cnn.yaml');
    await writeFile(
      cfg,
      `
name: cnn-fc1
outDir: ${t.path}
dataset: { name: synthetic, trainCount: 128, testCount: 16, imageSize: [8, 8], channels: 1, validation: 0.25 }
model: { name: vgg5, filters: [2, 4], groups: [1, 1], dense: [32], activation: square, batchNorm: false }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm }
prune: { method: tile, permute: true, expand: true, sparsity: 0.5, allocation: global, steps: 1, fineTuneEpochs: 1 }
export: { scaleBits: 30, tiles: { t1: 1024, t2: 8 }, tileFirstDense: true }
evaluate: { samples: 4, encrypted: false }
`,
    );
    const r = await runCli(['run', cfg]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const s = JSON.parse(await readFile(join(t.path, 'cnn-fc1', 'summary.json'), 'utf8'));
    // Both dense layers are pruned, fc1 on the conv rows' tiles; the plan carries no input order (the conv layout fixes fc1's inputs).
    expect(s.prune.layers).toEqual(['fc1', 'fc2']);
    expect(s.export.tiles).toMatchObject({ t1: 1024, t2: 8, first: 'inner', from: 2, convRows: true });
    expect(s.export.tiles.inputOrder).toBeUndefined();
    expect(s.prune.prunedPlan.mulPlain).toBeLessThan(s.prune.densePlan.mulPlain);
    const rows = s.export.perStep.find((p: { name: string }) => p.name === 'rows2');
    expect(rows).toBeDefined();
    // The simulator agrees with plaintext on the pruned plan.
    expect(s.evaluate.simulatedMaxAbsError).toBeLessThan(1e-3);
  } finally {
    await t.cleanup();
  }
}, 120_000);

test('a prune round interrupted during its fine-tuning resumes it under the same settings, and starts afresh under others', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'sb.yaml');
    const text = config(t.path, 'subblock').replace('fineTuneEpochs: 1', 'fineTuneEpochs: 3').replace('steps: 2', 'steps: 1');
    await writeFile(cfg, text);
    let killed = false;
    await runCli(['run', cfg], {
      onStderr: (all, kill) => {
        if (!killed && /prune: subblock[^]*epoch 1\/3: train loss/.test(all)) {
          killed = true;
          kill();
        }
      },
    });
    expect(killed).toBe(true);
    const resumed = await runCli(['run', cfg]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming training at epoch 2\/3 from .*prune\/round1\/last/);
    // Interrupted again under other settings: the next run must not adopt that round's checkpoints.
    const other = text.replace('sparsity: 0.5', 'sparsity: 0.4');
    await writeFile(cfg, other);
    killed = false;
    await runCli(['run', cfg], {
      onStderr: (all, kill) => {
        if (!killed && /sparsity 0.4[^]*epoch 1\/3: train loss/.test(all)) {
          killed = true;
          kill();
        }
      },
    });
    expect(killed).toBe(true);
    await writeFile(cfg, other.replace('sparsity: 0.4', 'sparsity: 0.45'));
    const fresh = await runCli(['run', cfg]);
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).not.toMatch(/resuming training at epoch/);
  } finally {
    await t.cleanup();
  }
}, 120_000);
