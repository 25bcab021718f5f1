import { runOrder, type ConfigEntry } from '../../pipeline/run-order.js';

const entry = (file: string, name: string, extra: Record<string, unknown> = {}): ConfigEntry => ({ file, raw: { name, ...extra } });

test('reproduce runs dense references first and every config after the run it starts from, whatever the file names', () => {
  const files = [
    entry('vgg5-grouped.yaml', 'spencnn-vgg5-grouped', { train: { from: 'spencnn-vgg5' } }),
    entry('vgg5.yaml', 'spencnn-vgg5'),
    entry('a-chain.yaml', 'c3', { train: { from: 'vgg5-grouped-run' } }),
    entry('vgg5-dense.yaml', 'spencnn-vgg5-dense', { reproduce: { role: 'dense' } }),
    entry('z-mid.yaml', 'vgg5-grouped-run', { train: { from: 'spencnn-vgg5-grouped' } }),
    entry('b-outside.yaml', 'lone', { train: { from: 'not-in-this-directory' } }),
  ];
  const order = runOrder(files).map((e) => e.file);
  expect(order).toHaveLength(files.length);
  expect(new Set(order).size).toBe(files.length);
  expect(order[0]).toBe('vgg5-dense.yaml');
  const at = (f: string) => order.indexOf(f);
  expect(at('vgg5.yaml')).toBeLessThan(at('vgg5-grouped.yaml'));
  expect(at('vgg5-grouped.yaml')).toBeLessThan(at('z-mid.yaml'));
  expect(at('z-mid.yaml')).toBeLessThan(at('a-chain.yaml'));
  // Otherwise file-name order holds: a-chain (with the runs it needs) before b-outside.
  expect(at('a-chain.yaml')).toBeLessThan(at('b-outside.yaml'));
});

test('a train.from cycle does not loop: every config is placed once', () => {
  const order = runOrder([entry('a.yaml', 'a', { train: { from: 'b' } }), entry('b.yaml', 'b', { train: { from: 'a' } })]).map(
    (e) => e.file,
  );
  expect(order.sort()).toEqual(['a.yaml', 'b.yaml']);
});

test("a config that trains from another run's weights (train.init) goes after that run", () => {
  const order = runOrder([
    entry('a-from-dense.yaml', 'g2', { train: { init: 'dense-run' } }),
    entry('m-pruned.yaml', 'g2-pruned', { train: { from: 'g2' } }),
    entry('z-dense.yaml', 'dense-run'),
  ]).map((e) => e.file);
  expect(order).toEqual(['z-dense.yaml', 'a-from-dense.yaml', 'm-pruned.yaml']);
});

test('the variants of one file run in the order the file lists them, after the runs they start from', () => {
  const order = runOrder([
    entry('b.yaml', 'b-z'),
    entry('b.yaml', 'b-a', { train: { from: 'b-m' } }),
    entry('b.yaml', 'b-m'),
    entry('a.yaml', 'a'),
  ]).map((e) => String(e.raw.name));
  expect(order).toEqual(['a', 'b-z', 'b-m', 'b-a']);
});
