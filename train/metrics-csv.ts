import { createObjectCsvStringifier } from 'csv-writer';
import { writeFileAtomic } from '../common/atomic-write.js';

export interface EpochMetrics {
  epoch: number;
  learningRate: number;
  trainLoss: number;
  trainAccuracy?: number;
  valLoss: number;
  valAccuracy?: number;
  seconds: number;
  msPerStep: number;
  /** Of msPerStep, the time spent preparing batches on the main thread (decode, normalise, augment). */
  dataMsPerStep?: number;
}

const COLUMNS: { id: keyof EpochMetrics; title: string }[] = [
  { id: 'epoch', title: 'epoch' },
  { id: 'learningRate', title: 'learning_rate' },
  { id: 'trainLoss', title: 'train_loss' },
  { id: 'trainAccuracy', title: 'train_accuracy' },
  { id: 'valLoss', title: 'val_loss' },
  { id: 'valAccuracy', title: 'val_accuracy' },
  { id: 'seconds', title: 'seconds' },
  { id: 'msPerStep', title: 'ms_per_step' },
  { id: 'dataMsPerStep', title: 'batch_ms_per_step' },
];

/** Rewrites the whole metrics CSV from the history (atomic, so a resumed run never sees a torn file). */
export async function writeMetricsCsv(path: string, history: EpochMetrics[]): Promise<void> {
  const s = createObjectCsvStringifier({ header: COLUMNS });
  await writeFileAtomic(path, s.getHeaderString()! + s.stringifyRecords(history));
}
