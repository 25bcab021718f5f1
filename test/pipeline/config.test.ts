import { parseConfig, parseConfigs, applyOverrides } from '../../pipeline/load-config.js';
import { jsonSchema, schemaDocument } from '../../pipeline/config-schema.js';
import { readFileSync } from 'node:fs';

const require_text = (u: URL) => readFileSync(u, 'utf8');

const ok = `
name: t1
dataset: { name: mnist }
model: { name: lenet5, groups: 4 }
train: { epochs: 2, batchSize: 32 }
`;

function err(text: string, sets: string[] = []): string {
  try {
    parseConfig(text, 'cfg.yaml', sets);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('config validation', () => {
  test('a valid config gets its defaults filled in', () => {
    const c = parseConfig(ok, 'cfg.yaml');
    expect(c.outDir).toBe('runs');
    expect(c.train?.optimizer).toBe('adam');
    expect(c.train?.backend).toBe('auto');
    expect(c.model?.name).toBe('lenet5');
    expect(c.model && 'activation' in c.model && c.model.activation).toBe('quadratic');
    expect(c.dataset.validation).toBe(0.1);
  });

  test('error messages name the file, the key, the value and what was expected', () => {
    expect(err(ok.replace('epochs: 2', 'epochs: "two"'))).toMatchInlineSnapshot(`
"invalid config:
  cfg.yaml: train.epochs: Invalid input: expected number, received string (got "two")"
`);
    expect(err(ok.replace('name: lenet5', 'name: lenet7'))).toMatch(
      /cfg.yaml: model.name: Invalid discriminator value. Expected 'cryptonets' \| 'lenet5' .*\(got "lenet7"\)/,
    );
    expect(err(ok.replace('name: mnist', 'name: imagenet'))).toMatch(
      /cfg.yaml: dataset.name: Invalid option: expected one of .*"mnist".*\(got "imagenet"\)/,
    );
    expect(err(ok.replace('batchSize: 32', 'batchSize: -3'))).toMatch(
      /cfg.yaml: train.batchSize: Too small: expected number to be >0 \(got -3\)/,
    );
    expect(err(ok.replace('groups: 4', 'groups: 4, grups: 2'))).toMatch(/cfg.yaml: model: unknown key 'grups'/);
    expect(err(ok + 'extra: 1\n')).toMatch(/cfg.yaml: unknown key 'extra'/);
    expect(err(ok.replace('name: t1', 'name: "a/b"'))).toMatch(/cfg.yaml: name: must be letters, digits.*\(got "a\/b"\)/);
    expect(err(ok.replace('name: t1\n', ''))).toMatch(/cfg.yaml: name: Invalid input: expected string, received undefined \(got nothing\)/);
  });

  test("squeezenet's presets and blocks: errors name the block and its key", () => {
    const model = (m: string) => ok.replace('model: { name: lenet5, groups: 4 }', `model: ${m}`);
    expect(err(model('{ name: squeezenet, preset: remove_fire5 }'))).toMatch(
      /cfg.yaml: model.preset: Invalid option: expected one of "baseline"\|"remove_fire4"\|"remove_fire34"\|"remove_fire234" \(got "remove_fire5"\)/,
    );
    expect(err(model('{ name: squeezenet, preset: remove_fire4, blocks: [{ kind: conv, filters: 8 }] }'))).toMatch(
      /cfg.yaml: model.blocks: give model.preset or model.blocks, not both/,
    );
    expect(err(model('{ name: squeezenet, blocks: [{ kind: conv, filters: 8 }, { kind: fire, squeeze: 0, expand: 4 }] }'))).toMatch(
      /cfg.yaml: model.blocks.1.squeeze: Too small: expected number to be >0 \(got 0\)/,
    );
    expect(err(model('{ name: squeezenet, blocks: [{ kind: fire, squeeze: 4 }] }'))).toMatch(
      /cfg.yaml: model.blocks.0.expand: Invalid input: expected number, received undefined \(got nothing\)/,
    );
    expect(err(model('{ name: squeezenet, blocks: [{ kind: firee, squeeze: 4, expand: 2 }] }'))).toMatch(
      /cfg.yaml: model.blocks.0.kind: Invalid discriminator value. Expected 'conv' \| 'fire' \| 'mobile' \(got "firee"\)/,
    );
    expect(err(model('{ name: squeezenet, blocks: [{ kind: mobile, filters: 8, middleActivation: maybe }] }'))).toMatch(
      /cfg.yaml: model.blocks.0.middleActivation: Invalid input: expected boolean, received string \(got "maybe"\)/,
    );
    expect(err(model('{ name: squeezenet, blocks: [{ kind: conv, filters: 8, kernelSize: 2 }] }'))).toMatch(
      /cfg.yaml: model.blocks.0.kernelSize: Invalid option: expected one of 1\|3\|5 \(got 2\)/,
    );
    expect(err(model('{ name: squeezenet, blocks: [{ kind: conv, filters: 8, stride: 2 }] }'))).toMatch(
      /cfg.yaml: model.blocks.0: unknown key 'stride'/,
    );
    expect(err(model('{ name: squeezenet, blocks: [] }'))).toMatch(/cfg.yaml: model.blocks: Too small: expected array to have >=1 items/);
  });

  test('malformed YAML reports line and column', () => {
    expect(err('name: x\ndataset: { name: mnist\nmodel: [')).toMatch(/^cfg.yaml: malformed YAML at line \d+, column \d+: /);
    expect(err('name: x\nname: y\ndataset: {name: mnist}')).toMatch(/cfg.yaml: malformed YAML at line 2.*Map keys must be unique/);
    expect(err('- a\n- b')).toMatch(/cfg.yaml: expected a mapping of sections/);
  });

  test('--set overrides keep YAML types and are validated like the file', () => {
    const c = parseConfig(ok, 'cfg.yaml', ['train.epochs=7', 'model.activation=square', 'train.clipNorm=null']);
    expect(c.train?.epochs).toBe(7);
    expect(c.train?.clipNorm).toBeNull();
    expect(err(ok, ['train.epochs=abc'])).toMatch(/train.epochs: Invalid input: expected number, received string \(got "abc"\)/);
    expect(() => applyOverrides({}, ['novalue'])).toThrow(/--set novalue: expected key.path=value/);
  });

  test('the shipped configs/heprune.schema.json is the one the code generates (regenerate with npm run schema)', async () => {
    const { readFile } = await import('node:fs/promises');
    const shipped = JSON.parse(await readFile(new URL('../../../configs/heprune.schema.json', import.meta.url), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(schemaDocument())));
  });

  test('every shipped config validates', async () => {
    const { readdir } = await import('node:fs/promises');
    const root = new URL('../../../configs/', import.meta.url);
    const files: string[] = [];
    for (const e of await readdir(root, { recursive: true })) if (String(e).endsWith('.yaml')) files.push(String(e));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(() => parseConfigs(require_text(new URL(f, root)), `configs/${f}`)).not.toThrow();
  });

  test('the JSON Schema describes the keys users script against', () => {
    const s = JSON.stringify(jsonSchema());
    for (const key of ['"dataset"', '"model"', '"train"', '"epochs"', '"batchSize"', '"backend"', '"workers"', '"lenet5"', '"resnet20"']) {
      expect(s).toContain(key);
    }
  });
});
