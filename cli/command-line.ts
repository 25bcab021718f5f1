import { shellQuote } from '../common/shell-quote.js';

/** This process's command line as a user would type it again (arguments shell-quoted where needed). */
export function commandLine(): string {
  return ['heprune', ...process.argv.slice(2).map(shellQuote)].join(' ');
}
