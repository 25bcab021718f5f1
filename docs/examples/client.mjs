// heprune/client against `heprune serve`: fetch the card, make keys, open a
// session, run one encrypted inference, print what it took.
// Run: heprune serve --model /tmp/heprune-example --port 8080 &  node docs/examples/client.mjs http://127.0.0.1:8080
import { RemoteModel } from 'heprune/client';

const remote = await RemoteModel.connect(process.argv[2] ?? 'http://127.0.0.1:8080');
try {
  const [h, w, c] = remote.client.card.model.shape ?? remote.client.card.input.shape;
  const pixels = Uint8Array.from({ length: h * w * c }, (_, i) => (i * 37) % 256);  // an image's raw 0..255 HWC pixels
  const r = await remote.infer(remote.client.normalize(pixels));
  console.log({ prediction: r.prediction, output: r.output.map((v) => +v.toFixed(4)), keysUp: remote.info.keyBytes,
    bytesUp: r.bytesUp, bytesDown: r.bytesDown, roundTripMs: Math.round(r.roundTripMs), refreshRounds: r.refreshRounds });
} finally {
  await remote.close();
}
