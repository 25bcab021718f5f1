import { z } from 'zod';
import { DATASET_NAMES } from '../datasets/registry.js';
import { modelSchema } from '../train/zoo/registry.js';
import { trainSchema } from '../train/options.js';
import { exportSchema } from '../export/options.js';
import { pruneSchema } from '../prune/options.js';
import { reproduceSchema } from './reproduce-schema.js';
import { evaluateSchema } from '../evaluate/options.js';

/**
 * The pipeline config: the single source of truth for keys, defaults and
 * types (TypeScript types are inferred from it, the shipped JSON Schema is
 * generated from it). Stages are optional; a config runs the ones it has.
 */
export const datasetSchema = z
  .object({
    name: z.enum(DATASET_NAMES).describe('dataset source'),
    path: z.string().min(1).optional().describe('directory with the data (each source has a default)'),
    cacheDir: z.string().min(1).optional().describe('cache for fetched datasets (default $HEPRUNE_CACHE or ~/.cache/heprune)'),
    normalize: z
      .enum(['unit', 'symmetric', 'standard'])
      .default('standard')
      .describe('unit: x/255; symmetric: [-1,1]; standard: per-channel mean/std of the training split'),
    validation: z.number().min(0).lt(1).default(0.1).describe('fraction of the training split held out for model selection'),
    trainLimit: z.number().int().positive().optional().describe('use only the first N training examples (quick runs)'),
    validationLimit: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('validate on only the first N of the held-out examples (quick runs); training keeps the same examples'),
    testLimit: z.number().int().positive().optional().describe('use only the first N test examples (quick runs)'),
    labelMode: z.enum(['fine', 'coarse']).default('fine').describe('cifar100 labels'),
    imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional().describe('folder/synthetic: [height, width]'),
    channels: z
      .union([z.literal(1), z.literal(3)])
      .optional()
      .describe('folder/synthetic: 1 (grey) or 3 (RGB)'),
    testFraction: z.number().gt(0).lt(1).default(0.2).describe('folder without train/ and test/: fraction held out as test'),
    trainCount: z.number().int().positive().optional().describe('synthetic: training examples'),
    testCount: z.number().int().positive().optional().describe('synthetic: test examples'),
    numClasses: z.number().int().min(2).optional().describe('synthetic: classes'),
    seed: z.number().int().nonnegative().default(1).describe('seed of the train/validation split'),
  })
  .strict();

export const configSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-" (it names the run directory)'),
    outDir: z.string().min(1).default('runs').describe('parent of the run directory runs/<name>'),
    dataset: datasetSchema,
    model: modelSchema.optional(),
    train: trainSchema.optional(),
    prune: pruneSchema.optional(),
    export: exportSchema.optional(),
    evaluate: evaluateSchema.optional(),
    reproduce: reproduceSchema.optional(),
  })
  .strict();

export type PipelineConfig = z.infer<typeof configSchema>;

/*
 * Keys of a config file that are not keys of a run: `extends:` and
 * `variants:` (pipeline/config-file.ts follows them). Each run a file produces is
 * checked in full against configSchema once its base and variant are merged in.
 */
export const extendsKey = z
  .string()
  .min(1)
  .describe(
    'a base config (path relative to this file) this file is deep-merged over: mappings merge key by key, lists and values replace; the base may extend another',
  );
export const suffixKey = z
  .union([z.string().regex(/^[A-Za-z0-9._-]+$/), z.number().int().nonnegative()])
  .describe(
    "this variant's run is named <the file's name>-<suffix> (instead of a name of its own); the suffix also names the variant (--variant)",
  );
const variantSchema = configSchema
  .partial()
  .extend({ suffix: suffixKey.optional() })
  .describe("one run: these keys deep-merged over the rest of the file; needs a name (the run's name, also the variant's) or a suffix");
export const configFileSchema = configSchema.partial().extend({
  extends: extendsKey.optional(),
  variants: z
    .array(variantSchema)
    .min(1)
    .optional()
    .describe(
      'several runs from one file: each variant is deep-merged over the rest of the file and is one run (heprune run <file> runs them all, --variant <name> one); the file itself is then not a run',
    ),
});
export type DatasetConfig = z.infer<typeof datasetSchema>;

export function jsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}

/**
 * A file's keys may come from its base or be completed by a variant, so the
 * file schema requires nothing (each run is checked in full when loaded) and
 * a partial section matches any of a union's forms (anyOf, not oneOf).
 */
function relaxed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relaxed);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'required') continue;
    out[k === 'oneOf' ? 'anyOf' : k] = relaxed(v);
  }
  return out;
}

type Json = { properties: Record<string, unknown>; [k: string]: unknown };

/** The JSON Schema of a config file (a run's keys, extends: and variants:), for editors. */
export function fileJsonSchema(): object {
  const s = relaxed(z.toJSONSchema(configFileSchema, { io: 'input', unrepresentable: 'any' })) as Json;
  // A variant's sections are the file's sections: point at them rather than repeat them.
  const item = (s.properties.variants as { items: Json }).items;
  for (const k of Object.keys(item.properties)) if (k in s.properties && k !== 'name') item.properties[k] = { $ref: `#/properties/${k}` };
  return s;
}

/** The JSON Schema file shipped as configs/heprune.schema.json (for editors). */
export function schemaDocument(): object {
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'heprune pipeline config', ...fileJsonSchema() };
}
