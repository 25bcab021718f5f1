import { mkdir, readdir, rename, rm, writeFile, open, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, errorMessage } from './errors.js';

/**
 * Creates `dir` and its missing parents. Node's own `mkdir(..., { recursive:
 * true })` never returns for some paths (under /proc it retries ENOENT
 * forever), so parents are created one by one and a failure is an error.
 */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw e;
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw e;
    await ensureDir(dirname(dir));
    try {
      await mkdir(dir);
    } catch (e2) {
      // Another process may have created it meanwhile.
      if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw e2;
    }
  }
}

/**
 * Writes `data` to `path` so that a reader sees either the old file or the
 * whole new one: write a temp file beside it, fsync, then rename over.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await ensureDir(dir);
    await writeFile(tmp, data);
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new UserError(`cannot write ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Replaces directory `finalDir` with one built by `build(tmpDir)`. The old
 * directory is kept until the new one is complete, so an interruption leaves
 * either the old or the new one, never a half-written mix.
 */
export async function replaceDirAtomic(finalDir: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const parent = dirname(finalDir);
  const tag = randomBytes(6).toString('hex');
  const tmp = join(parent, `.${basename(finalDir)}.${tag}.tmp`);
  const old = join(parent, `.${basename(finalDir)}.${tag}.old`);
  await ensureDir(tmp);
  try {
    await build(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  let hadOld = false;
  try {
    await rename(finalDir, old);
    hadOld = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  await rename(tmp, finalDir);
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/** `.name.<12 hex>.tmp` / `.old`: what writeFileAtomic and replaceDirAtomic leave when interrupted. */
const LEFTOVER = /^\.(.+)\.([0-9a-f]{12})\.(tmp|old)$/;

/**
 * Finishes or undoes an interrupted replaceDirAtomic of `finalDir`. With
 * `finalDir` missing, the interruption fell between its two renames: a
 * `.tmp` whose tag also has an `.old` was complete (the old version is moved
 * aside only after the new one is built) and becomes `finalDir`; otherwise
 * the newest `.old`, the previous complete version, is put back. Every other
 * leftover of `finalDir` (half-built `.tmp`, superseded `.old`) is removed.
 */
export async function recoverReplacedDir(finalDir: string): Promise<void> {
  const parent = dirname(finalDir),
    base = basename(finalDir);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  const mine = names.map((n) => ({ n, m: LEFTOVER.exec(n) })).filter((x) => x.m && x.m[1] === base);
  if (!mine.length) return;
  let present = true;
  try {
    await stat(finalDir);
  } catch {
    present = false;
  }
  if (!present) {
    const olds = mine.filter((x) => x.m![3] === 'old');
    const built = mine.find((x) => x.m![3] === 'tmp' && olds.some((o) => o.m![2] === x.m![2]));
    let pick = built?.n;
    if (!pick && olds.length) {
      const dated = await Promise.all(olds.map(async (o) => ({ n: o.n, t: (await stat(join(parent, o.n))).mtimeMs })));
      pick = dated.sort((a, b) => b.t - a.t)[0].n;
    }
    if (pick) await rename(join(parent, pick), finalDir);
  }
  for (const x of mine) await rm(join(parent, x.n), { recursive: true, force: true });
}

/**
 * Recovers every interrupted atomic write under `root` (a run directory, at
 * the start of a run that holds its lock): replaced directories are finished
 * or put back as recoverReplacedDir does, temp files are removed.
 */
export async function recoverLeftovers(root: string, depth = 4): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return;
  }
  const bases = new Set<string>();
  for (const e of entries) {
    const m = LEFTOVER.exec(e.name);
    if (!m) continue;
    if (e.isDirectory()) bases.add(m[1]);
    else await rm(join(root, e.name), { force: true });
  }
  for (const b of bases) await recoverReplacedDir(join(root, b));
  if (depth > 0) {
    for (const e of await readdir(root, { withFileTypes: true })) {
      if (e.isDirectory() && !LEFTOVER.test(e.name)) await recoverLeftovers(join(root, e.name), depth - 1);
    }
  }
}

/**
 * Checks, before any long work, that `dir` can be created and written (a
 * probe file written and removed), so a bad output path fails at once with
 * `what` named instead of after the work, losing it.
 */
export async function assertWritableDir(dir: string, what: string): Promise<void> {
  const probe = join(dir, `.heprune-write-check.${randomBytes(4).toString('hex')}`);
  try {
    await ensureDir(dir);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (e) {
    throw new UserError(`${what} ${dir} is not a writable directory: ${errorMessage(e)}`, { cause: e });
  }
}
