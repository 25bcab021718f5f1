import YAML from 'yaml';
import type { z } from 'zod';
import { UserError } from '../common/errors.js';
import { configSchema, type PipelineConfig } from './config-schema.js';
import { expandConfig, expandConfigFile, selectVariant, show, type Origins, type RawRun } from './config-file.js';

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** The file that set the value at `path` (or the nearest section above it that one did), when known. */
function originOf(origins: Origins | undefined, path: PropertyKey[]): string | undefined {
  if (!origins) return undefined;
  for (let n = path.length; n > 0; n--) {
    const o = origins.get(path.slice(0, n).map(String).join('.'));
    if (o) return o;
  }
  return undefined;
}

/** One line per problem: `file: key: message (got value)`. */
export function formatIssues(file: string, raw: unknown, issues: z.core.$ZodIssue[], origins?: Origins, variant?: string): string {
  const lines = issues.map((i) => {
    const key = i.path.length ? i.path.map(String).join('.') : '(top level)';
    if (i.code === 'unrecognized_keys') {
      const keys = (i as { keys: string[] }).keys;
      const from = originOf(origins, [...i.path, keys[0]]) ?? file;
      return `${from}: ${i.path.length ? key + ': ' : ''}unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`;
    }
    return `${originOf(origins, i.path) ?? file}: ${key}: ${i.message} (got ${show(valueAt(raw, i.path))})`;
  });
  return `invalid config${variant === undefined ? '' : ` (${file}, variant ${variant})`}:\n  ${lines.join('\n  ')}`;
}

/** Applies `--set a.b.c=value` overrides; the value is read as YAML, so numbers and booleans keep their type. */
export function applyOverrides(raw: Record<string, unknown>, sets: string[]): void {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UserError(`--set ${s}: expected key.path=value`);
    const path = s.slice(0, eq).split('.');
    if (path.some((p) => !p)) throw new UserError(`--set ${s}: empty key in '${s.slice(0, eq)}'`);
    // Keys that name Object.prototype's machinery would write through it (prototype pollution), never a config key.
    const bad = path.find((p) => p === '__proto__' || p === 'constructor' || p === 'prototype');
    if (bad) throw new UserError(`--set ${s}: '${bad}' cannot be a config key`);
    let value: unknown;
    try {
      value = YAML.parse(s.slice(eq + 1));
    } catch (e) {
      throw new UserError(`--set ${s}: the value is not valid YAML (${(e as Error).message.split('\n')[0]}); quote it to pass a string`);
    }
    let obj: Record<string, unknown> = raw;
    for (const p of path.slice(0, -1)) {
      if (!Object.hasOwn(obj, p)) obj[p] = {};
      if (typeof obj[p] !== 'object' || obj[p] === null) throw new UserError(`--set ${s}: '${p}' is not a section`);
      obj = obj[p] as Record<string, unknown>;
    }
    obj[path[path.length - 1]] = value;
  }
}

/** One run of a config file, validated: `variant` is undefined for a file without variants. */
export interface LoadedRun {
  file: string;
  variant?: string;
  config: PipelineConfig;
}

/** Validates one run of a file (its `--set` overrides applied first): errors name the file each bad value came from. */
export function resolveRun(run: RawRun, sets: string[] = []): PipelineConfig {
  const raw = structuredClone(run.raw);
  applyOverrides(raw, sets);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(formatIssues(run.file, raw, parsed.error.issues, run.origins, run.variant));
  return parsed.data;
}

/** Every run of a config file's text (one per variant, or the file itself), or the one `variant` names. */
export function parseConfigs(text: string, file: string, sets: string[] = [], variant?: string): LoadedRun[] {
  return selectVariant(expandConfig(text, file), file, variant).map((r) => ({ file, variant: r.variant, config: resolveRun(r, sets) }));
}

export async function loadConfigs(file: string, sets: string[] = [], variant?: string): Promise<LoadedRun[]> {
  return selectVariant(expandConfigFile(file), file, variant).map((r) => ({ file, variant: r.variant, config: resolveRun(r, sets) }));
}

function single(runs: LoadedRun[], file: string): PipelineConfig {
  if (runs.length > 1)
    throw new UserError(`${file}: has ${runs.length} variants (${runs.map((r) => r.variant).join(', ')}); name one (--variant)`);
  return runs[0].config;
}

/** The one run of a config (a file with variants needs `variant`). */
export function parseConfig(text: string, file: string, sets: string[] = [], variant?: string): PipelineConfig {
  return single(parseConfigs(text, file, sets, variant), file);
}

export async function loadConfig(file: string, sets: string[] = [], variant?: string): Promise<PipelineConfig> {
  return single(await loadConfigs(file, sets, variant), file);
}
