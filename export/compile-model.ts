import type * as tf from '@tensorflow/tfjs';
import type { Plan, TileShape } from '../plan/plan.js';
import { compileChain } from './compile.js';
import { lowerModel } from './lower.js';
import { compileOptions, type ExportConfig } from './options.js';

/** The geometry a pruned model keeps: the channel blocks and tiles its sub-blocks and tiles were aligned with. */
export interface PlanGeometry {
  channelBlocks?: Plan['channelBlocks'];
  tiles?: TileShape;
}

/** A trained model's plan under the export config, with a pruned model's geometry where it has one. */
export function compileModel(model: tf.LayersModel, e: ExportConfig, like: PlanGeometry = {}): Plan {
  return compileChain(lowerModel(model, { maxQuadraticShift: e.maxQuadraticShift }), {
    ...compileOptions(e),
    ...(like.channelBlocks ? { channelBlocks: like.channelBlocks } : {}),
    ...(like.tiles ? { tiles: like.tiles } : {}),
  });
}
