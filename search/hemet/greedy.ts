import { blockChannels, blockName, type BlockSpec } from '../../train/zoo/blocks.js';
import { blockCandidates, normalized, type BlockCandidate } from './candidates.js';
import type { Measurement, NetworkFigures } from './measure.js';

/**
 * HEMET's search (Lou & Jiang, ICML 2021): block by block, in network
 * order, each block's candidates (candidates.ts) are put in its place in
 * the network chosen so far and the whole network compiled; the block
 * becomes the candidate with the lowest cost-model latency whose network
 * stays within the budget (depth, and so N and the modulus chain; N).
 * A tie keeps the block as it is, and the block as it is always fits (the
 * network so far does), so the network never leaves the budget and its
 * latency never rises. Greedy: a block is never revisited.
 */
export interface SearchBudget {
  maxDepth: number;
  maxN?: number;
}

export interface CandidateRecord extends BlockCandidate {
  /** The block's name with this candidate in its place (fire2, mobile2, …). */
  block: string;
  /** The whole network's figures with this candidate, when it compiles. */
  figures?: NetworkFigures;
  /** Why it does not compile, and the depth it would need when that is why. */
  error?: string;
  depth?: number;
  status: 'chosen' | 'rejected';
  reason: string;
}

export interface BlockRecord {
  position: number;
  /** The block's name before the search's choice. */
  block: string;
  inChannels: number;
  outChannels: number;
  candidates: CandidateRecord[];
  chosen: string;
}

export interface SearchOutcome {
  budget: SearchBudget;
  start: { blocks: BlockSpec[]; figures: NetworkFigures };
  steps: BlockRecord[];
  result: { blocks: BlockSpec[]; figures: NetworkFigures };
  /** Distinct networks compiled. */
  networks: number;
}

export interface GreedyOptions {
  blocks: BlockSpec[];
  /** Channels of the network's input (the first block's C_in). */
  inChannels: number;
  budget: SearchBudget;
  /** Compiles a whole network (measure.ts, or a cache in front of it). */
  measure: (blocks: BlockSpec[]) => Promise<Measurement>;
  progress?: (message: string) => void;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const costText = (f: NetworkFigures) => `cost ${fmt(f.cost)} (${f.estimatedSeconds} s)`;

/** Why a measured network is outside the budget, or undefined when it is within. */
export function outsideBudget(m: Measurement, b: SearchBudget): string | undefined {
  if (!('figures' in m)) {
    if (m.depth === undefined) return `does not compile: ${m.error}`;
    const why = 'no 128-bit-secure CKKS parameters hold it';
    return m.depth > b.maxDepth ? `raises depth to ${m.depth} > ${b.maxDepth} (${why})` : `needs depth ${m.depth}: ${why}`;
  }
  const f = m.figures;
  if (f.depth > b.maxDepth) return `raises depth to ${f.depth} > ${b.maxDepth}`;
  if (b.maxN !== undefined && f.polyModulusDegree > b.maxN) return `needs N=${f.polyModulusDegree} > ${b.maxN}`;
  return undefined;
}

export async function greedySearch(o: GreedyOptions): Promise<SearchOutcome> {
  const memo = new Map<string, Measurement>();
  const measure = async (blocks: BlockSpec[]) => {
    const key = JSON.stringify(blocks);
    let m = memo.get(key);
    if (!m) {
      m = await o.measure(blocks);
      memo.set(key, m);
    }
    return m;
  };
  let chosen = o.blocks.map(normalized);
  const first = await measure(chosen);
  if (!('figures' in first)) throw new Error(`greedySearch: the starting network does not compile: ${first.error}`);
  const start = { blocks: chosen, figures: first.figures };
  const steps: BlockRecord[] = [];
  let inChannels = o.inChannels;
  for (let i = 0; i < chosen.length; i++) {
    const here = blockName(chosen[i].kind, i);
    const records: CandidateRecord[] = [];
    for (const c of blockCandidates(chosen[i], inChannels)) {
      const m = await measure(chosen.map((b, j) => (j === i ? c.spec : b)));
      const name = blockName(c.spec.kind, i);
      const record: CandidateRecord = { ...c, block: name, status: 'rejected', reason: '', ...measurementFields(m) };
      records.push(record);
      o.progress?.(
        `search hemet: block ${i + 1}/${chosen.length} ${here}: ${c.current ? 'as it is' : `${c.kind} ${name}`}: ` +
          (record.figures
            ? `depth ${record.figures.depth}, N=${record.figures.polyModulusDegree}, ${costText(record.figures)}`
            : (outsideBudget(m, o.budget) ?? record.error)),
      );
    }
    const pick = choose(records, o.budget);
    chosen = chosen.map((b, j) => (j === i ? pick.spec : b));
    inChannels = blockChannels(pick.spec);
    steps.push({
      position: i + 1,
      block: here,
      inChannels: records[0].widths.in,
      outChannels: records[0].widths.out,
      candidates: records,
      chosen: pick.block,
    });
  }
  const last = await measure(chosen);
  if (!('figures' in last)) throw new Error(`greedySearch: the chosen network does not compile: ${last.error}`);
  return { budget: o.budget, start, steps, result: { blocks: chosen, figures: last.figures }, networks: memo.size };
}

function measurementFields(m: Measurement): Pick<CandidateRecord, 'figures' | 'error' | 'depth'> {
  if ('figures' in m) return { figures: m.figures };
  return { error: m.error, ...(m.depth !== undefined ? { depth: m.depth } : {}) };
}

/** The block's choice, every record's status and reason set. */
function choose(records: CandidateRecord[], budget: SearchBudget): CandidateRecord {
  const current = records.find((r) => r.current)!;
  const outside = (r: CandidateRecord) => outsideBudget(r.figures ? { figures: r.figures } : { error: r.error!, depth: r.depth }, budget);
  // Strictly cheaper only: a tie keeps the block as it is (listed first), or the first listed.
  let pick = current;
  for (const r of records) if (!outside(r) && r.figures!.cost < pick.figures!.cost) pick = r;
  const base = current.figures!;
  for (const r of records) {
    const out = outside(r);
    if (r === pick) {
      r.status = 'chosen';
      const cut = (1 - r.figures!.cost / base.cost) * 100;
      r.reason = r.current
        ? 'the block as it is: no candidate within the budget is cheaper'
        : `cheapest within the budget (depth ${r.figures!.depth} ≤ ${budget.maxDepth}, N=${r.figures!.polyModulusDegree}): ` +
          `${costText(r.figures!)}, ${cut.toFixed(1)}% below the block as it is (${fmt(base.cost)})`;
    } else if (out) {
      r.reason = out;
    } else if (r.figures!.cost === pick.figures!.cost) {
      r.reason = `as cheap as ${pick.block} (${costText(r.figures!)}): a tie keeps ${pick.current ? 'the block as it is' : 'the first listed'}`;
    } else {
      r.reason = `within the budget (depth ${r.figures!.depth}, N=${r.figures!.polyModulusDegree}) but slower: ${costText(r.figures!)} against ${fmt(pick.figures!.cost)} for ${pick.block}`;
    }
  }
  return pick;
}
