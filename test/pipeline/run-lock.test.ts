import { mkdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** SYNTHETIC data (tests only). */
const config = (out: string) => `
name: locked
outDir: ${out}
dataset: { name: synthetic, trainCount: 64, testCount: 16, imageSize: [8, 8], channels: 1, validation: 0.25 }
model: { name: mlp, hidden: [8], activation: square }
train: { epochs: 1, batchSize: 16, backend: wasm }
`;

test('one process per run directory: a live owner is refused with its pid, a dead one\'s lock is taken over and released', async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'c.yaml');
    await writeFile(cfg, config(t.path));
    await mkdir(join(t.path, 'locked'), { recursive: true });
    // This test process is alive: the run must not start.
    await writeFile(join(t.path, 'locked', '.lock'), String(process.pid));
    const busy = await runCli(['run', cfg]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(new RegExp(`run directory .*locked is in use by process ${process.pid}`));
    await expect(access(join(t.path, 'locked', 'state.json'))).rejects.toThrow();
    // A pid that cannot exist: a stale lock from a killed run.
    await writeFile(join(t.path, 'locked', '.lock'), '2147483646');
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    await expect(access(join(t.path, 'locked', '.lock'))).rejects.toThrow();
  } finally { await t.cleanup(); }
});
