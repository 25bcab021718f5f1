import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compileChain } from '../../export/compile.js';
import { lowerModel } from '../../export/lower.js';
import { compileOptions, exportSchema } from '../../export/options.js';
import { planCiphertexts, planCounts } from '../../plan/cost.js';
import type { Plan } from '../../plan/plan.js';
import { galoisSteps } from '../../plan/rotations.js';
import { chooseLayers } from '../../prune/layer-choice.js';
import { lowRankModel, targetRank } from '../../prune/lowrank.js';
import { applyMasks, kernelValues } from '../../prune/masks.js';
import { selectMagnitude, selectSubBlocksPerLayer } from '../../prune/select.js';
import { convSubBlocks, denseSubBlocks, residualShortcuts, stepOfLayer } from '../../prune/subblocks.js';
import { tileGrids, boundaryOrders } from '../../prune/tiles.js';
import { tileRound } from '../../prune/tile-rounds.js';
import { resolveRun } from '../../pipeline/load-config.js';
import { expandConfigFile } from '../../pipeline/config-file.js';
import type { PipelineConfig } from '../../pipeline/config-schema.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel } from '../../train/zoo/registry.js';

/**
 * The compiled plans of every shipped run (each variant of a config with
 * variants is one, keyed `<directory>/<run name>`), as op counts and a hash, so a
 * restructuring of the compiler can prove it compiles the same plans. Models
 * are the configs' own architectures with seeded initial weights (no
 * training: the plan's structure, not accuracy, is what is recorded); a
 * config with a prune section also records one data-free pruned plan
 * (magnitude scores at the config's final target, no fine-tuning).
 */
export interface PlanRecord {
  counts: { rotate: number; mulPlain: number; mul: number; rescale: number; plaintexts: number; ciphertexts: number; galoisKeys: number };
  params: { n: number; primes: number[] };
  hash: string;
}

/** Dataset shapes without loading data: every shipped config uses one of these. */
const SHAPES: Record<string, { shape: [number, number, number]; numClasses: number }> = {
  mnist: { shape: [28, 28, 1], numClasses: 10 },
  'fashion-mnist': { shape: [28, 28, 1], numClasses: 10 },
  cifar10: { shape: [32, 32, 3], numClasses: 10 },
};

/** One run of a shipped config: `key` is `<directory under root>/<run name>` (the golden's key, whatever file the run is in). */
export interface ConfigRun {
  key: string;
  file: string;
  config: PipelineConfig;
}

export function configRuns(root: string): ConfigRun[] {
  return configFiles(root).flatMap((file) =>
    expandConfigFile(file).map((run) => {
      const config = resolveRun(run);
      return { key: `${relative(root, join(file, '..'))}/${config.name}`, file, config };
    }),
  );
}

export function configFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.yaml')) out.push(join(d, e.name));
    }
  };
  walk(root);
  return out.map((f) => relative(process.cwd(), f));
}

/**
 * A stable hash of everything the plan computes: keys sorted (construction
 * order is not meaning), typed arrays by their bytes, streamed (a CIFAR-10
 * plan's diagonals are far past the longest string JSON can build). The
 * steps' layer stamps (`layers`: which model layers a step came from) are
 * provenance, not computation, and are left out; the pruned records check
 * them, since sub-block and tile pruning find their layers by them.
 */
export function planHash(plan: Plan): string {
  const h = createHash('sha256');
  const feed = (v: unknown): void => {
    if (ArrayBuffer.isView(v)) {
      h.update(`<${v.constructor.name}:${v.byteLength}>`);
      h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      return;
    }
    if (Array.isArray(v)) {
      h.update('[');
      v.forEach((x) => {
        feed(x);
        h.update(',');
      });
      h.update(']');
      return;
    }
    if (v !== null && typeof v === 'object') {
      h.update('{');
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) {
          h.update(JSON.stringify(k) + ':');
          feed(x);
          h.update(',');
        }
      }
      h.update('}');
      return;
    }
    h.update(JSON.stringify(v) ?? 'undefined');
  };
  feed(withoutStamps(plan));
  return h.digest('hex').slice(0, 16);
}

