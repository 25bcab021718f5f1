import type { z } from 'zod';
import { configSchema } from './config-schema.js';

/**
 * The configuration reference (docs/configuration.md), generated from the
 * zod schema's own descriptions and defaults so it cannot drift from what
 * the loader accepts. `heprune schema --markdown` prints it.
 */

/** One key of a config section, as the reference lists it. */
export interface KeyDoc {
  key: string;
  type: string;
  default: string;
  description: string | undefined;
}

/** One table: a section of the config (`train`, `model (name: lenet5)`, …). */
export interface SectionDoc {
  title: string;
  keys: KeyDoc[];
}

type AnySchema = z.core.$ZodType;
interface Def {
  type: string;
  [k: string]: unknown;
}

function defOf(s: AnySchema): Def {
  return s._zod.def as unknown as Def;
}

function descriptionOf(s: AnySchema): string | undefined {
  return (s as unknown as { description?: string }).description;
}

/** Wrappers that change presence or default but not the value's type. */
const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'nonoptional', 'catch']);

interface Unwrapped {
  inner: AnySchema;
  description: string | undefined;
  optional: boolean;
  nullable: boolean;
  defaultValue: unknown;
  hasDefault: boolean;
}

/** Peel optional/default/nullable wrappers, keeping the outermost description. */
function unwrap(s: AnySchema): Unwrapped {
  const u: Unwrapped = { inner: s, description: undefined, optional: false, nullable: false, defaultValue: undefined, hasDefault: false };
  for (;;) {
    u.description ??= descriptionOf(u.inner);
    const d = defOf(u.inner);
    if (!WRAPPERS.has(d.type)) break;
    if (d.type === 'optional') u.optional = true;
    if (d.type === 'nullable') u.nullable = true;
    if ((d.type === 'default' || d.type === 'prefault') && !u.hasDefault) {
      u.hasDefault = true;
      u.defaultValue = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
    }
    u.inner = d.innerType as AnySchema;
  }
  return u;
}

function isObject(s: AnySchema): boolean {
  return defOf(s).type === 'object';
}

function shapeOf(s: AnySchema): Record<string, AnySchema> {
  return defOf(s).shape as Record<string, AnySchema>;
}

