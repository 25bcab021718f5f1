import { mkdir, writeFile, access } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { lockRunDir } from '../../pipeline/run-lock.js';
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

test("one process per run directory: a live owner is refused with its pid, a dead one's lock is taken over and released", async () => {
  const t = await tempDir();
  try {
    const cfg = join(t.path, 'c.yaml');
    await writeFile(cfg, config(t.path));
    await mkdir(join(t.path, 'locked'), { recursive: true });
    // A live heprune run holds it (a process whose command line names heprune): the run must not start.
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'heprune']);
    await writeFile(join(t.path, 'locked', '.lock'), String(owner.pid));
    const busy = await runCli(['run', cfg]);
    owner.kill();
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(new RegExp(`run directory .*locked is in use by process ${owner.pid} \\(another heprune run`));
    await expect(access(join(t.path, 'locked', 'state.json'))).rejects.toThrow();
    // A pid that cannot exist: a stale lock from a killed run.
    await writeFile(join(t.path, 'locked', '.lock'), '2147483646');
    const r = await runCli(['run', cfg]);
    expect(r.code).toBe(0);
    await expect(access(join(t.path, 'locked', '.lock'))).rejects.toThrow();
  } finally {
    await t.cleanup();
  }
});

/** Many processes at once, each trying to lock the same directory: exactly one may hold it. */
async function race(dir: string, n: number): Promise<{ got: number; busy: number; messages: string[] }> {
  const script = `
    import { lockRunDir } from ${JSON.stringify(new URL('../../pipeline/run-lock.js', import.meta.url).href)};
    try { lockRunDir(process.argv[1]); console.log('got'); setInterval(() => {}, 1000); }
    catch (e) { console.log('busy ' + e.message); process.exit(0); }`;
  const kids = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  const lines = kids.map(
    (k) =>
      new Promise<string>((resolve) => {
        let out = '';
        k.stdout!.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out.trim());
        });
        k.on('exit', () => resolve(out.trim()));
      }),
  );
  const results = await Promise.all(lines);
  for (const k of kids) k.kill();
  await Promise.all(kids.map((k) => new Promise((r) => (k.exitCode !== null || k.signalCode !== null ? r(null) : k.on('exit', r)))));
  return { got: results.filter((r) => r === 'got').length, busy: results.filter((r) => r.startsWith('busy')).length, messages: results };
}

test("the lock is atomic: of 3 × 24 simultaneous processes (one round over a dead owner's lock) exactly one holds it each time", async () => {
  const t = await tempDir();
  try {
    for (let round = 0; round < 3; round++) {
      const dir = join(t.path, `r${round}`);
      await mkdir(dir);
      if (round === 2) await writeFile(join(dir, '.lock'), '2147483646'); // a pid that cannot exist
      const r = await race(dir, 24);
      expect({ round, got: r.got, busy: r.busy }).toEqual({ round, got: 1, busy: 23 });
      expect(
        r.messages
          .filter((m) => m.startsWith('busy'))
          .every(
            (m) =>
              /is in use by process \d+ \(another heprune run/.test(m) ||
              /is locked by process \d+, which is alive but is not heprune/.test(m),
          ),
      ).toBe(true);
    }
  } finally {
    await t.cleanup();
  }
});

test('a live process that is not heprune holding the lock gets a message saying so', async () => {
  const t = await tempDir();
  const sleeper = spawn('sleep', ['30']);
  try {
    await writeFile(join(t.path, '.lock'), String(sleeper.pid));
    expect(() => lockRunDir(t.path)).toThrow(
      new RegExp(`is locked by process ${sleeper.pid}, which is alive but is not heprune \\(sleep 30\\): .*delete .*\\.lock`),
    );
  } finally {
    sleeper.kill();
    await t.cleanup();
  }
});
