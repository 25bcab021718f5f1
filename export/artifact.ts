import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { replaceDirAtomic } from '../common/atomic-write.js';
import { UserError } from '../common/errors.js';
import { planCounts, planMemory } from '../plan/cost.js';
import type { Layout } from '../plan/layout.js';
import { planDepth, stepLevels, type Plan, type PlanStep } from '../plan/plan.js';
import { galoisSteps, rotationSteps } from '../plan/rotations.js';
import { blockLevels } from '../plan/provenance.js';
import { kindOf, STEP_KINDS } from '../plan/steps/table.js';

/**
 * The export directory: manifest.json (versioned, self-checksummed: params,
 * layouts, steps with their op counts and levels, rotation steps) and
 * weights.bin (every plaintext operand, sparse: int32 slot indices then
 * float32 values; layouts as int32 slot maps). It loads without tfjs. Any
 * truncated or altered byte in either file is an error, never a wrong answer.
 * No key material is ever written here: keys belong to the client.
 */
export const FORMAT = 'heprune-plan';
export const FORMAT_VERSION = 6;
/** Version 2 is version 3 without pool steps, 3 is 4 without tile metadata and memory totals, 4 is 5 without client rotations, 5 is 6 without checksums of the other files: still read. */
const READABLE_VERSIONS = [2, 3, 4, 5, 6];

const ref = z.object({ offset: z.number().int().nonnegative(), count: z.number().int().nonnegative() });
const layoutRef = z.object({
  shape: z.array(z.number().int().positive()),
  cts: z.number().int().positive(),
  period: z.number().int().positive().optional(),
  desc: z.string(),
  slots: ref,
});
const operandRef = z.object({ indices: ref, values: ref });
type OperandRef = z.infer<typeof operandRef>;
const stepBase = { name: z.string(), levelIn: z.number().int(), out: layoutRef, counts: z.record(z.string(), z.number()) };
const stepEntry = <K extends PlanStep['kind']>(kind: K) =>
  z.object({ kind: z.literal(kind), ...stepBase, ...STEP_KINDS[kind].artifact.fields(operandRef) });