function literal(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A compact type notation: `integer`, `adam \| sgd`, `number[]`, `[integer, integer]`, … */
export function typeName(s: AnySchema): string {
  const u = unwrap(s);
  const d = defOf(u.inner);
  const base = ((): string => {
    switch (d.type) {
      case 'number': {
        const format = (u.inner as unknown as { format?: string | null }).format;
        return format && /int/.test(format) ? 'integer' : 'number';
      }
      case 'string':
      case 'boolean':
        return d.type;
      case 'enum':
        return Object.values(d.entries as Record<string, unknown>)
          .map(literal)
          .join(' | ');
      case 'literal':
        return (d.values as unknown[]).map(literal).join(' | ');
      case 'array':
        return `${typeName(d.element as AnySchema)}[]`;
      case 'tuple':
        return `[${(d.items as AnySchema[]).map(typeName).join(', ')}]`;
      case 'union':
        return (d.options as AnySchema[]).map(typeName).join(' | ');
      case 'object':
        return 'object';
      case 'pipe':
        return typeName(d.in as AnySchema);
      default:
        return d.type;
    }
  })();
  return u.nullable ? `${base} | null` : base;
}

function defaultText(u: Unwrapped): string {
  if (u.hasDefault) return JSON.stringify(u.defaultValue);
  return u.optional ? '' : 'required';
}

/** Rows for one object's keys; nested objects (also inside a union) add `parent.child` rows, lists of objects `parent[].child` rows. */
function keyRows(obj: AnySchema, prefix = ''): KeyDoc[] {
  const rows: KeyDoc[] = [];
  for (const [name, schema] of Object.entries(shapeOf(obj))) {
    const u = unwrap(schema);
    const key = prefix + name;
    rows.push({ key, type: typeName(schema), default: defaultText(u), description: u.description });
    const d = defOf(u.inner);
    const nested =
      d.type === 'object' ? [u.inner] : d.type === 'union' ? (d.options as AnySchema[]).map((o) => unwrap(o).inner).filter(isObject) : [];
    for (const n of nested) rows.push(...keyRows(n, `${key}.`));
    if (d.type === 'array') rows.push(...elementRows(d.element as AnySchema, key));
  }
  return rows;
}

/**
 * Rows for the elements of a list `key` of objects: `key[].child`; of
 * several kinds of object (a discriminated union), a row `key[kind]` per
 * kind with the kind's own keys under it (`key[kind].child`).
 */
function elementRows(element: AnySchema, key: string): KeyDoc[] {
  const u = unwrap(element);
  const d = defOf(u.inner);
  if (d.type === 'object') return keyRows(u.inner, `${key}[].`);
  if (d.type !== 'union' || typeof d.discriminator !== 'string') return [];
  const disc = d.discriminator;
  return (d.options as AnySchema[]).flatMap((option) => {
    const value = literal((defOf(shapeOf(option)[disc] as AnySchema).values as unknown[])[0]);
    const kind = `${key}[${value}]`;
    const head = { key: kind, type: `object (${disc}: ${value})`, default: '', description: descriptionOf(option) };
    return [head, ...keyRows(option, `${kind}.`).filter((k) => k.key !== `${kind}.${disc}`)];
  });
}

/** The sections of the pipeline config, top-level keys first, one table per model of the zoo. */
export function schemaSections(schema: AnySchema = configSchema): SectionDoc[] {
  const top: KeyDoc[] = [];
  const sections: SectionDoc[] = [];
  for (const [name, s] of Object.entries(shapeOf(schema))) {
    const u = unwrap(s);
    const d = defOf(u.inner);
    const row = { key: name, type: typeName(s), default: defaultText(u), description: u.description };
    if (d.type === 'object') {
      top.push({ ...row, type: 'section', description: row.description ?? `the ${name} section, below` });
      sections.push({ title: name, keys: keyRows(u.inner) });
    } else if (d.type === 'union' && typeof d.discriminator === 'string') {
      const count = (d.options as AnySchema[]).length;
      top.push({
        ...row,
        type: 'section',
        description: row.description ?? `the ${name} section: one of ${count}, chosen by ${d.discriminator}, below`,
      });
      for (const option of d.options as AnySchema[]) {
        const value = literal((defOf(shapeOf(option)[d.discriminator] as AnySchema).values as unknown[])[0]);
        const keys = keyRows(option).map((k) =>
          k.key === d.discriminator ? { ...k, description: k.description ?? `${value} selects this ${name}` } : k,
        );
        sections.push({ title: `${name} (${d.discriminator}: ${value})`, keys });
      }
    } else {
      top.push(row);
    }
  }
  return [{ title: 'top level', keys: top }, ...sections];
}

/** Keys (`section: key`) whose schema carries no description. */
export function undocumentedKeys(schema: AnySchema = configSchema): string[] {
  return schemaSections(schema).flatMap((sec) =>
    sec.keys.filter((k) => !k.description && !k.type.startsWith('section')).map((k) => `${sec.title}: ${k.key}`),
  );
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** docs/configuration.md: one markdown table per section. */
export function schemaMarkdown(schema: AnySchema = configSchema): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from the zod schema (pipeline/config-schema.ts and the section schemas it imports)',
    "     by `npm run docs` (= `heprune schema --markdown`). Do not edit: change the schema's",
    '     .describe() texts and regenerate; a test fails when this file is out of date. -->',
    '',
    'A pipeline config is one YAML file (`configs/**/*.yaml`). Every section but `dataset` is optional;',
    '`heprune run` runs the stages a config has. Any key can be overridden on the command line with',
    '`--set section.key=value`. Errors name the file, the key, what was expected and the value given.',
    'Editors can check configs against `configs/heprune.schema.json` (`npm run schema`).',
    '',
    'Default: the value used when the key is absent; `required`: the key must be given; empty: optional, no default.',
  ];
  for (const sec of schemaSections(schema)) {
    out.push('', `## ${sec.title}`, '', '| key | type | default | description |', '|---|---|---|---|');
    for (const k of sec.keys) {
      const dflt = k.default === '' || k.default === 'required' ? k.default : `\`${k.default}\``;
      out.push(`| \`${k.key}\` | ${cell(k.type)} | ${cell(dflt)} | ${cell(k.description ?? '')} |`);
    }
  }
  return out.join('\n') + '\n';
}
