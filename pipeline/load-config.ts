import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import type { z } from 'zod';
import { UserError } from '../common/errors.js';
import { configSchema, type PipelineConfig } from './config-schema.js';

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** One line per problem: `file: key: message (got value)`. */
export function formatIssues(file: string, raw: unknown, issues: z.core.$ZodIssue[]): string {
  const lines = issues.map((i) => {
    const key = i.path.length ? i.path.map(String).join('.') : '(top level)';
    if (i.code === 'unrecognized_keys') {
      const keys = (i as { keys: string[] }).keys;
      return `${file}: ${i.path.length ? key + ': ' : ''}unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`;
    }
    return `${file}: ${key}: ${i.message} (got ${show(valueAt(raw, i.path))})`;
  });
  return `invalid config:\n  ${lines.join('\n  ')}`;
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
    try { value = YAML.parse(s.slice(eq + 1)); } catch (e) {
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

export function parseConfig(text: string, file: string, sets: string[] = []): PipelineConfig {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'unknown position';
    throw new UserError(`${file}: malformed YAML at ${where}: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(`${file}: expected a mapping of sections (name, dataset, model, train, …), got ${show(raw)}`);
  }
  applyOverrides(raw as Record<string, unknown>, sets);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(formatIssues(file, raw, parsed.error.issues));
  return parsed.data;
}

export async function loadConfig(file: string, sets: string[] = []): Promise<PipelineConfig> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new UserError(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return parseConfig(text, file, sets);
}
