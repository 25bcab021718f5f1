import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { schemaMarkdown, schemaSections, undocumentedKeys } from '../../pipeline/schema-docs.js';

/**
 * Keys whose schema has no .describe() yet (their owners' files are
 * pipeline/config-schema.ts, train/zoo/*.ts and train/options.ts). A key
 * missing a description that is not listed here fails the test; describe a
 * listed one and delete it from here. Empty: every key must be described.
 */
const KNOWN_UNDOCUMENTED: string[] = [
  'top level: name',
  'model (name: cryptonets): kernelSize',
  'model (name: cryptonets): stride',
  'model (name: lenet5): conv1',
  'model (name: lenet5): conv2',
  'model (name: lenet5): hidden',
  'model (name: resnet20): depth',
  'model (name: mlp): hidden',
  'train: epochs',
  'train: batchSize',
  'train: optimizer',
  'train: learningRate',
  'train: augment',
  'train: seed',
  'train: evalBatchSize',
];

describe('configuration reference generated from the schema', () => {
  test('docs/configuration.md is the one the schema generates (regenerate with npm run docs)', async () => {
    const shipped = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    expect(shipped).toBe(schemaMarkdown());
  });

  test('every key has a description (or is listed as not yet described)', () => {
    const missing = undocumentedKeys();
    expect(missing.filter((k) => !KNOWN_UNDOCUMENTED.includes(k))).toEqual([]);
  });

  test('walks nesting, unions, defaults and descriptions', () => {
    const schema = z.object({
      name: z.string().describe('the run'),
      part: z
        .object({
          n: z.number().int().default(3).describe('a count'),
          mode: z.enum(['a', 'b']).optional().describe('a mode'),
          shape: z
            .union([z.literal('auto'), z.object({ t1: z.number().describe('rows') }).strict()])
            .optional()
            .describe('a shape'),
          clip: z.number().nullable().default(5).describe('clipped'),
          bare: z.boolean(),
        })
        .strict()
        .optional(),
      kind: z
        .discriminatedUnion('name', [
          z.object({ name: z.literal('x'), k: z.number().default(1).describe('k') }),
          z.object({ name: z.literal('y') }),
        ])
        .optional(),
    });
    const sections = schemaSections(schema);
    expect(sections.map((s) => s.title)).toEqual(['top level', 'part', 'kind (name: x)', 'kind (name: y)']);
    expect(sections[1].keys).toEqual([
      { key: 'n', type: 'integer', default: '3', description: 'a count' },
      { key: 'mode', type: 'a | b', default: '', description: 'a mode' },
      { key: 'shape', type: 'auto | object', default: '', description: 'a shape' },
      { key: 'shape.t1', type: 'number', default: 'required', description: 'rows' },
      { key: 'clip', type: 'number | null', default: '5', description: 'clipped' },
      { key: 'bare', type: 'boolean', default: 'required', description: undefined },
    ]);
    expect(undocumentedKeys(schema)).toEqual(['part: bare']);
    expect(schemaMarkdown(schema)).toContain('| `mode` | a \\| b |  | a mode |');
  });
});
