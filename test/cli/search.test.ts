import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** `heprune search`: flags that are not numbers, an unknown method, a missing config: a clear message, exit 2, nothing written. */
let t: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  t = await tempDir();
});
afterAll(async () => {
  await t.cleanup();
});

test.each([
  [
    ['search', 'hemet', 'configs/hemet/squeezenet-baseline.yaml', '--max-depth', 'deep'],
    /heprune: error: --max-depth deep: expected a positive integer/,
  ],
  [
    ['search', 'hemet', 'configs/hemet/squeezenet-baseline.yaml', '--max-n', '1.5'],
    /heprune: error: --max-n 1.5: expected a positive integer/,
  ],
  [['search', 'hemet', 'configs/hemet/squeezenet-baseline.yaml', '--seed', '-1'], /heprune: error: --seed -1: expected an integer >= 0/],
  [['search', 'greedy', 'configs/hemet/squeezenet-baseline.yaml'], /Invalid values:\s+Argument: method, Given: "greedy", Choices: "hemet"/],
  [['search', 'hemet', 'nope.yaml'], /heprune: error: cannot read config nope.yaml: no such file/],
])('heprune %j', async (args, message) => {
  const out = join(t.path, 'out');
  const r = await runCli([...args, '--out', out]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(message);
  await expect(readdir(out)).rejects.toThrow(/ENOENT/);
});
