import type { BackendName } from '../backend.js';
import type { Task } from '../zoo/common.js';

/** Messages between the training thread and its gradient workers. */
export interface InitMessage {
  type: 'init';
  /** model.toJSON(): the topology, custom layers included. */
  topology: string;
  backend: BackendName;
  task: Task;
  numClasses: number;
  shape: [number, number, number];
  rangePenalty?: { bound: number; weight: number };
}

export interface StepMessage {
  type: 'step';
  id: number;
  /** All model weights (trainable and BN statistics), when they changed since the last step. */
  weights?: Float32Array[];
  xs: Float32Array;
  labels: Int32Array;
  count: number;
}

export type ToWorker = InitMessage | StepMessage | { type: 'close' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'grads'; id: number; lossSum: number; correct: number; grads: Float32Array[] }
  | { type: 'error'; message: string };
