// heprune as a library: build a small model, compile it to a packed CKKS
// plan and write the export that heprune/server serves.
// Run: node docs/examples/library.mjs /tmp/heprune-example
import { buildModel, compile, initBackend, modelSchema, planCounts } from 'heprune';

const dir = process.argv[2] ?? '/tmp/heprune-example';
await initBackend('wasm');
// Untrained weights keep the example short; `run(await loadConfig('configs/quickstart/dense.yaml'))` trains one.
const model = buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), { inputShape: [12, 12, 1], numClasses: 5 });
const { plan, manifest } = await compile(model, { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 }, {
  dir, meta: { model: 'cryptonets-tiny', shape: [12, 12, 1], numClasses: 5, normalization: { kind: 'unit', mean: [0], std: [1] } },
});
const { total } = planCounts(plan);
console.log(`export in ${dir}: depth ${manifest.depth}, ${total.rotate} rotations, ${manifest.galoisKeySteps.length} Galois keys, ${manifest.weights.bytes} bytes of weights`);
model.dispose();
