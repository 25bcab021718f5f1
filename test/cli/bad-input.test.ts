import { writeFile, readdir, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** What a new user gets wrong: each must be a clear message, a non-zero exit and no corrupted run directory. */
describe('CLI bad input', () => {
  let t: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    t = await tempDir();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const write = async (name: string, text: string) => {
    const p = join(t.path, name);
    await writeFile(p, text);
    return p;
  };

  test('missing config file', async () => {
    const r = await runCli(['run', join(t.path, 'nope.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/heprune: error: cannot read config .*nope.yaml: no such file/);
  });

  test('malformed YAML', async () => {
    const r = await runCli(['run', await write('bad.yaml', 'name: x\ndataset: {name: mnist\n')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad.yaml: malformed YAML at line \d+, column \d+/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace for user errors
  });

  test('unknown model and wrong types', async () => {
    const r = await runCli([
      'run',
      await write('m.yaml', `name: x\noutDir: ${t.path}/runs\ndataset: {name: mnist}\nmodel: {name: alexnet}\ntrain: {epochs: many}\n`),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/m.yaml: model.name: .*\(got "alexnet"\)/);
    expect(r.stderr).toMatch(/m.yaml: train.epochs: Invalid input: expected number, received string \(got "many"\)/);
  });

  test('missing dataset says how to get it and leaves no run directory', async () => {
    const out = join(t.path, 'runs-missing');
    const r = await runCli([
      'run',
      await write('d.yaml', `name: c100\noutDir: ${out}\ndataset: {name: cifar100, path: ${t.path}/no-cifar}\nmodel: {name: vgg5}\n`),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/dataset 'cifar100' not found at .*no-cifar[\s\S]*How to get it: download the official CIFAR-100 binary/);
    await expect(readdir(join(out, 'c100'))).rejects.toThrow(/ENOENT/);
  });

  test('an output path that is not writable', async () => {
    await writeFile(join(t.path, 'afile'), 'x');
    const r = await runCli(['run', await write('w.yaml', `name: w\noutDir: ${t.path}/afile\ndataset: {name: synthetic}\n`)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/run directory .*afile\/w is not writable.*Set outDir/);
    if (process.getuid?.() !== 0) {
      await mkdir(join(t.path, 'ro'));
      await chmod(join(t.path, 'ro'), 0o500);
      const r2 = await runCli(['run', await write('w2.yaml', `name: w\noutDir: ${t.path}/ro\ndataset: {name: synthetic}\n`)]);
      expect(r2.code).toBe(2);
    }
  });

  test('unknown command, unknown flag, unknown dataset in `datasets info`', async () => {
    const a = await runCli(['frobnicate']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/Unknown argument: frobnicate/);
    const b = await runCli(['run', 'x.yaml', '--epochz', '3']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/Unknown arguments?: epochz/);
    const c = await runCli(['datasets', 'info', 'imagenet']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/unknown dataset 'imagenet'; expected one of: mnist, fashion-mnist, cifar10, cifar100, folder, synthetic/);
  });

  test('--set values that are not YAML, and keys that would reach Object.prototype, are clear errors', async () => {
    const cfg = await write('s.yaml', `name: s\noutDir: ${t.path}/runs-set\ndataset: {name: synthetic}\n`);
    const a = await runCli(['run', cfg, '--set', 'train.epochs=[1']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/heprune: error: --set train.epochs=\[1: the value is not valid YAML/);
    expect(a.stderr).not.toMatch(/internal error/);
    for (const key of ['__proto__.polluted', 'train.__proto__.polluted', 'constructor.prototype.polluted']) {
      const b = await runCli(['run', cfg, '--set', `${key}=1`]);
      expect(b.code).toBe(2);
      expect(b.stderr).toMatch(/--set .*: '(__proto__|constructor|prototype)' cannot be a config key/);
    }
  });

  test('evaluate: --samples, --workers and --plaintext-budget-mb must be sensible numbers, checked before any work', async () => {
    for (const [flag, value, what] of [
      ['--samples', 'abc', 'a positive integer'],
      ['--samples', '1.5', 'a positive integer'],
      ['--workers', '0', 'a positive integer'],
      ['--plaintext-budget-mb', '-1', 'a number >= 0'],
    ]) {
      const r = await runCli(['evaluate', '--model', join(t.path, 'no-export'), flag, value]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`heprune: error: ${flag} ${value}: expected ${what}`);
    }
    for (const flag of ['--workers']) {
      const r = await runCli(['run', 'x.yaml', flag, '0']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`heprune: error: ${flag} 0: expected a positive integer`);
    }
  });

  test('serve: --demo-samples and --dataset-path without --demo are refused before any work, with the default value too', async () => {
    for (const args of [
      ['--demo-samples', '10'],
      ['--dataset-path', t.path],
    ]) {
      const r = await runCli(['serve', '--model', join(t.path, 'no-export'), ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('heprune: error: --demo-samples and --dataset-path go with --demo');
    }
  });

  test('--help works for every command', async () => {
    for (const args of [
      ['--help'],
      ['run', '--help'],
      ['train', '--help'],
      ['datasets', '--help'],
      ['datasets', 'fetch', '--help'],
      ['schema', '--help'],
    ]) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/heprune/);
    }
  });
});
