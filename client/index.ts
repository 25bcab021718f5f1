/**
 * heprune/client: the key holder's side of encrypted inference. No tfjs and
 * no file system: it runs in Node and (bundled with node-seal's browser
 * build) in a browser. See docs/deploy.md.
 */
export { HeClient, type ClientOptions } from './client.js';
export { RemoteModel, RemoteError, type RemoteResult, type SessionInfo } from './remote.js';
export { parseCard, cardLayout, normalizePixels, CARD_FORMAT, type ClientCard } from './card.js';
export { encodeFrame, decodeFrame, FrameError, FRAME_KINDS, FRAME_VERSION, type Frame, type FrameHeader, type FrameKind } from './wire.js';
