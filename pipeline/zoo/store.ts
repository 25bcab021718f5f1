import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { UserError } from '../../common/errors.js';
import { exists } from '../../datasets/fs-util.js';

/**
 * The repository's zoo of trained models: zoo/<name>/ holds model.json +
 * weights.bin (a finished entry, what `train.from: zoo:<name>` adopts), and
 * provenance.json (config, command, commit, metrics, date). A training too
 * long for one machine's lifetime is kept as zoo/<name>/resume/ (its last and
 * best checkpoints and metrics.csv): a run of the same training on a new
 * machine continues from it. HEPRUNE_ZOO points elsewhere (tests).
 */
export const ZOO_PREFIX = 'zoo:';
export const zooName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a zoo entry name: lower-case letters, digits, ".", "_" or "-"');

export function zooRoot(): string {
  // dist/pipeline/zoo/store.js → the package root's zoo/.
  return resolve(process.env.HEPRUNE_ZOO ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'zoo'));
}

export const provenanceSchema = z.object({
  name: z.string(),
  status: z.enum(['finished', 'training']),
  /** The training's fingerprint (train.started of its run): a run with the same one continues from resume/. */
  trainFingerprint: z.string(),
  model: z.string(),
  dataset: z.string(),
  epochs: z.number().int(),
  epochsPlanned: z.number().int(),
  bestEpoch: z.number().int(),
  metrics: z.record(z.string(), z.number().nullable()),
  config: z.record(z.string(), z.unknown()),
  commands: z.array(z.string()),
  commit: z.string(),
  publishedAt: z.string(),
  /** sha256 of weights.bin (finished entries): part of the fingerprint of runs adopting it. */
  weightsSha256: z.string().optional(),
});
export type Provenance = z.infer<typeof provenanceSchema>;

export interface ZooEntry { name: string; dir: string; provenance: Provenance }

export const entryDir = (name: string) => join(zooRoot(), name);

export async function readEntry(name: string): Promise<ZooEntry | undefined> {
  const dir = entryDir(name);
  const file = join(dir, 'provenance.json');
  if (!(await exists(file))) return undefined;
  let raw: unknown;
  try { raw = JSON.parse(await readFile(file, 'utf8')); } catch (e) { throw new UserError(`${file}: not valid JSON (${(e as Error).message})`); }
  const p = provenanceSchema.safeParse(raw);
  if (!p.success) throw new UserError(`${file}: not a zoo provenance file: ${p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { name, dir, provenance: p.data };
}

export async function listEntries(): Promise<ZooEntry[]> {
  const root = zooRoot();
  if (!(await exists(root))) return [];
  const names = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
  const entries = await Promise.all(names.map(readEntry));
  return entries.filter((e): e is ZooEntry => e !== undefined);
}

/** A finished entry, or a clear error naming the config key that asked for it. */
export async function finishedEntry(name: string, where: string): Promise<ZooEntry> {
  const e = await readEntry(name);
  const known = (await listEntries()).filter((x) => x.provenance.status === 'finished').map((x) => x.name);
  if (!e) throw new UserError(`${where}: no zoo entry "${name}" in ${zooRoot()} (finished entries: ${known.join(', ') || 'none'}; heprune zoo list)`);
  if (e.provenance.status !== 'finished' || !(await exists(join(e.dir, 'model.json')))) {
    throw new UserError(`${where}: zoo entry "${name}" is still training (epoch ${e.provenance.epochs} of ${e.provenance.epochsPlanned}); run its training to the end first: ${e.provenance.commands.at(-1) ?? ''}`);
  }
  return e;
}

/** The finished entry trained with this fingerprint, if any (its model is what the training would produce). */
export async function finishedEntryFor(trainFingerprint: string): Promise<ZooEntry | undefined> {
  for (const e of await listEntries()) {
    if (e.provenance.trainFingerprint === trainFingerprint && e.provenance.status === 'finished' && await exists(join(e.dir, 'model.json'))) return e;
  }
  return undefined;
}

/** The entry whose unfinished training has this fingerprint, if any. */
export async function resumableEntry(trainFingerprint: string): Promise<ZooEntry | undefined> {
  for (const e of await listEntries()) {
    if (e.provenance.trainFingerprint === trainFingerprint && await exists(join(e.dir, 'resume', 'last', 'state.json'))) return e;
  }
  return undefined;
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
