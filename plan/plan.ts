import type { HeParams } from './params.js';
import type { Layout } from './layout.js';

/**
 * The HE plan: one object that is counted statically (plan/cost), run on the
 * slot simulator and run under CKKS (plan/interpreter) — the same kernels,
 * so counts and semantics cannot drift. Slot vectors are dense Float64Arrays
 * of length `slots`.
 */
/** One output ciphertext of a linear step: y = Σ_g rot( Σ_terms diag ⊙ rot(x_input, baby), g ). */
export interface LinearOutput {
  /** Diagonals are stored pre-rotated by -giant. */
  giants: { giant: number; terms: { input: number; baby: number; diag: Float64Array }[] }[];
  /** Added (at the products' scale) before rescaling, pre-rotated like the first giant's diagonals. */
  bias?: Float64Array;
}

export interface LinearStep {
  kind: 'linear';
  name: string;
  /** One entry per output ciphertext. Baby rotations of each input are shared by all outputs. */
  outputs: LinearOutput[];
  /** After rescaling: z += rot(z, s) for each s (sums partial rows, replicates dense outputs). */
  rotateSum: number[];
  /**
   * A residual input: the output of plan step `step` (−1: the plan input),
   * mod-switched down to this step's level, is appended to the inputs, so
   * term inputs ≥ the previous step's ciphertext count index into it.
   * `cts`: its ciphertext count (each is mod-switched once). `layers`: the
   * weight layers of the residual path (a shortcut projection), if any.
   */
  skip?: { step: number; cts: number; layers?: string[] };
  /**
   * Present on the steps that compute the linear maps of the network, one per
   * map in order (absent on steps that only move data: replicate, rows): the
   * model's weight layers (conv, dense) whose weights the step holds, batch
   * norm and pooling folded in; two or more when layers compose with no
   * activation between them, none for a map of pooling alone.
   */
  layers?: string[];
  out: Layout;
}

export interface SquareStep {
  kind: 'square';
  name: string;
  /**
   * y² + linear·y instead of y² (a quadratic activation too close to linear
   * for HEMET's merge into one square, see export/lower): the plaintext
   * product by the constant is added before the one rescale, so the step
   * still consumes one level.
   */
  linear?: number;
  out: Layout;
}

/**
 * Sum pooling by rotations, with no multiplication and no level: per
 * ciphertext, for each stage x ← Σ_r rot(x, r) (r = 0 is x itself). Stages
 * [[0, xStride], [0, yStride]] sum a 2×2 window into its top-left slot; the
 * output layout keeps the input's grid (strided), so the next layer reads it
 * in place and the window's 1/k² is folded into that layer's weights.
 */
export interface PoolStep {
  kind: 'pool';
  name: string;
  stages: number[][];
  out: Layout;
}

/**
 * Masked refresh (a network deeper than the modulus chain): the server adds
 * a random mask r (uniform in ±2^maskBits per slot) to each ciphertext of
 * the current tensor and of the earlier tensors still to be read
 * (`tensors`: their steps and ciphertext counts); the client decrypts,
 * re-encrypts at the top level and returns them; the server subtracts r.
 * The client sees only activation + r. Costs one round trip, no level.
 */
export interface RefreshStep {
  kind: 'refresh';
  name: string;
  tensors: { step: number; cts: number }[];
  out: Layout;
}

export type PlanStep = LinearStep | SquareStep | PoolStep | RefreshStep;

/** Linear maps and squares rescale once; pooling only rotates and adds; a refresh restores the top level. */
export const consumesLevel = (st: PlanStep) => st.kind === 'linear' || st.kind === 'square';

/**
 * Tile-tensor packing of a fully-connected plan: t1×t2 tiles (t1·t2 = slots);
 * linear map i reads its input along the outer dimension r when i and
 * `first` agree in parity ('outer' first: maps 0, 2, 4, …), else along c.
 */
