import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { cryptonetsOptions, buildCryptonets } from './cryptonets.js';
import { lenet5Options, buildLenet5 } from './lenet5.js';
import { vgg5Options, hefnetOptions, buildConvnet } from './convnet.js';
import { resnetOptions, buildResnet } from './resnet.js';
import { mlpOptions, autoencoderOptions, buildMlp, buildAutoencoder } from './mlp.js';
import { onnxOptions, buildOnnx } from './onnx.js';
import { squeezenetOptions, buildSqueezenet } from './squeezenet.js';
import { factorizeForTraining } from '../factorize.js';
import type { ModelContext, Task } from './common.js';

/** The `model:` section of a config: one of the zoo's option schemas, chosen by `name`. */
export const modelSchema = z.discriminatedUnion('name', [
  cryptonetsOptions, lenet5Options, vgg5Options, hefnetOptions, resnetOptions, squeezenetOptions, mlpOptions, autoencoderOptions, onnxOptions,
]);
export type ModelConfig = z.infer<typeof modelSchema>;
/** The built-in architectures (`heprune train --model`); `onnx` is a model from a file, not one of them. */
export const MODEL_NAMES = ['cryptonets', 'lenet5', 'vgg5', 'hefnet', 'resnet20', 'squeezenet', 'mlp', 'autoencoder'] as const;

export function taskOf(cfg: ModelConfig): Task {
  if (cfg.name === 'onnx') return cfg.task;
  return cfg.name === 'autoencoder' ? 'reconstruction' : 'classification';
}

export function buildModel(cfg: ModelConfig, ctx: ModelContext): tf.LayersModel {
  const model = buildUnfactorized(cfg, ctx);
  return cfg.factorize ? factorizeForTraining(model, cfg.factorize) : model;
}

function buildUnfactorized(cfg: ModelConfig, ctx: ModelContext): tf.LayersModel {
  switch (cfg.name) {
    case 'cryptonets': return buildCryptonets(cfg, ctx);
    case 'lenet5': return buildLenet5(cfg, ctx);
    case 'vgg5': case 'hefnet': return buildConvnet(cfg, ctx);
    case 'resnet20': return buildResnet(cfg, ctx);
    case 'squeezenet': return buildSqueezenet(cfg, ctx);
    case 'mlp': return buildMlp(cfg, ctx);
    case 'autoencoder': return buildAutoencoder(cfg, ctx);
    case 'onnx': return buildOnnx(cfg, ctx);
  }
}
