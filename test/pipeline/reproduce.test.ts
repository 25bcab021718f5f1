import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** A two-row table on SYNTHETIC data (tests only): a dense run and a pruned one, both under real CKKS (N=8192, depth 5). */
const config = (name: string, extra: string) => `
name: ${name}
dataset: { name: synthetic, trainCount: 128, testCount: 16, imageSize: [12, 12], channels: 1, validation: 0.25 }
model: { name: cryptonets, filters: 8, hidden: 16, activation: square }
train: { epochs: 1, batchSize: 32, learningRate: 0.01, backend: wasm }
export: { channelBlocks: pow2, scaleBits: 28, polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40] }
evaluate: { samples: 1, encrypted: true, simulate: false }
${extra}`;

test("reproduce --quick runs a table's configs and writes a Markdown and CSV table marked as quick, speedups over the dense row", async () => {
  const t = await tempDir();
  try {
    const dir = join(t.path, 'configs');
    await mkdir(dir);
    await writeFile(join(dir, 'a-dense.yaml'), config('t-dense', 'reproduce: { table: spencnn, row: tiny, role: dense }'));
    await writeFile(
      join(dir, 'b-pruned.yaml'),
      config(
        't-pruned',
        'prune: { method: subblock, sparsity: 0.6, steps: 1, fineTuneEpochs: 1 }\nreproduce: { table: spencnn, row: tiny, role: method, paperSpeedup: 8.37 }',
      ),
    );
    // A plan past its CKKS time limit (a tiny one here; quick mode keeps a config's lower limit): simulator only, and the table says why.
    await writeFile(
      join(dir, 'c-slow.yaml'),
      config('t-slow', 'reproduce: { table: spencnn, row: tiny, role: baseline }').replace(
        'simulate: false }',
        'simulate: true, maxEstimatedSeconds: 0.000001 }',
      ),
    );
    // A config that fails with a clear error (its train.from names no run): the others still make the table, the command fails after it.
    await writeFile(
      join(dir, 'd-broken.yaml'),
      config('t-broken', 'reproduce: { table: spencnn, row: tiny, role: baseline }').replace(
        'backend: wasm }',
        'backend: wasm, from: no-such-run }',
      ),
    );
    const r = await runCli(['reproduce', 'spencnn', '--quick', '--configs', dir, '--out', t.path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /reproduce spencnn: 1 of 4 configs failed \(t-broken-quick\); the table of the others and the errors are in .*table\.md/,
    );
    const md = await readFile(join(t.path, 'reproduce-spencnn-quick', 'table.md'), 'utf8');
    expect(md).toMatch(/QUICK MODE/);
    const lines = md
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('| tiny'));
    expect(lines).toHaveLength(4);
    expect(md).toMatch(/\*\*Failed\*\* \(no figures\):\n- `t-broken-quick`: .*train\.from: no run "no-such-run-quick"/);
    expect(lines[0]).toMatch(/\| 1\.00x \|/);
    expect(lines[1]).toMatch(/\| \d+\.\d\dx \| 8\.37x \|$/);
    // Accuracy against the dense row, in points, signed; none for the dense row itself.
    const header = md
      .split('\n')
      .find((l) => l.startsWith('| row'))!
      .split('|')
      .map((c) => c.trim());
    const col = header.indexOf('vs dense (points)');
    expect(col).toBe(header.indexOf('test accuracy %') + 1);
    const cell = (line: string, c: number) => line.split('|').map((x) => x.trim())[c];
    expect(cell(lines[0], col)).toBe('–');
    const acc = (line: string) => Number(cell(line, col - 1));
    expect(Number(cell(lines[1], col).replace('−', '-'))).toBeCloseTo(acc(lines[1]) - acc(lines[0]), 1);
    expect(cell(lines[1], col)).toMatch(/^[+−]\d+\.\d\d$/);
    // Depth and ring (N, primes) of every row's plan.
    expect([cell(lines[0], header.indexOf('depth')), cell(lines[0], header.indexOf('N (primes)'))]).toEqual(['5', '8192 (7)']);
    // t-slow: no CKKS cells, no speedup, and a note naming the run and the limit.
    expect(lines[2]).toMatch(/t-slow-quick/);
    expect(lines[2]).not.toMatch(/\dx \|/);
    expect(md).toMatch(
      /CKKS not run \(simulator only\):\n- `t-slow-quick`: estimated \d+\.\d s of server time per image > evaluate\.maxEstimatedSeconds 0\.000001/,
    );
    const slow = JSON.parse(await readFile(join(t.path, 't-slow-quick', 'evaluation.json'), 'utf8'));
    expect(slow.ckksSkipped).toMatch(/maxEstimatedSeconds/);
    expect(slow.ckksAccuracy).toBeUndefined();
    expect(slow.simulatedAccuracy).toBeGreaterThanOrEqual(0);
    expect(slow.estimatedServerSeconds).toBeGreaterThan(0);
    // The plots beside the table: the timed rows against latency, every row against the plan's size; each label drawn.
    const out = join(t.path, 'reproduce-spencnn-quick');
    const latencySvg = await readFile(join(out, 'accuracy-latency.svg'), 'utf8');
    expect(latencySvg).toMatch(/CKKS server ms per image/);
    for (const label of ['dense', 'method']) expect(latencySvg).toContain(`>${label}</text>`);
    expect(latencySvg).not.toContain('>baseline</text>'); // t-slow has no CKKS latency
    const sizeSvg = await readFile(join(out, 'accuracy-size.svg'), 'utf8');
    for (const label of ['dense', 'method', 'baseline']) expect(sizeSvg).toContain(`>${label}</text>`);
    for (const f of ['accuracy-latency.png', 'accuracy-size.png'])
      expect((await readFile(join(out, f))).subarray(1, 4).toString()).toBe('PNG');
    const csv = await readFile(join(t.path, 'reproduce-spencnn-quick', 'table.csv'), 'utf8');
    expect(csv.split('\n')[0]).toMatch(/QUICK MODE/);
    expect(csv).toMatch(/t-pruned-quick/);
    const bad = await runCli(['reproduce', 'spencnn', '--configs', join(t.path, 'nope'), '--out', t.path]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/no config directory .*nope/);
  } finally {
    await t.cleanup();
  }
}, 300_000); // three small trainings and two CKKS sessions

test('reproduce --list prints the runs of a table in the order they would run, references first, and runs nothing', async () => {
  const r = await runCli(['reproduce', 'ffconv', '--list']);
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length).toBeGreaterThanOrEqual(6);
  // Every VGG-5 run after the VGG-5 dense row; the runs starting from the zoo say so.
  const dense = lines.findIndex((l) => /VGG-5 \/ CIFAR-10 · dense · ffconv-vgg5-cifar10-dense/.test(l));
  expect(dense).toBeGreaterThanOrEqual(0);
  for (const [i, l] of lines.entries()) if (/VGG-5/.test(l) && i !== dense) expect(i).toBeGreaterThan(dense);
  expect(r.stdout).toMatch(
    /VGG-5 \/ CIFAR-10 · method · ffconv-vgg5-cifar10-r8 \[vgg5-cifar10-lowrank\.yaml \(variant ffconv-vgg5-cifar10-r8\)\] from zoo:vgg5-cifar10/,
  );
  // A run that prunes another's pruned model comes after it and says so.
  const source = lines.findIndex((l) => / · ffconv-vgg5-cifar10-r8 \[/.test(l));
  const second = lines.findIndex((l) => /ffconv-vgg5-cifar10-r8-subblock .* from ffconv-vgg5-cifar10-r8's pruned model/.test(l));
  expect(second).toBeGreaterThan(source);
});
