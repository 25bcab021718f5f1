import YAML from 'yaml';
import { UserError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { blockText, primesText } from '../search/hemet/report.js';
import type { SearchOutcome } from '../search/hemet/greedy.js';
import type { BlockSpec } from '../train/zoo/blocks.js';
import type { Raw } from './config-file.js';
import { configSchema } from './config-schema.js';
import { applyOverrides, formatIssues } from './load-config.js';

/**
 * The config a search writes: the input's (its extends: followed, its
 * variant merged, its --set applied) with the chosen blocks as model.blocks
 * and a name of its own. What names the input network's layers or its
 * table goes: prune (its layers are the input's), reproduce, and
 * train.from / train.init (a model trained as the input network is not
 * this one). export.maxDepth becomes the search's depth budget. --out-set
 * keys then apply, and the whole is validated.
 */
export function writtenConfig(
  raw: Raw,
  o: { name: string; blocks: BlockSpec[]; maxDepth: number; outSets: string[]; where: string; logger?: Logger },
): Raw {
  const out: Raw = { name: o.name };
  // The input's sections in the input's order.
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'name' || key === 'reproduce' || key === 'variants') continue;
    if (key === 'prune') {
      o.logger?.warn("search hemet: the written config has no prune section (the input's names the input network's layers)");
    } else if (key === 'model') {
      const { preset: _p, blocks: _b, ...model } = value as Raw;
      out.model = { ...model, blocks: o.blocks };
    } else if (key === 'train') {
      const { from, init, ...train } = value as Raw;
      if (from !== undefined || init !== undefined)
        o.logger?.warn(
          `search hemet: the written config trains from scratch (train.${from !== undefined ? 'from' : 'init'} of the input is another network's model)`,
        );
      out.train = train;
    } else if (key !== 'export') {
      out[key] = value;
    }
    // The depth budget goes with the network: the export then compiles the plan the search measured.
    if (key === 'export' || (key === 'model' && raw.export === undefined))
      out.export = { ...((raw.export ?? {}) as Raw), maxDepth: o.maxDepth };
  }
  applyOverrides(out, o.outSets);
  const parsed = configSchema.safeParse(out);
  if (!parsed.success)
    throw new UserError(
      formatIssues(`the config the search would write (from ${o.where}, --name and --out-set)`, out, parsed.error.issues),
    );
  return out;
}

/** The written config as YAML, headed by what wrote it and what it is; each block on one line. */
export function writtenYaml(config: Raw, o: { command: string; outcome: SearchOutcome }): string {
  const { start, result, budget } = o.outcome;
  const f = result.figures;
  const cut = (1 - f.cost / start.figures.cost) * 100;
  const doc = new YAML.Document(config);
  // Each block on one line, and lists of values ([32, 32]) inline.
  const blocks = doc.getIn(['model', 'blocks']);
  if (YAML.isSeq(blocks)) for (const b of blocks.items) if (YAML.isMap(b)) b.flow = true;
  YAML.visit(doc, {
    Seq(_, seq) {
      if (seq.items.every((i) => YAML.isScalar(i))) seq.flow = true;
    },
  });
  doc.commentBefore = [
    ` Written by \`${o.command}\``,
    ' (re-run it rather than edit this file; the search.json it writes beside it holds every candidate it compiled).',
    ` HEMET's greedy block search, depth budget ${budget.maxDepth}${budget.maxN ? `, N ≤ ${budget.maxN}` : ''}:`,
    ...result.blocks.map((b, i) => {
      const was = start.blocks[i];
      return `   ${i + 1}. ${blockText(b)}${JSON.stringify(b) === JSON.stringify(was) ? ' (kept)' : ` (was ${blockText(was)})`}`;
    }),
    ` Depth ${start.figures.depth} → ${f.depth}, N=${f.polyModulusDegree}, primes ${primesText(f)};`,
    ` cost model ${Math.round(start.figures.cost)} → ${Math.round(f.cost)} (${cut.toFixed(1)}% less; ${f.estimatedSeconds} s per image estimated).`,
  ].join('\n');
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
