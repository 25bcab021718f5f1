import { join } from 'node:path';
import { assertWritableDir, writeFileAtomic, writeJsonAtomic } from '../common/atomic-write.js';
import { UserError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { shellQuote } from '../common/shell-quote.js';
import { COMPILER_VERSION } from '../export/compile.js';
import { exportSchema } from '../export/options.js';
import { CANDIDATE_RULE, normalized } from '../search/hemet/candidates.js';
import { greedySearch, outsideBudget, type SearchOutcome } from '../search/hemet/greedy.js';
import { measureNetwork, type Measurement, type SearchNetwork } from '../search/hemet/measure.js';
import { searchMarkdown } from '../search/hemet/report.js';
import type { BlockSpec } from '../train/zoo/blocks.js';
import { initBackend } from '../train/backend.js';
import { squeezenetBlocks } from '../train/zoo/squeezenet.js';
import { expandConfigFile, selectVariant } from './config-file.js';
import { applyOverrides, resolveRun } from './load-config.js';
import { fingerprint } from './run-dir.js';
import { loadRaw } from './stages/data-stage.js';
import { writtenConfig, writtenYaml } from './search-config.js';
import { MEASURED_VERSION, MeasuredNetworks } from './search-measured.js';

/**
 * `heprune search hemet CONFIG`: HEMET's greedy block search
 * (search/hemet) over a config's network, compiled under the config's
 * export section, and its outputs in one directory: search.json (every
 * candidate of every block, its whole network's figures, chosen or rejected
 * and why), search.md (the same as tables) and <name>.yaml, the chosen
 * network as a config ready to run (the input's dataset, train, export and
 * evaluate sections, model.blocks the chosen blocks). Every file is written
 * atomically, at the end; each compiled network's figures are kept in
 * measured.json as they come (search-measured.ts), so an interrupted search
 * re-run into the same directory compiles only what it had not.
 */
export interface HemetSearchOptions {
  config: string;
  variant?: string;
  /** Overrides of the input config (as heprune run --set). */
  sets?: string[];
  outDir: string;
  /** The written config's name (default <input name>-hemet). */
  name?: string;
  /** Overrides of the written config. */
  outSets?: string[];
  /** Default: the input network's depth (HEMET: latency falls without raising depth). */
  maxDepth?: number;
  maxN?: number;
  /** Seed of the random weights the networks are compiled with. */
  seed?: number;
  logger: Logger;
}

export interface HemetSearchResult {
  outcome: SearchOutcome;
  dir: string;
  files: { json: string; markdown: string; config: string };
  /** Networks compiled here (the rest came from measured.json). */
  compiled: number;
}

const RING_SIZES = [8192, 16384, 32768];

/** The command that reproduces a search (without --out: where it writes is not part of what it finds). */
function commandText(o: HemetSearchOptions): string {
  const args = ['heprune', 'search', 'hemet', o.config];
  if (o.variant !== undefined) args.push('--variant', o.variant);
  for (const s of o.sets ?? []) args.push('--set', s);
  if (o.maxDepth !== undefined) args.push('--max-depth', String(o.maxDepth));
  if (o.maxN !== undefined) args.push('--max-n', String(o.maxN));
  if (o.seed !== undefined) args.push('--seed', String(o.seed));
  if (o.name !== undefined) args.push('--name', o.name);
  for (const s of o.outSets ?? []) args.push('--out-set', s);
  return args.map(shellQuote).join(' ');
}

function checkFlags(o: HemetSearchOptions): void {
  if (o.maxDepth !== undefined && !(Number.isInteger(o.maxDepth) && o.maxDepth >= 1))
    throw new UserError(`--max-depth ${o.maxDepth}: expected a positive integer`);
  if (o.maxN !== undefined && !RING_SIZES.includes(o.maxN))
    throw new UserError(`--max-n ${o.maxN}: expected one of ${RING_SIZES.join(', ')} (the ring sizes of 128-bit CKKS parameters)`);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0)) throw new UserError(`--seed ${o.seed}: expected an integer >= 0`);
}

/** The input: its raw run (for the written config) and its validated config, checked to have a block list to search. */
function loadInput(o: HemetSearchOptions) {
  const runs = selectVariant(expandConfigFile(o.config), o.config, o.variant);
  if (runs.length > 1)
    throw new UserError(`${o.config}: has ${runs.length} variants (${runs.map((r) => r.variant).join(', ')}); name one (--variant)`);
  const run = runs[0];
  const config = resolveRun(run, o.sets);
  const raw = structuredClone(run.raw);
  applyOverrides(raw, o.sets ?? []);
  const m = config.model;
  if (!m) throw new UserError(`${o.config}: model: missing; the HEMET search needs a network of blocks (model.name: squeezenet)`);
  if (m.name !== 'squeezenet')
    throw new UserError(
      `${o.config}: model.name: the HEMET search replaces blocks of a block list (model.blocks or model.preset), which model.name squeezenet has (got "${m.name}")`,
    );
  if (m.factorize)
    throw new UserError(
      `${o.config}: model.factorize: names layers the search renames; remove it (a mobile block without its middle activation is the search's factorised pair)`,
    );
  return { raw, config, model: m, blocks: squeezenetBlocks(m).map(normalized) };
}

