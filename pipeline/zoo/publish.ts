import { execFileSync } from 'node:child_process';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { replaceDirAtomic } from '../../common/atomic-write.js';
import { UserError } from '../../common/errors.js';
import { exists } from '../../datasets/fs-util.js';
import type { RunState } from '../run-dir.js';
import { entryDir, sha256File, type Provenance } from './store.js';

function gitCommit(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch { return 'unknown'; }
}

async function readJson<T>(file: string, what: string): Promise<T> {
  try { return JSON.parse(await readFile(file, 'utf8')) as T; } catch (e) {
    throw new UserError(`${file}: cannot read ${what}: ${(e as Error).message}`);
  }
}

/** Last metrics row of a run's metrics.csv, as numbers (empty cells: null). */
async function lastMetrics(csv: string): Promise<Record<string, number | null>> {
  if (!(await exists(csv))) return {};
  const lines = (await readFile(csv, 'utf8')).trim().split('\n');
  if (lines.length < 2) return {};
  const head = lines[0].split(','), row = lines[lines.length - 1].split(',');
  return Object.fromEntries(head.map((h, i) => [h, row[i] === '' || row[i] === undefined ? null : Number(row[i])]));
}

/**
 * Publishes a run's training to zoo/<name>/: a finished training as the
 * entry's model (best checkpoint) with provenance and metrics.csv; an
 * unfinished one as resume/ (last and best checkpoints, optimizer state,
 * metrics.csv), which a run of the same training on another machine
 * continues from. The entry is replaced atomically.
 */
export async function publishRun(runPath: string, name: string): Promise<Provenance> {
  const state = await readJson<RunState>(join(runPath, 'state.json'), 'the run state (is this a run directory?)');
  const started = state.stages['train.started'];
  if (!started) throw new UserError(`${runPath}: this run has no training of its own to publish (a run made with train.from adopts a model; publish its source run)`);
  const done = state.stages.train?.fingerprint === started.fingerprint ? state.stages.train : undefined;
  const train = join(runPath, 'train');
  const config = YAML.parse(await readFile(join(runPath, 'config.yaml'), 'utf8')) as Record<string, unknown>;
  const commandsFile = join(runPath, 'commands.txt');
  const commands = (await exists(commandsFile)) ? (await readFile(commandsFile, 'utf8')).trim().split('\n').filter(Boolean) : [];
  const last = await readJson<{ epoch: number; bestEpoch?: number }>(join(train, 'last', 'state.json'), 'the last training checkpoint');
  const planned = (config.train as { epochs?: number } | undefined)?.epochs ?? last.epoch;
  const csv = await lastMetrics(join(train, 'metrics.csv'));
  const metrics: Record<string, number | null> = done
    ? { testAccuracy: (done.result.testAccuracy as number | undefined) ?? null, testLoss: (done.result.testLoss as number | undefined) ?? null, ...prefixed(csv) }
    : prefixed(csv);
  const prov: Provenance = {
    name, status: done ? 'finished' : 'training', trainFingerprint: started.fingerprint,
    model: String((config.model as { name?: string } | undefined)?.name), dataset: String((config.dataset as { name?: string } | undefined)?.name),
    epochs: last.epoch, epochsPlanned: planned, bestEpoch: done ? Number(done.result.bestEpoch) : (last.bestEpoch ?? 0),
    metrics, config, commands, commit: gitCommit(), publishedAt: new Date().toISOString(),
  };
  await replaceDirAtomic(entryDir(name), async (tmp) => {
    if (done) {
      for (const f of ['model.json', 'weights.bin']) await cp(join(train, 'best', f), join(tmp, f));
      prov.weightsSha256 = await sha256File(join(tmp, 'weights.bin'));
    } else {
      for (const d of ['last', 'best'])
        if (await exists(join(train, d))) {
          await cp(join(train, d), join(tmp, 'resume', d), { recursive: true });
          await splitLarge(join(tmp, 'resume', d));
        }
    }
    if (await exists(join(train, 'metrics.csv'))) await cp(join(train, 'metrics.csv'), join(tmp, 'metrics.csv'));
    for (const f of ['curves.png', 'curves.svg']) if (await exists(join(train, f))) await cp(join(train, f), join(tmp, f));
    await writeFile(join(tmp, 'provenance.json'), JSON.stringify(prov, null, 2) + '\n');
  });
  return prov;
}

/** metrics.csv's last row under the names provenance uses (last epoch's figures). */
function prefixed(csv: Record<string, number | null>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(csv)) out[`last_${k}`] = v;
  return out;
}

/** Copies an unfinished zoo training into a fresh run's train/ so fit() resumes it. */
/** A finished entry's model becomes the run's best checkpoint (atomically), with its metrics.csv beside it. */
export async function adoptFromZoo(entry: string, trainDir: string): Promise<void> {
  const src = entryDir(entry);
  await replaceDirAtomic(join(trainDir, 'best'), async (tmp) => {
    for (const f of ['model.json', 'weights.bin']) await cp(join(src, f), join(tmp, f));
  });
  if (await exists(join(src, 'metrics.csv'))) await cp(join(src, 'metrics.csv'), join(trainDir, 'metrics.csv'));
}

export async function seedFromZoo(entry: string, trainDir: string): Promise<void> {
  const src = join(entryDir(entry), 'resume');
  for (const d of ['last', 'best']) {
    if (await exists(join(src, d)))
      await replaceDirAtomic(join(trainDir, d), async (tmp) => {
        await cp(join(src, d), tmp, { recursive: true });
        await joinParts(tmp);
      });
  }
  const csv = join(entryDir(entry), 'metrics.csv');
  if (await exists(csv)) await cp(csv, join(trainDir, 'metrics.csv'));
}

/** The repository keeps no file over 2 MiB: a checkpoint file past it is stored as <name>.part0, .part1, … */
const PART_BYTES = 2 * 2 ** 20 - 4096;

async function splitLarge(dir: string): Promise<void> {
  for (const f of await readdir(dir)) {
    const path = join(dir, f);
    const bytes = await readFile(path);
    if (bytes.byteLength <= PART_BYTES) continue;
    for (let i = 0, at = 0; at < bytes.byteLength; i++, at += PART_BYTES) await writeFile(`${path}.part${i}`, bytes.subarray(at, at + PART_BYTES));
    await rm(path);
  }
}

/** Reassembles the files splitLarge split (in part order). */
async function joinParts(dir: string): Promise<void> {
  const parts = (await readdir(dir)).filter((f) => /\.part\d+$/.test(f));
  const names = [...new Set(parts.map((f) => f.replace(/\.part\d+$/, '')))];
  for (const name of names) {
    const mine = parts.filter((f) => f.startsWith(`${name}.part`)).sort((a, b) => Number(a.slice(a.lastIndexOf('part') + 4)) - Number(b.slice(b.lastIndexOf('part') + 4)));
    await writeFile(join(dir, name), Buffer.concat(await Promise.all(mine.map((f) => readFile(join(dir, f))))));
    for (const f of mine) await rm(join(dir, f));
  }
}
