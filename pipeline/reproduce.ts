import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createObjectCsvStringifier } from 'csv-writer';
import { UserError } from '../common/errors.js';
import { writeReproducePlots } from './reproduce-plots.js';
import { writeFileAtomic } from '../common/atomic-write.js';
import type { Logger } from '../common/log.js';
import { resolveRun } from './load-config.js';
import { expandConfigFile } from './config-file.js';
import { runPipeline } from './runner.js';
import type { StageResults } from './stage-results.js';
import { runOrder } from './run-order.js';
import { ZOO_PREFIX } from './zoo/store.js';
import type { PipelineConfig } from './config-schema.js';
import type { ReproduceConfig } from './reproduce-schema.js';

/**
 * `heprune reproduce <table>`: runs every config of configs/<table>/, each variant of a
 * file with variants a run of its own (each names its row and role in a `reproduce:` section) and writes the table:
 * accuracy, plan cost, CKKS latency, the speedup measured over the row's
 * dense run, and the paper's figure beside it. `quick` runs on small subsets
 * with one epoch and a few CKKS images: a smoke check whose numbers mean
 * nothing, and the table says so.
 */
export interface ReproduceOptions {
  table: string;
  configsDir: string;
  outDir: string;
  quick: boolean;
  logger: Logger;
  /** Train the references even where the zoo holds them finished (by default the zoo's are adopted). */
  fromScratch?: boolean;
}

/** reproduce --quick runs CKKS only on plans the cost model puts at most this many server seconds per image. */
const QUICK_MAX_SECONDS = 30;

/** Overrides for a quick run, for the sections a config has. */
function quickSets(raw: Record<string, unknown>): string[] {
  const s = ['dataset.trainLimit=2000', 'dataset.validationLimit=500', 'dataset.testLimit=200'];
  if (raw.train) s.push('train.epochs=1');
  // A run that starts from another run's model starts from that run's quick twin; a zoo entry is already trained and stays.
  const train = raw.train as { from?: string; init?: string } | undefined;
  const twin = (src: string) => (src.startsWith(ZOO_PREFIX) ? src : `${src}-quick`);
  if (train?.from) s.push(`train.from=${twin(train.from)}`);
  if (train?.init) s.push(`train.init=${twin(train.init)}`);
  // One round of one epoch, the last round's longer fine-tuning included.
  if (raw.prune) s.push('prune.fineTuneEpochs=1', 'prune.finalFineTuneEpochs=1', 'prune.steps=1');
  if (raw.evaluate) {
    s.push('evaluate.samples=4');
    // CKKS only for plans estimated to take seconds, not minutes, an image (a config's own lower limit stays).
    const own = (raw.evaluate as { maxEstimatedSeconds?: number }).maxEstimatedSeconds;
    if (own === undefined || own > QUICK_MAX_SECONDS) s.push(`evaluate.maxEstimatedSeconds=${QUICK_MAX_SECONDS}`);
  }
  return s;
}

interface Row {
  row: string;
  role: string;
  label: string;
  run: string;
  accuracy?: number;
  mse?: number;
  ckksAccuracy?: number;
  /** Against the row's dense run: accuracy in points, MSE as a difference. */
  accuracyDelta?: number;
  mseDelta?: number;
  agreement?: number;
  ckksMse?: number;
  depth?: number;
  /** N and the number of primes in the modulus chain. */
  ring?: string;
  rotations?: number;
  mulPlain?: number;
  plaintexts?: number;
  ciphertexts?: number;
  memoryMiB?: number;
  latencyMs?: number;
  paperSpeedup?: number;
  paper?: string;
  speedup?: number;
  latencyCut?: number;
  memoryCut?: number;
  sparsity?: number;
  /** Why CKKS did not run (evaluate.maxEstimatedSeconds), when it did not. */
  ckksSkipped?: string;
  /** The error that stopped this config's run. */
  failed?: string;
  /** Where the run's exported plan lies (the server's artifact). */
  exportDir?: string;
}

