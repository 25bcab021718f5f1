import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { installDirAtomically, loadOnFirstUse } from '../../datasets/first-use.js';
import { exists } from '../../datasets/fs-util.js';
import type { DatasetSource } from '../../datasets/source.js';
import type { ImageDataset } from '../../datasets/types.js';
import { tempDir } from '../helpers/tmp.js';

/** A SYNTHETIC source (tests only): "fetching" writes a marker file into the cache. */
function fakeSource(o: { fetchFails?: boolean } = {}) {
  const calls = { fetch: 0 };
  const dir = (cacheDir: string) => join(cacheDir, 'fake');
  const source: DatasetSource = {
    name: 'fake',
    description: 'synthetic, tests only',
    async locate(opts) {
      return { found: await exists(join(dir(opts.cacheDir), 'data')), path: dir(opts.cacheDir), howToGet: 'heprune datasets fetch fake' };
    },
    async load(opts) {
      const text = await readFile(join(dir(opts.cacheDir), 'data'), 'utf8');
      return { name: 'fake', source: text } as unknown as ImageDataset;
    },
    async fetch(opts) {
      calls.fetch++;
      if (o.fetchFails) throw new Error('registry unreachable');
      await mkdir(dir(opts.cacheDir), { recursive: true });
      await writeFile(join(dir(opts.cacheDir), 'data'), 'fetched');
      return dir(opts.cacheDir);
    },
  };
  return { source, calls };
}

describe('datasets on first use', () => {
  test('a missing dataset is fetched once, with progress lines, then loaded from the cache', async () => {
    const t = await tempDir();
    try {
      const { source, calls } = fakeSource();
      const lines: string[] = [];
      const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
      const ds = await loadOnFirstUse(source, { cacheDir: t.path }, logger);
      expect(ds.source).toBe('fetched');
      expect(calls.fetch).toBe(1);
      expect(lines[0]).toMatch(/dataset fake: not on this machine yet .*fetching it once/);
      expect(lines[1]).toMatch(/dataset fake: fetched to .*fake \(\d+\.\ds\)/);
      await loadOnFirstUse(source, { cacheDir: t.path }, logger);
      expect(calls.fetch).toBe(1);
    } finally {
      await t.cleanup();
    }
  });

  test('a path the user gave is never fetched into; a failed fetch says why and how to get the data', async () => {
    const t = await tempDir();
    try {
      const { source, calls } = fakeSource();
      await expect(loadOnFirstUse(source, { cacheDir: t.path, path: join(t.path, 'mine') })).rejects.toThrow();
      expect(calls.fetch).toBe(0);
      const failing = fakeSource({ fetchFails: true });
      await expect(loadOnFirstUse(failing.source, { cacheDir: t.path })).rejects.toThrow(
        /dataset 'fake' is not on this machine and fetching it failed: registry unreachable\n {2}How to get it: heprune datasets fetch fake/,
      );
    } finally {
      await t.cleanup();
    }
  });

  test('concurrent installs of one cache directory leave one complete copy and no temp directories', async () => {
    const t = await tempDir();
    try {
      const dir = join(t.path, 'cache');
      const complete = () => exists(join(dir, 'b'));
      const build = (who: string, delay: number) => async (tmp: string) => {
        await writeFile(join(tmp, 'a'), who);
        await new Promise((r) => setTimeout(r, delay));
        await writeFile(join(tmp, 'b'), who);
      };
      await Promise.all([
        installDirAtomically(dir, build('first', 30), complete),
        installDirAtomically(dir, build('second', 5), complete),
        installDirAtomically(dir, build('third', 15), complete),
      ]);
      const a = await readFile(join(dir, 'a'), 'utf8'),
        b = await readFile(join(dir, 'b'), 'utf8');
      expect(a).toBe(b); // one writer's whole copy, never a mix
      expect((await readdir(t.path)).sort()).toEqual(['cache']);
    } finally {
      await t.cleanup();
    }
  });
});