/** The plan without its steps' layer stamps (LinearStep.layers, skip.layers). */
function withoutStamps(plan: Plan): Plan {
  return {
    ...plan,
    steps: plan.steps.map((st) => {
      if (st.kind !== 'linear') return st;
      const { layers: _l, skip, ...rest } = st;
      if (!skip) return rest;
      const { layers: _s, ...bare } = skip;
      return { ...rest, skip: bare };
    }),
  };
}

export function planRecord(plan: Plan): PlanRecord {
  const c = planCounts(plan);
  return {
    counts: {
      rotate: c.total.rotate,
      mulPlain: c.total.mulPlain,
      mul: c.total.mul,
      rescale: c.total.rescale,
      plaintexts: c.plaintexts,
      ciphertexts: planCiphertexts(plan),
      galoisKeys: galoisSteps(plan).length,
    },
    params: { n: plan.params.polyModulusDegree, primes: plan.params.coeffModulusBits },
    hash: planHash(plan),
  };
}

/** The dense plan and, for a config that prunes, a data-free pruned plan. */
export async function recordConfig(run: Pick<ConfigRun, 'key' | 'config'>): Promise<Record<string, PlanRecord>> {
  const { key: file, config: cfg } = run;
  if (!cfg.model || !cfg.dataset) return {};
  const ds = SHAPES[cfg.dataset.name];
  if (!ds) throw new Error(`${file}: no recorded shape for dataset ${cfg.dataset.name}`);
  const e = cfg.export ?? exportSchema.parse({});
  const model = withSeededRandom(cfg.train?.seed ?? 42, () => buildModel(cfg.model!, { inputShape: ds.shape, numClasses: ds.numClasses }));
  const compile = (like?: Plan) =>
    compileChain(lowerModel(model, { maxQuadraticShift: e.maxQuadraticShift }), {
      ...compileOptions(e),
      ...(like?.channelBlocks ? { channelBlocks: like.channelBlocks } : {}),
      ...(like?.tiles ? { tiles: like.tiles } : {}),
    });
  try {
    const dense = compile();
    const out: Record<string, PlanRecord> = { dense: planRecord(dense) };
    const p = cfg.prune;
    if (p?.method === 'lowrank') {
      // The factorised model at the final ranks (SVD of the seeded weights), compiled with its own geometry as the prune stage does.
      const { names, ranks } = chooseLayers(model, dense, p, file);
      const low = lowRankModel(model, new Map(names.map((n) => [n, Math.min(targetRank(p, n), ranks!.get(n)!)]))).model;
      try {
        out.pruned = planRecord(compileChain(lowerModel(low, { maxQuadraticShift: e.maxQuadraticShift }), compileOptions(e)));
      } finally {
        low.dispose();
      }
      return out;
    }
    if (!p || p.sparsity === undefined) return out;
    if (p.method === 'tile' || p.method === 'neuron') {
      const { masks, grids } = tileRound(model, tileGrids(model, dense), {
        method: p.method,
        target: p.sparsity,
        permute: p.permute,
        expand: p.expand,
        permuteBoundary: p.permuteBoundary,
      });
      applyMasks(model, masks);
      out.pruned = planRecord(compile({ ...dense, tiles: dense.tiles && { ...dense.tiles, ...boundaryOrders(grids) } }));
    } else if (p.method === 'subblock' || p.method === 'magnitude') {
      const shortcuts = residualShortcuts(dense);
      const layers = model.layers.filter((l) => (l instanceof GroupedConv2D || l.getClassName() === 'Dense') && !shortcuts.has(l.name));
      const convs = layers.filter((l) => l instanceof GroupedConv2D).map((l) => l.name);
      const names = p.layers ?? (convs.length ? convs : layers.map((l) => l.name));
      const kernels = new Map(names.map((n) => [n, kernelValues(model, n)]));
      let masks;
      if (p.method === 'subblock') {
        const stepOf = stepOfLayer(dense, names);
        const blocks = names.map((n) => {
          const l = model.getLayer(n);
          return l instanceof GroupedConv2D ? convSubBlocks(l, dense, stepOf.get(n)!) : denseSubBlocks(l, dense, stepOf.get(n)!);
        });
        masks = selectSubBlocksPerLayer(blocks, kernels, p.sparsity);
      } else masks = selectMagnitude(kernels, p.sparsity, { perLayer: true });
      applyMasks(model, masks);
      out.pruned = planRecord(compile(dense));
    }
    return out;
  } finally {
    model.dispose();
  }
}
