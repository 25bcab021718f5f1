import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import { UserError } from '../common/errors.js';
import { extendsKey, suffixKey } from './config-schema.js';

/**
 * A config file's runs before validation: `extends:` chains followed (the
 * file deep-merged over its base: mappings merge key by key, arrays and
 * scalars replace) and each of its `variants:` deep-merged over the result.
 * Every value remembers the file (and variant) it came from, so an error in
 * a value set by a base names the base.
 */
export type Raw = Record<string, unknown>;
/** Dotted key path → the file (or `file (variant x)`) that set the value. */
export type Origins = Map<string, string>;

export interface RawRun {
  /** The file the run was asked for (its own keys win over its bases'). */
  file: string;
  /** The variant's name (`name`, or `suffix` when it has one); undefined for a file without variants. */
  variant?: string;
  raw: Raw;
  origins: Origins;
}

export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

const isMapping = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses one YAML file's text into its top-level mapping (the errors say where). */
export function parseMapping(text: string, file: string): Raw {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'unknown position';
    throw new UserError(`${file}: malformed YAML at ${where}: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  if (!isMapping(raw)) throw new UserError(`${file}: expected a mapping of sections (name, dataset, model, train, …), got ${show(raw)}`);
  return raw;
}

function setOrigins(origins: Origins, prefix: string, v: unknown, label: string): void {
  origins.set(prefix, label);
  if (isMapping(v)) for (const [k, x] of Object.entries(v)) setOrigins(origins, prefix ? `${prefix}.${k}` : k, x, label);
}

function dropOrigins(origins: Origins, prefix: string): void {
  for (const k of [...origins.keys()]) if (k === prefix || k.startsWith(`${prefix}.`)) origins.delete(k);
}

/** `over` deep-merged over `base` (neither changed): mappings merge, anything else replaces; origins follow. */
export function deepMerge(base: Raw, over: Raw, origins: Origins, label: string, prefix = ''): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isMapping(v) && isMapping(out[k])) {
      origins.set(path, label);
      out[k] = deepMerge(out[k], v, origins, label, path);
    } else {
      dropOrigins(origins, path);
      out[k] = structuredClone(v);
      setOrigins(origins, path, v, label);
    }
  }
  return out;
}

function readConfigText(file: string, from?: { file: string; value: string }): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    if (from) throw new UserError(`${from.file}: extends: cannot read the base config ${file}: ${why} (got ${show(from.value)})`);
    throw new UserError(`cannot read config ${file}: ${why}`);
  }
}

/** The file with its `extends:` chain merged in; `chain` holds the files that extend it (a cycle is an error naming them). */
function withBases(text: string, file: string, chain: string[]): { raw: Raw; origins: Origins } {
  const own = parseMapping(text, file);
  const ext = own.extends;
  delete own.extends;
  const origins: Origins = new Map();
  if (ext === undefined) {
    setOrigins(origins, '', own, file);
    origins.delete('');
    return { raw: own, origins };
  }
  const ok = extendsKey.safeParse(ext);
  if (!ok.success) throw new UserError(`${file}: extends: expected the path of a base config, relative to this file (got ${show(ext)})`);
  const baseFile = isAbsolute(ok.data) ? ok.data : join(dirname(file), ok.data);
  const seen = [...chain, file];
  if (seen.some((f) => resolve(f) === resolve(baseFile))) {
    throw new UserError(`extends cycle: ${[...seen, baseFile].join(' → ')}`);
  }
  const base = withBases(readConfigText(baseFile, { file, value: ok.data }), baseFile, seen);
  return { raw: deepMerge(base.raw, own, base.origins, file), origins: base.origins };
}

const FILE_KEYS = ['extends', 'variants'];

/** One variant's run: the variant's keys merged over the file's (its name is `name`, or the file's name and `-suffix`). */
function variantRun(file: string, base: { raw: Raw; origins: Origins }, v: unknown, i: number): RawRun {
  const where = `${base.origins.get('variants') ?? file}: variants.${i}`;
  if (!isMapping(v)) throw new UserError(`${where}: expected a mapping of the keys this variant changes (got ${show(v)})`);
  const over = { ...v };
  const bad = Object.keys(over).filter((k) => FILE_KEYS.includes(k));
  if (bad.length) throw new UserError(`${where}: ${bad.map((k) => `'${k}'`).join(', ')} belongs at the top of a file, not in a variant`);
  const suffix = over.suffix;
  delete over.suffix;
  let id: string;
  if (suffix !== undefined) {
    const s = suffixKey.safeParse(suffix);
    if (!s.success) throw new UserError(`${where}: suffix: expected letters, digits, ".", "_" or "-" (got ${show(suffix)})`);
    if (over.name !== undefined)
      throw new UserError(`${where}: give the variant a name or a suffix, not both (got name ${show(over.name)}, suffix ${show(suffix)})`);
    if (typeof base.raw.name !== 'string')
      throw new UserError(`${where}: suffix: the file has no name to add it to (give the variant a name instead)`);
    id = String(s.data);
    over.name = `${base.raw.name}-${id}`;
  } else if (typeof over.name === 'string' && over.name) {
    id = over.name;
  } else {
    throw new UserError(`${where}: a variant needs a name (the run's name) or a suffix (added to the file's name) (got ${show(v)})`);
  }
  const origins: Origins = new Map(base.origins);
  dropOrigins(origins, 'variants');
  const label = `${base.origins.get('variants') ?? file} (variant ${id})`;
  return { file, variant: id, raw: deepMerge(base.raw, over, origins, label), origins };
}

/** The runs of a config file's text: one, or one per variant. */
export function expandConfig(text: string, file: string): RawRun[] {
  const merged = withBases(text, file, []);
  const variants = merged.raw.variants;
  if (variants === undefined) return [{ file, raw: merged.raw, origins: merged.origins }];
  const { variants: _, ...rest } = merged.raw;
  const where = merged.origins.get('variants') ?? file;
  if (!Array.isArray(variants) || !variants.length)
    throw new UserError(`${where}: variants: expected a list of variants, each with a name or a suffix (got ${show(variants)})`);
  const runs = variants.map((v, i) => variantRun(file, { raw: rest, origins: merged.origins }, v, i));
  for (const key of ['variant', 'name'] as const) {
    const seen = new Set<string>();
    for (const r of runs) {
      const id = key === 'variant' ? r.variant! : String(r.raw.name);
      if (seen.has(id))
        throw new UserError(
          `${where}: variants: two variants are ${key === 'variant' ? 'called' : 'runs named'} '${id}' (each must be one run of its own)`,
        );
      seen.add(id);
    }
  }
  return runs;
}

export function expandConfigFile(file: string): RawRun[] {
  return expandConfig(readConfigText(file), file);
}

/** The runs asked for: all, or the one variant named (by its name or its run's name); an unknown one is an error listing them. */
export function selectVariant(runs: RawRun[], file: string, variant?: string): RawRun[] {
  if (variant === undefined) return runs;
  if (runs.length === 1 && runs[0].variant === undefined) throw new UserError(`${file}: --variant ${variant}: this config has no variants`);
  const hit = runs.filter((r) => r.variant === variant || r.raw.name === variant);
  if (!hit.length) throw new UserError(`${file}: no variant '${variant}'; it has ${runs.map((r) => r.variant).join(', ')}`);
  return hit.slice(0, 1);
}