/** One entry per step kind, each with its kind's fields (plan/steps). */
const stepSchema = z.discriminatedUnion('kind', [stepEntry('linear'), stepEntry('square'), stepEntry('pool'), stepEntry('refresh')]);
export const manifestSchema = z
  .object({
    format: z.literal(FORMAT),
    formatVersion: z
      .number()
      .int()
      .refine((v) => READABLE_VERSIONS.includes(v)),
    createdAt: z.string(),
    params: z.object({ polyModulusDegree: z.number().int(), coeffModulusBits: z.array(z.number().int()), scaleBits: z.number().int() }),
    refresh: z.object({ maskBits: z.number().int().nonnegative() }).optional(),
    tiles: z
      .object({
        t1: z.number().int().positive(),
        t2: z.number().int().positive(),
        first: z.enum(['outer', 'inner']),
        from: z.number().int().nonnegative().optional(),
        convRows: z.boolean().optional(),
      })
      .optional(),
    channelBlocks: z.enum(['tight', 'pow2', 'mux']).optional(),
    groupOrder: z.enum(['interleaved', 'contiguous']).optional(),
    slots: z.number().int().positive(),
    input: layoutRef,
    inputCopies: z.array(z.number().int()),
    /** Rotations of the input the client sends as extra ciphertexts (plan.clientRotations). */
    clientRotations: z.array(z.number().int()).optional(),
    /** Factorised pairs (FFConv halves, mobile blocks): each one's second step, split or fused, and its layers (plan.factorized). */
    factorized: z
      .array(
        z.object({
          step: z.string(),
          fused: z.boolean(),
          channelPerCiphertext: z.enum(['reads', 'both']).optional(),
          layers: z.array(z.string()).optional(),
        }),
      )
      .optional(),
    output: layoutRef,
    /** Outputs that are constants (slot −1 in output): index → value. */
    outputConstants: z.record(z.string(), z.number()).optional(),
    steps: z.array(stepSchema),
    rotationSteps: z.array(z.number().int()),
    /** The Galois keys to generate (= rotationSteps, or powers of two when rotations are composed). */
    galoisKeySteps: z.array(z.number().int()),
    composedRotations: z.boolean(),
    depth: z.number().int(),
    /** Levels per block of the model (plan/provenance blockLevels), summing to depth; absent for plans without layer stamps. */
    depthPerBlock: z.array(z.object({ block: z.string(), levels: z.number().int() })).optional(),
    totals: z.object({
      counts: z.record(z.string(), z.number()),
      plaintexts: z.number().int(),
      /** planMemory: encoded weight bytes and the peak ciphertext bytes held (absent before version 4). */
      memory: z.object({ plaintextBytes: z.number(), peakCiphertexts: z.number().int(), peakCiphertextBytes: z.number() }).optional(),
    }),
    /** Anything the producer wants to keep with the plan (normalisation, class names, source model). */
    meta: z.record(z.string(), z.unknown()),
    weights: z.object({ file: z.literal('weights.bin'), bytes: z.number().int(), sha256: z.string() }),
    /** Every other file of the export (the plaintext reference model in model/), with its size and checksum. */
    files: z.array(z.object({ path: z.string(), bytes: z.number().int(), sha256: z.string() })).optional(),
    /** sha256 of this manifest with `integrity` removed (canonical JSON). */
    integrity: z.string(),
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;

class Writer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  int32(a: ArrayLike<number>) {
    return this.push(Buffer.from(Int32Array.from(a).buffer), a.length);
  }
  float32(a: ArrayLike<number>) {
    return this.push(Buffer.from(Float32Array.from(a).buffer), a.length);
  }
  private push(b: Buffer, count: number) {
    const offset = this.bytes;
    this.chunks.push(b);
    this.bytes += b.length;
    return { offset, count };
  }
  layout(l: Layout) {
    return { shape: l.shape, cts: l.cts, period: l.period, desc: l.desc, slots: this.int32(l.slotOf) };
  }
  operand(v: Float64Array) {
    const idx: number[] = [];
    for (let i = 0; i < v.length; i++) if (v[i] !== 0) idx.push(i);
    return { indices: this.int32(idx), values: this.float32(idx.map((i) => v[i])) };
  }
  buffer() {
    return Buffer.concat(this.chunks);
  }
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const integrityOf = (m: Omit<Manifest, 'integrity'>) => sha256(JSON.stringify(m));

export function serializePlan(plan: Plan, meta: Record<string, unknown>): { manifest: Manifest; weights: Buffer } {
  const w = new Writer();
  const levels = stepLevels(plan);
  const counts = planCounts(plan);
  const mem = planMemory(plan);
  const steps = plan.steps.map((s: PlanStep, i) => ({
    kind: s.kind,
    name: s.name,
    levelIn: levels[i],
    out: w.layout(s.out),
    counts: counts.perStep[i].counts,
    ...kindOf(s).artifact.write(s, (v) => w.operand(v)),
  }));
  const input = w.layout(plan.input),
    output = w.layout(plan.output);
  const weights = w.buffer();
  const body = {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    params: plan.params,
    ...(plan.refresh ? { refresh: plan.refresh } : {}),
    ...(plan.tiles ? { tiles: plan.tiles } : {}),
    ...(plan.channelBlocks ? { channelBlocks: plan.channelBlocks } : {}),
    ...(plan.groupOrder ? { groupOrder: plan.groupOrder } : {}),
    slots: plan.slots,
    input,
    inputCopies: plan.inputCopies,
    ...(plan.clientRotations ? { clientRotations: plan.clientRotations } : {}),
    ...(plan.factorized ? { factorized: plan.factorized } : {}),
    output,
    ...(plan.outputConstants ? { outputConstants: plan.outputConstants } : {}),
    steps,
    rotationSteps: rotationSteps(plan),
    galoisKeySteps: galoisSteps(plan),
    composedRotations: !!plan.rotationKeys,
    depth: planDepth(plan),
    ...(plan.steps.some((s) => s.kind === 'linear' && s.layers?.length)
      ? { depthPerBlock: blockLevels(plan).map(({ block, levels }) => ({ block, levels })) }
      : {}),
    totals: {
      counts: counts.total,
      plaintexts: counts.plaintexts,
      memory: { plaintextBytes: mem.plaintextBytes, peakCiphertexts: mem.peakCiphertexts, peakCiphertextBytes: mem.peakCiphertextBytes },
    },
    meta,
    weights: { file: 'weights.bin' as const, bytes: weights.length, sha256: sha256(weights) },
  };
  // Round-trip through JSON so the integrity hash is over exactly what is written (undefined keys dropped).
  const canonical = JSON.parse(JSON.stringify(body)) as Omit<Manifest, 'integrity'>;
  return { manifest: { ...canonical, integrity: integrityOf(canonical) }, weights };
}

export async function writeExport(
  dir: string,
  plan: Plan,
  meta: Record<string, unknown>,
  extra?: (tmp: string) => Promise<void>,
): Promise<Manifest> {
  const serialized = serializePlan(plan, meta);
  let manifest = serialized.manifest;
  await replaceDirAtomic(dir, async (tmp) => {
    await writeFile(join(tmp, 'weights.bin'), serialized.weights);
    await extra?.(tmp);
    // The extra files are covered too: an altered reference model would otherwise pass unnoticed.
    const files = await Promise.all(
      (await filesUnder(tmp))
        .filter((f) => f !== 'weights.bin' && f !== 'manifest.json')
        .map(async (path) => {
          const b = await readFile(join(tmp, path));
          return { path, bytes: b.length, sha256: sha256(b) };
        }),
    );
    const { integrity: _i, ...body } = manifest;
    const withFiles = { ...body, files };
    manifest = { ...withFiles, integrity: integrityOf(withFiles) };
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1));
  });
  return manifest;
}