/** Table columns; a column shows only when some row has a value (classification and reconstruction tables differ). */
const pct = (v: number | undefined, d = 2) => (v === undefined ? undefined : (100 * v).toFixed(d));
const signed = (s: string | undefined) => (s === undefined || s.startsWith('-') ? s?.replace('-', '−') : `+${s}`);
const COLUMNS: { title: string; id: string; cell: (x: Row) => string | undefined }[] = [
  { title: 'sparsity', id: 'sparsity', cell: (x) => x.sparsity?.toFixed(2) },
  { title: 'test accuracy %', id: 'accuracy', cell: (x) => pct(x.accuracy) },
  { title: 'vs dense (points)', id: 'accuracyDelta', cell: (x) => signed(x.accuracyDelta?.toFixed(2)) },
  { title: 'test MSE', id: 'mse', cell: (x) => x.mse?.toExponential(4) },
  { title: 'MSE vs dense', id: 'mseDelta', cell: (x) => signed(x.mseDelta?.toExponential(2)) },
  { title: 'CKKS accuracy %', id: 'ckksAccuracy', cell: (x) => pct(x.ckksAccuracy) },
  { title: 'CKKS MSE', id: 'ckksMse', cell: (x) => x.ckksMse?.toExponential(4) },
  { title: 'agreement %', id: 'agreement', cell: (x) => pct(x.agreement, 1) },
  { title: 'depth', id: 'depth', cell: (x) => x.depth?.toString() },
  { title: 'N (primes)', id: 'ring', cell: (x) => x.ring },
  { title: 'plaintexts (tiles)', id: 'plaintexts', cell: (x) => x.plaintexts?.toString() },
  { title: 'ciphertexts', id: 'ciphertexts', cell: (x) => x.ciphertexts?.toString() },
  { title: 'rotations', id: 'rotations', cell: (x) => x.rotations?.toString() },
  { title: 'plaintext mults', id: 'mulPlain', cell: (x) => x.mulPlain?.toString() },
  { title: 'packed model MiB', id: 'memoryMiB', cell: (x) => x.memoryMiB?.toFixed(1) },
  { title: 'CKKS server ms/image (median)', id: 'latencyMs', cell: (x) => x.latencyMs?.toFixed(0) },
  { title: 'latency cut vs dense', id: 'latencyCut', cell: (x) => pct(x.latencyCut, 1)?.concat('%') },
  { title: 'memory cut vs dense', id: 'memoryCut', cell: (x) => pct(x.memoryCut, 1)?.concat('%') },
  { title: 'speedup over dense', id: 'speedup', cell: (x) => (x.speedup ? `${x.speedup.toFixed(2)}x` : undefined) },
  {
    title: 'paper',
    id: 'paper',
    // A speedup is the method's; a figure in words may be any row's (a baseline's parameters in the paper).
    cell: (x) => x.paper ?? (x.role === 'method' && x.paperSpeedup ? `${x.paperSpeedup}x` : undefined),
  },
];

/** One run of a reproduce table: the config it runs (outDir and, in quick mode, the quick overrides applied) and where it came from. */
export interface PlannedRun {
  source: string;
  config: PipelineConfig;
  reproduce: ReproduceConfig;
}

/**
 * The runs of `heprune reproduce <table>`, in the order they run: every
 * config of the directory that names this table, references first, each after the run it starts from.
 */
export async function reproducePlan(o: Omit<ReproduceOptions, 'logger'> & { logger?: Logger }): Promise<PlannedRun[]> {
  let files: string[];
  try {
    files = (await readdir(o.configsDir)).filter((f) => f.endsWith('.yaml')).sort();
  } catch {
    throw new UserError(`reproduce ${o.table}: no config directory ${o.configsDir}`);
  }
  if (!files.length) throw new UserError(`reproduce ${o.table}: ${o.configsDir} has no .yaml configs`);
  // One entry per run: a file with variants is one per variant.
  const runs = files.flatMap((file) => expandConfigFile(join(o.configsDir, file)).map((run) => ({ file, raw: run.raw, run })));
  // Runs that start from another run's trained model (train.from, train.init) go after it.
  const out: PlannedRun[] = [];
  for (const { file, raw, run } of runOrder(runs)) {
    const f = run.variant === undefined ? file : `${file} (variant ${run.variant})`;
    const sets = [`outDir=${o.outDir}`, ...(o.quick ? [...quickSets(raw), `name=${String(raw.name)}-quick`] : [])];
    const config = resolveRun(run, sets);
    const r = config.reproduce;
    if (!r || r.table !== o.table) {
      o.logger?.info(`reproduce: ${f} has no reproduce.table ${o.table}; skipped`);
      continue;
    }
    out.push({ source: f, config, reproduce: r });
  }
  return out;
}

/** A row's measured figures, from the run's typed stage results (the pruned model's accuracy where there is one). */
function rowFigures({ train: tr, prune: pr, export: ex, evaluate: ev }: StageResults): Partial<Row> {
  return {
    accuracy: pr?.testAccuracy ?? tr?.testAccuracy,
    mse: pr?.testMse ?? tr?.testMse,
    ckksAccuracy: ev?.ckksAccuracy,
    agreement: ev?.agreement,
    ckksMse: ev?.ckksMse,
    depth: ex?.depth,
    ring: ex ? `${ex.params.polyModulusDegree} (${ex.params.coeffModulusBits.length})` : undefined,
    rotations: ex?.rotations,
    mulPlain: ex?.plaintextMultiplications,
    plaintexts: ex?.plaintexts,
    ciphertexts: ex?.ciphertexts,
    memoryMiB: ex?.memory ? ex.memory.plaintextBytes / 2 ** 20 : undefined,
    latencyMs: ev?.latencyMs?.server.median,
    sparsity: pr?.sparsity,
    ckksSkipped: ev?.ckksSkipped,
    exportDir: ex?.dir,
  };
}

