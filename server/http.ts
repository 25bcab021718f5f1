import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ClientCard } from '../client/card.js';
import { registerDemo, type DemoAssets } from './demo.js';
import { RequestError } from './keys.js';
import { HeServer, type ServerOptions } from './server.js';

export interface HttpOptions extends ServerOptions {
  /** Export directory (manifest.json + weights.bin). */
  model: string;
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Milliseconds one request may take, refresh rounds excluded (each round is its own request; default 10 minutes). */
  requestTimeoutMs?: number;
  /** Log requests (fastify's logger). */
  log?: boolean;
  /** Also serve the demo page (heprune serve --demo): its files, made from the export's client card. */
  demo?: (card: ClientCard) => Promise<DemoAssets>;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  server: HeServer;
  close(): Promise<void>;
}

const bearer = (req: FastifyRequest) => /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];

/**
 * The HTTP face of a HeServer (docs/deploy.md, "Protocol"): GET /card,
 * POST /sessions, POST /sessions/:id/infer, POST /sessions/:id/jobs/:job/refresh,
 * DELETE /sessions/:id. Binary bodies (application/octet-stream frames),
 * JSON errors { statusCode, error, message }.
 */
export function httpApp(server: HeServer, o: Pick<HttpOptions, 'requestTimeoutMs' | 'log'> & { demo?: DemoAssets } = {}): FastifyInstance {
  const limits = server.card.limits!;
  const app = Fastify({
    logger: o.log ?? false,
    requestTimeout: o.requestTimeoutMs ?? 600_000,
    connectionTimeout: 0,
    bodyLimit: limits.inferBytes,
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((e: Error & { statusCode?: number }, _req, reply) => {
    const status = e instanceof RequestError ? e.status : e.statusCode && e.statusCode < 500 ? e.statusCode : 500;
    const text = status === 500 ? `internal error: ${e.message}` : e.message;
    void reply.status(status).send({ statusCode: status, error: status < 500 ? 'Bad Request' : 'Server Error', message: text });
  });
  const binary = (reply: FastifyReply, b: Uint8Array) =>
    reply.header('content-type', 'application/octet-stream').send(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  const body = (req: FastifyRequest) => {
    if (!Buffer.isBuffer(req.body))
      throw new RequestError(415, 'send the frame as the binary body (content-type: application/octet-stream)');
    return new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  };

  app.get('/card', async () => server.card);
  app.get('/health', async () => ({ ok: true, workers: server.workers, ...server.usage() }));
  app.post('/sessions', { bodyLimit: limits.keysBytes }, async (req, reply) => {
    reply.status(201);
    return server.openSession(body(req));
  });
  app.post<{ Params: { id: string } }>('/sessions/:id/infer', { bodyLimit: limits.inferBytes }, async (req, reply) => {
    return binary(reply, await server.infer(req.params.id, bearer(req), body(req)));
  });
  app.post<{ Params: { id: string; job: string } }>(
    '/sessions/:id/jobs/:job/refresh',
    { bodyLimit: limits.refreshBytes },
    async (req, reply) => {
      return binary(reply, await server.refresh(req.params.id, bearer(req), req.params.job, body(req)));
    },
  );
  app.delete<{ Params: { id: string } }>('/sessions/:id', async (req, reply) => {
    await server.closeSession(req.params.id, bearer(req));
    return reply.status(204).send();
  });
  if (o.demo) registerDemo(app, o.demo);
  return app;
}

/** Loads the export, starts the workers and listens (`heprune serve`). */
export async function serve(o: HttpOptions): Promise<RunningServer> {
  const server = await HeServer.load(o.model, o);
  let app: FastifyInstance;
  try {
    app = httpApp(server, { ...o, demo: o.demo && (await o.demo(server.card)) });
    await app.listen({ port: o.port ?? 8080, host: o.host ?? '127.0.0.1' });
  } catch (e) {
    await server.close();
    throw e;
  }
  const addr = app.server.address();
  const url =
    typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : String(addr);
  return {
    url,
    app,
    server,
    close: async () => {
      await app.close();
      await server.close();
    },
  };
}