export interface TileShape {
  t1: number;
  t2: number;
  first: 'outer' | 'inner';
  /** A CNN tiles only its dense layers after the first: the index of the first tiled linear map (absent: 0, all). */
  from?: number;
  /**
   * The first tiled map reads the convolutions' output (export.tileFirstDense): a `rows` step before it masks each
   * row of t2 slots of the conv layout into a ciphertext of its own and copies it along r, so each such row is one
   * input tile (element at the row's column, copied in every row); the elements of a row are fixed by the conv layout.
   */
  convRows?: boolean;
  /**
   * HE-PEx permutation of the network's boundary (set by tile pruning with
   * permute): input element i is packed at position inputOrder[i], output o
   * is computed at position outputOrder[o]. The model is unchanged; the
   * client packs and reads by the layouts' slotOf, which include the orders.
   */
  inputOrder?: number[];
  outputOrder?: number[];
}

export interface Plan {
  formatVersion: 1;
  params: HeParams;
  /** The channel block geometry the compiler chose (pruning aligns its sub-blocks with it). */
  channelBlocks?: 'tight' | 'pow2' | 'mux';
  /** How channels of tensors read by grouped convolutions are ordered (present when the network has grouped convolutions). */
  groupOrder?: 'interleaved' | 'contiguous';
  /** Present when dense layers are packed as tile tensors (pruning aligns tiles with it). */
  tiles?: TileShape;
  /** Refresh masks are uniform in ±2^maskBits (present when the plan has refresh steps). */
  refresh?: { maskBits: number };
  slots: number;
  /** How the client packs one input: element i of the HWC tensor at in.slotOf[i] (and its copies). */
  input: Layout;
  /** Extra copies of the input at these slot offsets within its ciphertext (one per channel block of the first convolution). */
  inputCopies: number[];
  steps: PlanStep[];
  /** Where the client reads each output; −1: a constant output (all its weights pruned), its value in outputConstants. */
  output: Layout;
  outputConstants?: Record<number, number>;
  /**
   * Baby-step rotations of the input the client performs in the clear before
   * encrypting (export.clientRotations): for each step r here, every input
   * ciphertext is also sent rotated by r, and the first linear step reads
   * those copies instead of rotating (at the top level, where rotations cost
   * most). Costs the client one encryption and one upload per copy.
   */
  clientRotations?: number[];
  /**
   * Galois keys when not one per rotation step (key memory budget): each
   * rotation is composed of these (see plan/rotation-keys). Absent: one key per step.
   */
  rotationKeys?: number[];
  /**
   * Factorised pairs, in network order: two convolutions with no activation
   * between, FFConv's d×d and 1×1 halves or a mobile block's depthwise and
   * pointwise convolutions (`layers`: the weight layers of the pair's two
   * maps, first then second). `step`: the linear step that computes the
   * second on its own after the first's step (fused: false), or both
   * composed into that one step (fused: true), as the cost model chose;
   * channelPerCiphertext: the split second step reads (`reads`), or reads
   * and writes (`both`), one channel per ciphertext (FFConv's ConvPack).
   * Absent without factorised pairs.
   */
  factorized?: { step: string; fused: boolean; channelPerCiphertext?: 'reads' | 'both'; layers?: string[] }[];
}

/** What a client needs of a plan to pack inputs and read outputs (no weights). */
export type ClientLayout = Pick<Plan, 'slots' | 'input' | 'inputCopies' | 'clientRotations' | 'output' | 'outputConstants'>;

/**
 * Which baby rotations of step i the client supplies: the plan input's
 * (term input < plan.input.cts) by a step in plan.clientRotations, in the
 * first step only. The server neither performs them nor needs their keys.
 */
export function clientRotated(plan: Plan, i: number): { inputs: number; steps: ReadonlySet<number> } | undefined {
  return i === 0 && plan.clientRotations?.length ? { inputs: plan.input.cts, steps: new Set(plan.clientRotations) } : undefined;
}

/** Ciphertexts the client sends per input: the packed input and one rotated copy of it per client rotation. */
export const sentCiphertexts = (plan: Pick<Plan, 'input' | 'clientRotations'>) =>
  plan.input.cts * (1 + (plan.clientRotations?.length ?? 0));

/** Levels (rescales) the plan consumes: one per linear step and per square. */
export const planDepth = (plan: Plan) => plan.steps.filter(consumesLevel).length;

/** The level each step runs at (its input's level), counting down from `top`. */
export function stepLevels(plan: Plan, top = plan.params.coeffModulusBits.length - 2): number[] {
  let level = top;
  return plan.steps.map((st) => {
    if (st.kind === 'refresh') level = top;
    const l = level;
    if (consumesLevel(st)) level--;
    return l;
  });
}