export async function searchHemet(o: HemetSearchOptions): Promise<HemetSearchResult> {
  checkFlags(o);
  const input = loadInput(o);
  const name = o.name ?? `${input.config.name}-hemet`;
  // The written config is checked before any work, with the input's blocks standing in for the chosen ones.
  writtenConfig(input.raw, { name, blocks: input.blocks, maxDepth: o.maxDepth ?? 1, outSets: o.outSets ?? [], where: o.config });
  const data = await loadRaw(input.config.dataset, undefined, o.logger);
  // The networks are only built and compiled: tfjs's plain backend does it (and prints no banner).
  await initBackend('cpu');
  const exportConfig = input.config.export ?? exportSchema.parse({});
  const net: SearchNetwork = {
    model: input.model,
    inputShape: data.shape,
    numClasses: data.numClasses,
    // An explicit budget holds for the input network too (its factorised pairs may then run fused).
    export: o.maxDepth !== undefined ? { ...exportConfig, maxDepth: o.maxDepth } : exportConfig,
    seed: o.seed ?? 1,
  };
  const { preset: _p, blocks: _b, ...modelRest } = net.model;
  const { maxDepth: _m, ...exportRest } = exportConfig;
  const fp = fingerprint(modelRest, net.inputShape, net.numClasses, exportRest, net.seed, COMPILER_VERSION, MEASURED_VERSION);
  const measured = await MeasuredNetworks.open(join(o.outDir, 'measured.json'), fp, o.logger);
  let compiled = 0;
  const measureIn = async (n: SearchNetwork, blocks: BlockSpec[]): Promise<Measurement> => {
    const key = MeasuredNetworks.key(n.export.maxDepth, blocks);
    const hit = measured.get(key);
    if (hit) return hit;
    const t0 = performance.now();
    const m = measureNetwork(n, blocks);
    compiled++;
    o.logger.info(`search hemet: compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await measured.set(key, m);
    return m;
  };

  // The input network bounds the budget: every network the search keeps stays within it, so it must start there.
  const first = await measureIn(net, input.blocks);
  if (!('figures' in first)) throw new UserError(`${o.config}: the input network does not compile: ${first.error}`);
  const budget = { maxDepth: o.maxDepth ?? first.figures.depth, ...(o.maxN !== undefined ? { maxN: o.maxN } : {}) };
  const out = outsideBudget(first, budget);
  if (out) {
    const flag = out.startsWith('needs N') ? '--max-n' : '--max-depth';
    throw new UserError(
      `${flag}: the input network (${o.config}) ${out.replace('raises depth to', 'has depth')}: the greedy search never leaves the budget, so the input must be within it; raise ${flag} or start from a smaller network`,
    );
  }
  // Every network is compiled within the depth budget; the input's cheapest plan is within it already.
  const searchNet: SearchNetwork = { ...net, export: { ...exportConfig, maxDepth: budget.maxDepth } };
  await measured.set(MeasuredNetworks.key(budget.maxDepth, input.blocks), first);
  await assertWritableDir(o.outDir, '--out');
  measured.saving = true;
  await measured.save();

  const outcome = await greedySearch({
    blocks: input.blocks,
    inChannels: net.inputShape[2],
    budget,
    measure: (blocks) => measureIn(searchNet, blocks),
    progress: (m) => o.logger.info(m),
  });
  const command = commandText(o);
  const configFile = `${name}.yaml`;
  const cut = 1 - outcome.result.figures.cost / outcome.start.figures.cost;
  const written = writtenConfig(input.raw, {
    name,
    blocks: outcome.result.blocks,
    maxDepth: budget.maxDepth,
    outSets: o.outSets ?? [],
    where: o.config,
    logger: o.logger,
  });
  const files = { json: join(o.outDir, 'search.json'), markdown: join(o.outDir, 'search.md'), config: join(o.outDir, configFile) };
  await writeFileAtomic(files.config, writtenYaml(written, { command, outcome }));
  await writeFileAtomic(files.markdown, searchMarkdown(outcome, { command, source: o.config }));
  await writeJsonAtomic(files.json, {
    method: 'hemet',
    command,
    source: { config: o.config, ...(o.variant !== undefined ? { variant: o.variant } : {}) },
    network: { model: modelRest, inputShape: net.inputShape, numClasses: net.numClasses, export: searchNet.export, seed: net.seed },
    budget: { ...budget, maxDepthFrom: o.maxDepth === undefined ? 'the input network' : '--max-depth' },
    candidateRule: CANDIDATE_RULE,
    start: outcome.start,
    blocks: outcome.steps,
    result: { ...outcome.result, estimatedLatencyCut: +cut.toFixed(4), config: configFile },
    networks: outcome.networks,
  });
  o.logger.info(
    `search hemet: ${outcome.result.blocks.length} blocks, depth ${outcome.start.figures.depth} → ${outcome.result.figures.depth}, ` +
      `cost ${Math.round(outcome.start.figures.cost)} → ${Math.round(outcome.result.figures.cost)} (${(100 * cut).toFixed(1)}% less); ${files.config}`,
  );
  return { outcome, dir: o.outDir, files, compiled };
}
