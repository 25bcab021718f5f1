// heprune/server without HTTP: load an export, open a session with a
// client's evaluation keys, evaluate one input, close. (heprune/client plays
// the client in the same process here; over a network only the frames cross.)
// Run: node docs/examples/server.mjs /tmp/heprune-example
import { HeServer } from 'heprune/server';
import { HeClient, decodeFrame } from 'heprune/client';

const server = await HeServer.load(process.argv[2] ?? '/tmp/heprune-example', { workers: 1 });
const client = await HeClient.create(server.card);           // secret key stays in `client`
try {
  const { session, token } = await server.openSession(client.evaluationKeys());
  const x = Float64Array.from({ length: client.card.input.slotOf.length }, (_, i) => Math.sin(i));
  let frame = await server.infer(session, token, client.encryptInput(x, session));
  // A plan with masked refresh answers with refresh frames until the output frame.
  for (let f = decodeFrame(frame); f.kind === 'refresh'; f = decodeFrame(frame)) frame = await server.refresh(session, token, f.header.job, client.refresh(frame));
  console.log('encrypted output:', Array.from(client.decryptOutput(frame), (v) => +v.toFixed(4)));
  await server.closeSession(session, token);
} finally {
  client.delete();
  await server.close();
}
