import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { writeJsonAtomic } from '../../common/atomic-write.js';
import { schemaDocument } from '../../pipeline/config-schema.js';
import { handled } from '../errors.js';

interface Args { out?: string }

export const schemaCommand: CommandModule<object, Args> = {
  command: 'schema',
  describe: 'print (or write) the JSON Schema of pipeline configs, for editor completion and checking',
  builder: (y: Argv) => y.option('out', { type: 'string', describe: 'write to this file instead of stdout' }) as unknown as Argv<Args>,
  handler: handled(async (a: ArgumentsCamelCase<Args>) => {
    const schema = schemaDocument();
    if (a.out) await writeJsonAtomic(a.out, schema);
    else process.stdout.write(JSON.stringify(schema, null, 2) + '\n');
  }),
};
