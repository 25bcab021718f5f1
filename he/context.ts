import type { HeParams } from './params.js';
import { CkksContext as Base } from './ckks-context.js';
import { loadSeal, type Seal } from './seal-module.js';

/**
 * The CKKS context on the server side's node-seal instance by default (its
 * heap is watched, see he/seal-module); he/ckks-context is the same class
 * without the file-system loader, for the client.
 */
export class CkksContext extends Base {
  static override async create(params: HeParams, seal?: Seal): Promise<Base> {
    return Base.create(params, seal ?? (await loadSeal()));
  }
}
