/** This process's command line as a user would type it again (arguments shell-quoted where needed). */
export function commandLine(): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['heprune', ...process.argv.slice(2).map(quote)].join(' ');
}
