import type { BlockSpec } from '../../train/zoo/blocks.js';
import type { CandidateRecord, SearchOutcome } from './greedy.js';
import type { NetworkFigures } from './measure.js';

/** The search as Markdown: every block's candidates with their whole network's figures, and the choice. */

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function blockText(b: BlockSpec): string {
  const pool = b.pool ? ' + pool' : '';
  if (b.kind === 'conv') return `conv ${b.kernelSize}x${b.kernelSize} ${b.filters}${pool}`;
  if (b.kind === 'fire') return `fire ${b.squeeze}/${b.expand}+${b.expand}${pool}`;
  return `mobile ${b.filters}${b.middleActivation ? '' : ' (no middle act.)'}${pool}`;
}

export const primesText = (f: NetworkFigures) => `${f.coeffModulusBits.length} (${f.coeffModulusBits.join(', ')})`;

function row(r: CandidateRecord): string {
  const f = r.figures;
  const cells = f
    ? [
        f.depth,
        f.polyModulusDegree,
        f.coeffModulusBits.length,
        fmt(f.rotations),
        fmt(f.plaintextMultiplications),
        fmt(f.cost),
        f.estimatedSeconds,
      ]
    : [r.depth ?? '–', '–', '–', '–', '–', '–', '–'];
  const name = `${r.block}${r.current ? ' (as it is)' : ''}`;
  return `| ${name} | ${blockText(r.spec)} | ${cells.join(' | ')} | **${r.status}** | ${r.reason} |`;
}

export function searchMarkdown(s: SearchOutcome, o: { command: string; source: string }): string {
  const { start, result } = s;
  const cut = (1 - result.figures.cost / start.figures.cost) * 100;
  const line = (label: string, f: NetworkFigures, blocks: BlockSpec[]) =>
    `- ${label}: ${blocks.map(blockText).join(' → ')}; depth ${f.depth}, N=${f.polyModulusDegree}, primes ${primesText(f)}, ` +
    `${fmt(f.rotations)} rotations, ${fmt(f.plaintextMultiplications)} plaintext mults, cost ${fmt(f.cost)} (${f.estimatedSeconds} s)`;
  const head =
    `# HEMET search: ${o.source}\n\n` +
    `\`${o.command}\`\n\n` +
    `Budget: depth ≤ ${s.budget.maxDepth}${s.budget.maxN ? `, N ≤ ${s.budget.maxN}` : ''}. ` +
    `${s.networks} networks compiled (random weights: a plan's cost depends on structure, not values). ` +
    "Each row is the whole network with that candidate in the block's place; cost is the cost model's (plan/cost relativeCost), seconds its single-thread server estimate.\n\n" +
    `${line('input', start.figures, start.blocks)}\n${line('chosen', result.figures, result.blocks)}\n` +
    `- estimated latency ${cut >= 0 ? `${cut.toFixed(1)}% below` : `${(-cut).toFixed(1)}% above`} the input's\n`;
  const blocks = s.steps.map(
    (b) =>
      `\n## Block ${b.position}: ${b.block} (${b.inChannels} → ${b.outChannels} channels) → ${b.chosen}\n\n` +
      '| candidate | block | depth | N | primes | rotations | plaintext mults | cost | est. s | status | why |\n' +
      '|---|---|---|---|---|---|---|---|---|---|---|\n' +
      b.candidates.map(row).join('\n') +
      '\n',
  );
  return head + blocks.join('');
}
