import * as tf from '@tensorflow/tfjs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, replaceDirAtomic } from '../common/atomic-write.js';
import { UserError } from '../common/errors.js';
import { exists } from '../datasets/fs-util.js';
import './layers/poly-activation.js';
import './layers/grouped-conv.js';

/**
 * Checkpoints in the tfjs layers format (model.json + weights.bin, loadable by
 * tf.loadLayersModel), written without tfjs-node through a custom IO handler.
 * A training checkpoint also holds the optimizer's state and a state.json,
 * and the whole directory is replaced atomically.
 */
/** A tensor with its name, as optimizers list their state. */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** What checkpoints read and restore of an optimizer's state (a tfjs optimizer is one). */
export interface OptimizerState {
  getWeights(): Promise<NamedTensor[]>;
  setWeights(named: NamedTensor[]): Promise<void>;
}

export interface CheckpointState {
  epoch: number;
  [key: string]: unknown;
}

function flat(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (!data) return new ArrayBuffer(0);
  return Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
}

async function serializeTensors(named: NamedTensor[]): Promise<{ specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer }> {
  const map: tf.NamedTensorMap = {};
  const order: string[] = [];
  named.forEach((n, i) => {
    // Keep positional order (tfjs optimizers restore state by position), names may repeat.
    const key = `${i}:${n.name}`;
    map[key] = n.tensor;
    order.push(key);
  });
  const { data, specs } = await tf.io.encodeWeights(map);
  return { specs, data: flat(data) };
}

export async function writeModelFiles(dir: string, model: tf.LayersModel, extra: Record<string, unknown> = {}): Promise<void> {
  await ensureDir(dir);
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const manifest = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        heprune: extra,
      };
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(flat(artifacts.weightData)));
      await writeFile(join(dir, 'model.json'), JSON.stringify(manifest));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

export async function saveCheckpoint(
  dir: string,
  model: tf.LayersModel,
  state: CheckpointState,
  optimizer?: OptimizerState,
): Promise<void> {
  const optState = optimizer ? await serializeTensors(await optimizer.getWeights()) : undefined;
  await replaceDirAtomic(dir, async (tmp) => {
    await writeModelFiles(tmp, model);
    if (optState) {
      await writeFile(join(tmp, 'optimizer.bin'), new Uint8Array(optState.data));
      await writeFile(join(tmp, 'optimizer.json'), JSON.stringify(optState.specs));
    }
    await writeFile(join(tmp, 'state.json'), JSON.stringify(state, null, 2));
  });
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const mj = join(dir, 'model.json');
  let manifest: { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    manifest = JSON.parse(await readFile(mj, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read model ${mj}: ${(e as Error).message}`);
  }
  const specs = manifest.weightsManifest.flatMap((g) => g.weights);
  const buf = await readFile(join(dir, 'weights.bin'));
  const expected = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0);
  if (buf.byteLength !== expected)
    throw new UserError(
      `${join(dir, 'weights.bin')}: ${buf.byteLength} bytes, model.json describes ${expected}; the checkpoint is corrupt`,
    );
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: manifest.modelTopology, weightSpecs: specs, weightData }));
}

export async function loadCheckpointState(dir: string): Promise<CheckpointState | undefined> {
  const p = join(dir, 'state.json');
  if (!(await exists(p))) return undefined;
  return JSON.parse(await readFile(p, 'utf8')) as CheckpointState;
}

/** Restores optimizer state saved by saveCheckpoint (call after the optimizer has seen one step's variable order). */
export async function loadOptimizerState(dir: string, optimizer: OptimizerState): Promise<boolean> {
  const jp = join(dir, 'optimizer.json');
  if (!(await exists(jp))) return false;
  const specs = JSON.parse(await readFile(jp, 'utf8')) as tf.io.WeightsManifestEntry[];
  const buf = await readFile(join(dir, 'optimizer.bin'));
  const decoded = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  const named = specs.map((s) => ({ name: s.name.slice(s.name.indexOf(':') + 1), tensor: decoded[s.name] }));
  await optimizer.setWeights(named);
  return true;
}
