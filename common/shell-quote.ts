/** An argument as a POSIX shell reads it back: as it is when it is plain, else single-quoted. */
export const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