export async function reproduce(o: ReproduceOptions): Promise<{ markdown: string; dir: string; exports: string[]; plots: string[] }> {
  const rows: Row[] = [];
  for (const { source: f, config, reproduce: r } of await reproducePlan(o)) {
    o.logger.info(`reproduce: ${f} (${r.row}, ${r.role})`);
    // One config's clear failure (bad config, an export refused) does not stop the others: its row says why.
    let results: StageResults;
    try {
      ({ results } = await runPipeline(config, { logger: o.logger, fromScratch: o.fromScratch }));
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      o.logger.info(`reproduce: ${f} failed: ${e.message}`);
      rows.push({ row: r.row, role: r.role, label: r.label ?? r.role, run: String(config.name), failed: e.message });
      continue;
    }
    rows.push({
      row: r.row,
      role: r.role,
      label: r.label ?? r.role,
      run: String(config.name),
      paperSpeedup: r.paperSpeedup,
      paper: r.paper,
      ...rowFigures(results),
    });
  }
  for (const x of rows) {
    const dense = rows.find((d) => d.row === x.row && d.role === 'dense');
    if (dense?.latencyMs && x.latencyMs) x.speedup = dense.latencyMs / x.latencyMs;
    if (dense?.latencyMs && x.latencyMs && x !== dense) x.latencyCut = 1 - x.latencyMs / dense.latencyMs;
    if (dense?.memoryMiB && x.memoryMiB !== undefined && x !== dense) x.memoryCut = 1 - x.memoryMiB / dense.memoryMiB;
    if (dense?.accuracy !== undefined && x.accuracy !== undefined && x !== dense) x.accuracyDelta = 100 * (x.accuracy - dense.accuracy);
    if (dense?.mse !== undefined && x.mse !== undefined && x !== dense) x.mseDelta = x.mse - dense.mse;
  }
  const dir = join(o.outDir, `reproduce-${o.table}${o.quick ? '-quick' : ''}`);
  const head = o.quick
    ? `**QUICK MODE: 2,000 training, 500 validation and 200 test images, 1 epoch, 4 CKKS images. A smoke check only: these are not the paper's numbers.**\n\n`
    : '';
  const cols = COLUMNS.filter((c) => rows.some((x) => c.cell(x) !== undefined));
  const md =
    `# ${o.table}: measured with heprune\n\n${head}` +
    `| row | run | ${cols.map((c) => c.title).join(' | ')} |\n` +
    `|---|---|${cols.map(() => '---|').join('')}\n` +
    rows.map((x) => `| ${x.row} | ${x.label} (\`${x.run}\`) | ${cols.map((c) => c.cell(x) ?? '–').join(' | ')} |`).join('\n') +
    '\n' +
    rows
      .filter((x) => x.ckksSkipped)
      .map((x, i) => `${i ? '' : '\nCKKS not run (simulator only):\n'}- \`${x.run}\`: ${x.ckksSkipped}\n`)
      .join('') +
    rows
      .filter((x) => x.failed)
      .map((x, i) => `${i ? '' : '\n**Failed** (no figures):\n'}- \`${x.run}\`: ${x.failed}\n`)
      .join('') +
    rows
      .filter((x) => x.exportDir)
      .map((x, i) => `${i ? '' : '\nExported plans (manifest, packed weights, plaintext reference):\n'}- ${x.label}: \`${x.exportDir}\`\n`)
      .join('');
  const csv = createObjectCsvStringifier({
    header: [
      'row',
      'role',
      'label',
      'run',
      ...cols.map((c) => c.id),
      ...(['ckksSkipped', 'failed'] as const).filter((k) => rows.some((x) => x[k])),
    ].map((id) => ({ id, title: id })),
  });
  await writeFileAtomic(join(dir, 'table.md'), md);
  await writeFileAtomic(
    join(dir, 'table.csv'),
    (o.quick ? '# QUICK MODE: smoke check on subsets, not the paper numbers\n' : '') +
      csv.getHeaderString()! +
      csv.stringifyRecords(
        rows.map((x) => ({ ...x, ...Object.fromEntries(cols.map((c) => [c.id, c.cell(x) ?? ''])) })) as unknown as Record<
          string,
          unknown
        >[],
      ),
  );
  const plots = await writeReproducePlots(
    dir,
    o.table,
    rows.filter((x) => !x.failed),
  ).catch((e) => {
    o.logger.warn(`reproduce: plots not drawn: ${(e as Error).message}`);
    return [] as string[];
  });
  const failed = rows.filter((x) => x.failed);
  if (failed.length) {
    throw new UserError(
      `reproduce ${o.table}: ${failed.length} of ${rows.length} configs failed (${failed.map((x) => x.run).join(', ')}); ` +
        `the table of the others and the errors are in ${join(dir, 'table.md')}`,
    );
  }
  return { markdown: md, dir, exports: rows.flatMap((x) => (x.exportDir ? [x.exportDir] : [])), plots };
}
