import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../../common/atomic-write.js';
import { UserError } from '../../common/errors.js';
import { exists } from '../../datasets/fs-util.js';
import { lowerModel } from '../../export/lower.js';
import { initBackend } from '../../train/backend.js';
import { checkImport } from '../../train/import/onnx-check.js';
import { importOnnx } from '../../train/import/onnx-import.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { handled } from '../errors.js';

interface Args {
  file: string;
  out?: string;
  dataset?: string;
  name?: string;
}

/** The dataset an input shape most likely comes from (H, W, C). */
const GUESS: Record<string, string> = { '28,28,1': 'mnist', '32,32,3': 'cifar10' };

export const importCommand: CommandModule<object, Args> = {
  command: 'import <file>',
  describe:
    'check an HE-friendly ONNX model (e.g. from torch.onnx.export) and write a pipeline config that fine-tunes, prunes and exports it (model.name: onnx)',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'the .onnx file' })
      .option('out', { type: 'string', describe: 'write the config here (default: print it)' })
      .option('dataset', { type: 'string', describe: 'dataset name (default: guessed from the input shape: mnist, cifar10)' })
      .option('name', { type: 'string', describe: 'run name (default: the file name)' }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    await initBackend('wasm');
    let bytes: Buffer;
    try {
      bytes = await readFile(a.file);
    } catch (e) {
      throw new UserError(`${a.file}: ${(e as Error).message}`);
    }
    const m = importOnnx(bytes, a.file);
    try {
      lowerModel(m.model);
      const check = await checkImport(bytes, m);
      if ('relativeError' in check && check.relativeError > 1e-3)
        throw new Error(
          `${a.file}: the imported model differs from onnxruntime's by ${check.relativeError.toExponential(2)} of the output's size: an importer bug, please report it`,
        );
      const dataset = a.dataset ?? GUESS[m.inputShape.join()];
      if (!dataset) throw new UserError(`${a.file}: input [${m.inputShape.join(', ')}] (H, W, C): pass --dataset`);
      const count = (c: string | typeof GroupedConv2D) =>
        m.model.layers.filter((l) => (typeof c === 'string' ? l.getClassName() === c : l instanceof c)).length;
      process.stderr.write(
        `heprune import: ${a.file} (${m.producer}, opset ${m.opset}): input ${m.inputShape.join('x')}, ${m.outputs} outputs, ` +
          `${m.model.countParams()} parameters; ${count(GroupedConv2D)} conv, ${count('Dense')} dense, ${count('BatchNormalization')} batch norm, ` +
          `${count(PolyActivation.className)} polynomial activations, ${count('Add')} residual adds; HE lowering: ok; ` +
          ('relativeError' in check
            ? `matches onnxruntime to ${check.relativeError.toExponential(1)} on ${check.samples} random inputs\n`
            : `not checked against onnxruntime (${check.skipped})\n`),
      );
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const name =
        a.name ??
        basename(a.file)
          .replace(/\.onnx$/i, '')
          .replace(/[^A-Za-z0-9._-]/g, '-');
      const config = {
        name,
        dataset: { name: dataset, normalize: 'standard' },
        model: { name: 'onnx', file: a.file, sha256 },
        train: { epochs: 1, learningRate: 0.0005 },
        export: { onnx: true },
        evaluate: { samples: 20, encrypted: true },
      };
      const text =
        `# yaml-language-server: $schema=heprune.schema.json\n` +
        `# Imported from ${a.file} (${m.producer}, opset ${m.opset}) by heprune import. dataset.normalize: set the\n` +
        `# normalisation the model was trained with; train: fine-tunes the imported weights (epochs: more to train on);\n` +
        `# add a prune: section (configs/spencnn, configs/hepex) to prune it; export.onnx writes export/model.onnx.\n` +
        stringify(config);
      if (!a.out) process.stdout.write(text);
      else {
        if (await exists(a.out)) throw new UserError(`--out ${a.out}: exists; remove it or choose another file`);
        await writeFileAtomic(a.out, text);
        process.stderr.write(`heprune import: wrote ${a.out}; run it with: heprune run ${a.out}\n`);
      }
    } finally {
      m.model.dispose();
    }
  }),
};
