import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { writeFileAtomic, writeJsonAtomic } from '../../common/atomic-write.js';
import { schemaDocument } from '../../pipeline/config-schema.js';
import { schemaMarkdown } from '../../pipeline/schema-docs.js';
import { handled } from '../errors.js';

interface Args {
  out?: string;
  markdown?: boolean;
}

export const schemaCommand: CommandModule<object, Args> = {
  command: 'schema',
  describe:
    'print (or write) the JSON Schema of pipeline configs, for editor completion and checking; --markdown: the configuration reference (docs/configuration.md)',
  builder: (y: Argv) =>
    y.option('out', { type: 'string', describe: 'write to this file instead of stdout' }).option('markdown', {
      type: 'boolean',
      default: false,
      describe: 'the configuration reference as markdown (every key with its type, default and description) instead of the JSON Schema',
    }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const text = a.markdown ? schemaMarkdown() : JSON.stringify(schemaDocument(), null, 2) + '\n';
    if (a.out) await (a.markdown ? writeFileAtomic(a.out, text) : writeJsonAtomic(a.out, schemaDocument()));
    else process.stdout.write(text);
  }),
};
