/**
 * heprune/server: serve an export for encrypted inference. Holds the plan,
 * the packed weights and the sessions' evaluation keys; never a secret key.
 * See docs/deploy.md.
 */
export { HeServer, type ServerOptions, type SessionOpened } from './server.js';
export { httpApp, serve, type HttpOptions, type RunningServer } from './http.js';
export type { DemoAssets } from './demo.js';
export { clientCard, requestLimits } from './card.js';
export { parseKeys, RequestError } from './keys.js';
export type { ClientCard } from '../client/card.js';
