import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { createObjectCsvStringifier } from 'csv-writer';
import { UserError } from '../common/errors.js';
import { writeFileAtomic } from '../common/atomic-write.js';
import type { Logger } from '../common/log.js';
import { loadConfig } from './load-config.js';
import { runPipeline } from './runner.js';

/**
 * `heprune reproduce <table>`: runs every config of configs/<table>/ (each
 * names its row and role in a `reproduce:` section) and writes the table:
 * accuracy, plan cost, CKKS latency, the speedup measured over the row's
 * dense run, and the paper's figure beside it. `quick` runs on small subsets
 * with one epoch and a few CKKS images: a smoke check whose numbers mean
 * nothing, and the table says so.
 */
export interface ReproduceOptions { table: string; configsDir: string; outDir: string; quick: boolean; logger: Logger }

/** Overrides for a quick run, for the sections a config has. */
function quickSets(raw: Record<string, unknown>): string[] {
  const s = ['dataset.trainLimit=2000', 'dataset.testLimit=200'];
  if (raw.train) s.push('train.epochs=1');
  if (raw.prune) s.push('prune.fineTuneEpochs=1', 'prune.steps=1');
  if (raw.evaluate) s.push('evaluate.samples=4');
  return s;
}

interface Row {
  row: string; role: string; label: string; run: string;
  accuracy?: number; ckksAccuracy?: number; agreement?: number;
  rotations?: number; mulPlain?: number; latencyMs?: number; paperSpeedup?: number; speedup?: number; sparsity?: number;
}

export async function reproduce(o: ReproduceOptions): Promise<{ markdown: string; dir: string }> {
  let files: string[];
  try { files = (await readdir(o.configsDir)).filter((f) => f.endsWith('.yaml')).sort(); } catch {
    throw new UserError(`reproduce ${o.table}: no config directory ${o.configsDir}`);
  }
  if (!files.length) throw new UserError(`reproduce ${o.table}: ${o.configsDir} has no .yaml configs`);
  const rows: Row[] = [];
  for (const f of files) {
    const file = join(o.configsDir, f);
    const raw = YAML.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const sets = [`outDir=${o.outDir}`, ...(o.quick ? [...quickSets(raw), `name=${String(raw.name)}-quick`] : [])];
    const config = await loadConfig(file, sets);
    const r = config.reproduce;
    if (!r || r.table !== o.table) { o.logger.info(`reproduce: ${f} has no reproduce.table ${o.table}; skipped`); continue; }
    o.logger.info(`reproduce: ${f} (${r.row}, ${r.role})`);
    const { summary } = await runPipeline(config, { logger: o.logger });
    const ev = summary.evaluate as Record<string, unknown> | undefined, ex = summary.export as Record<string, number> | undefined;
    const pr = summary.prune as Record<string, number> | undefined, tr = summary.train as Record<string, number> | undefined;
    rows.push({
      row: r.row, role: r.role, label: r.label ?? r.role, run: String(config.name),
      accuracy: (pr?.testAccuracy ?? tr?.testAccuracy) as number | undefined,
      ckksAccuracy: ev?.ckksAccuracy as number | undefined, agreement: ev?.agreement as number | undefined,
      rotations: ex?.rotations, mulPlain: ex?.plaintextMultiplications,
      latencyMs: (ev?.latencyMs as { server?: { median: number } } | undefined)?.server?.median,
      paperSpeedup: r.paperSpeedup, sparsity: pr?.sparsity,
    });
  }
  for (const x of rows) {
    const dense = rows.find((d) => d.row === x.row && d.role === 'dense');
    if (dense?.latencyMs && x.latencyMs) x.speedup = dense.latencyMs / x.latencyMs;
  }
  const dir = join(o.outDir, `reproduce-${o.table}${o.quick ? '-quick' : ''}`);
  const fmt = (v: number | undefined, d = 2, scale = 1) => (v === undefined ? '–' : (v * scale).toFixed(d));
  const head = o.quick
    ? `**QUICK MODE: 2,000 training and 200 test images, 1 epoch, 4 CKKS images. A smoke check only: these are not the paper's numbers.**\n\n`
    : '';
  const md = `# ${o.table}: measured with heprune\n\n${head}` +
    '| row | run | sparsity | test accuracy % | CKKS accuracy % | agreement % | rotations | plaintext mults | CKKS server ms/image (median) | speedup over dense | paper speedup |\n' +
    '|---|---|---|---|---|---|---|---|---|---|---|\n' +
    rows.map((x) => `| ${x.row} | ${x.label} (\`${x.run}\`) | ${fmt(x.sparsity)} | ${fmt(x.accuracy, 2, 100)} | ${fmt(x.ckksAccuracy, 2, 100)} | ${fmt(x.agreement, 1, 100)} | ${x.rotations ?? '–'} | ${x.mulPlain ?? '–'} | ${fmt(x.latencyMs, 0)} | ${x.speedup ? `${x.speedup.toFixed(2)}x` : '–'} | ${x.paperSpeedup && x.role === 'method' ? `${x.paperSpeedup}x` : '–'} |`).join('\n') + '\n';
  const csv = createObjectCsvStringifier({
    header: ['row', 'role', 'label', 'run', 'sparsity', 'accuracy', 'ckksAccuracy', 'agreement', 'rotations', 'mulPlain', 'latencyMs', 'speedup', 'paperSpeedup'].map((id) => ({ id, title: id })),
  });
  await writeFileAtomic(join(dir, 'table.md'), md);
  await writeFileAtomic(join(dir, 'table.csv'), (o.quick ? '# QUICK MODE: smoke check on subsets, not the paper numbers\n' : '') + csv.getHeaderString()! + csv.stringifyRecords(rows as unknown as Record<string, unknown>[]));
  return { markdown: md, dir };
}
