import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { idxFamilySource } from './mnist.js';
import { UserError } from '../common/errors.js';

const DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';
const DEBIAN_PACKAGE = 'dataset-fashion-mnist';

export const fashionMnistSource = idxFamilySource({
  name: 'fashion-mnist',
  description: 'Fashion-MNIST, 60k/10k 28x28 grey clothing images (IDX .gz, Debian package dataset-fashion-mnist)',
  classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  defaultDir: () => DEBIAN_DIR,
  howToGet: `\`heprune datasets fetch fashion-mnist\` (runs \`apt-get install -y ${DEBIAN_PACKAGE}\`, needs root), or set dataset.path to a directory with the four IDX .gz files`,
  async fetch() {
    if (process.getuid?.() !== 0) {
      throw new UserError(
        `fetching fashion-mnist installs the Debian package ${DEBIAN_PACKAGE}; run as root: apt-get update && apt-get install -y ${DEBIAN_PACKAGE}`,
      );
    }
    const run = promisify(execFile);
    try {
      await run('apt-get', ['install', '-y', DEBIAN_PACKAGE], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch {
      // The package list may be stale on a fresh machine: update once and retry.
      await run('apt-get', ['update']);
      await run('apt-get', ['install', '-y', DEBIAN_PACKAGE], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    }
    return DEBIAN_DIR;
  },
});