/** Paths of the files under `dir`, relative and sorted. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

export interface LoadedExport {
  plan: Plan;
  manifest: Manifest;
}

/** Reads and verifies the manifest (format, version, schema, integrity). */
async function readManifest(mp: string): Promise<Manifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(mp, 'utf8'));
  } catch (e) {
    throw new UserError(`${mp}: cannot read the export manifest (${(e as Error).message.split('\n')[0]})`);
  }
  const fmt = (raw as { format?: unknown; formatVersion?: unknown }) ?? {};
  if (fmt.format !== FORMAT) throw new UserError(`${mp}: not a heprune plan export (format ${JSON.stringify(fmt.format)})`);
  if (!READABLE_VERSIONS.includes(fmt.formatVersion as number))
    throw new UserError(
      `${mp}: format version ${JSON.stringify(fmt.formatVersion)}, this heprune reads versions ${READABLE_VERSIONS.join(', ')}; re-export the model`,
    );
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new UserError(`${mp}: invalid manifest at ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  // Hash the manifest as read (zod's output reorders keys), minus the integrity field itself.
  const { integrity, ...body } = raw as Manifest;
  if (integrityOf(body) !== integrity)
    throw new UserError(`${mp}: manifest integrity check failed (the file was altered); re-export the model`);
  return parsed.data;
}

/** Reads the packed weights and checks them and every other listed file against the manifest's sizes and checksums. */
async function readVerifiedFiles(dir: string, m: Manifest): Promise<Buffer> {
  const wp = join(dir, m.weights.file);
  let buf: Buffer;
  try {
    buf = await readFile(wp);
  } catch (e) {
    throw new UserError(`${wp}: cannot read packed weights (${(e as Error).message})`);
  }
  if (buf.length !== m.weights.bytes)
    throw new UserError(`${wp}: ${buf.length} bytes, the manifest says ${m.weights.bytes} (truncated or replaced)`);
  if (sha256(buf) !== m.weights.sha256)
    throw new UserError(`${wp}: checksum mismatch (the packed weights were altered); re-export the model`);
  for (const f of m.files ?? []) {
    const fp = join(dir, f.path);
    let b: Buffer;
    try {
      b = await readFile(fp);
    } catch (e) {
      throw new UserError(`${fp}: cannot read a file the export lists (${(e as Error).message.split('\n')[0]}); re-export the model`);
    }
    if (b.length !== f.bytes || sha256(b) !== f.sha256)
      throw new UserError(`${fp}: checksum mismatch (the export's file was altered); re-export the model`);
  }
  return buf;
}

/** Loads and verifies an export directory (no tfjs needed). */
export async function loadExport(dir: string): Promise<LoadedExport> {
  const mp = join(dir, 'manifest.json');
  const m = await readManifest(mp);
  const wp = join(dir, m.weights.file);
  const buf = await readVerifiedFiles(dir, m);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  // Offsets are checked, not trusted: a manifest rewritten with a matching integrity hash could point anywhere.
  const inside = (r: { offset: number; count: number }) => {
    if (r.offset % 4 !== 0 || r.offset + 4 * r.count > ab.byteLength) {
      throw new UserError(
        `${mp}: an operand at byte ${r.offset} (${r.count} values) lies outside ${wp} (${ab.byteLength} bytes): the manifest and the packed weights do not belong together; re-export the model`,
      );
    }
    return r;
  };
  const int32 = (r: { offset: number; count: number }) => {
    inside(r);
    return new Int32Array(ab, r.offset, r.count);
  };
  const float32 = (r: { offset: number; count: number }) => {
    inside(r);
    return new Float32Array(ab, r.offset, r.count);
  };
  const layout = (l: Manifest['input']): Layout => ({
    shape: l.shape,
    cts: l.cts,
    period: l.period,
    desc: l.desc,
    slotOf: Int32Array.from(int32(l.slots)),
  });
  const operand = (o: OperandRef) => {
    const v = new Float64Array(m.slots);
    const idx = int32(o.indices),
      val = float32(o.values);
    for (let i = 0; i < idx.length; i++) v[idx[i]] = val[i];
    return v;
  };
  const steps = m.steps.map((s) => {
    const { kind, name, levelIn: _l, counts: _c, out, ...fields } = s;
    return { kind, name, out: layout(out), ...STEP_KINDS[kind].artifact.read(fields, (ref) => operand(ref as OperandRef)) } as PlanStep;
  });
  const plan: Plan = {
    formatVersion: 1,
    params: m.params,
    ...(m.refresh ? { refresh: m.refresh } : {}),
    ...(m.tiles ? { tiles: m.tiles } : {}),
    ...(m.channelBlocks ? { channelBlocks: m.channelBlocks } : {}),
    ...(m.groupOrder ? { groupOrder: m.groupOrder } : {}),
    slots: m.slots,
    input: layout(m.input),
    inputCopies: m.inputCopies,
    ...(m.clientRotations ? { clientRotations: m.clientRotations } : {}),
    ...(m.factorized ? { factorized: m.factorized } : {}),
    steps,
    output: layout(m.output),
    ...(m.outputConstants
      ? { outputConstants: Object.fromEntries(Object.entries(m.outputConstants).map(([k, v]) => [Number(k), v])) }
      : {}),
    ...(m.composedRotations ? { rotationKeys: m.galoisKeySteps } : {}),
  };
  return { plan, manifest: m };
}
