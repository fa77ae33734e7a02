import { readFile } from 'node:fs/promises';
import { dumpParseResult } from '../../dockerfile/dump.js';
import { parseDockerfile } from '../../dockerfile/parser.js';
import { parseStages } from '../../dockerfile/stages.js';
import { DockerfileError, NotFoundError, UsageError } from '../../errors.js';
import { type Command, type CommandIO, flagBool, type ParsedArgs } from '../command.js';

async function readInput(path: string, io: CommandIO): Promise<Buffer> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const c of io.stdin) chunks.push(Buffer.from(c as Buffer));
    return Buffer.concat(chunks);
  }
  try {
    return await readFile(path.startsWith('/') ? path : `${io.cwd}/${path}`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`Cannot read Dockerfile ${JSON.stringify(path)}: no such file`, { cause: e });
    if (code === 'EISDIR') throw new UsageError(`Cannot read Dockerfile ${JSON.stringify(path)}: it is a directory`, { hint: 'Pass the Dockerfile itself, e.g. "kiln debug parse ./Dockerfile".' });
    throw new UsageError(`Cannot read Dockerfile ${JSON.stringify(path)}: ${(e as Error).message}`, { cause: e });
  }
}

const parse: Command = {
  name: 'parse',
  summary: 'Parse a Dockerfile and print its typed instructions as JSON',
  usage: 'debug parse [--dump] FILE',
  details: 'FILE "-" reads standard input. --dump prints the low-level parse tree in BuildKit\'s dump format.',
  flags: [{ name: 'dump', type: 'boolean', description: "Print the parse tree in BuildKit's dump format" }],
  async run(args: ParsedArgs, io: CommandIO): Promise<number> {
    if (args.positionals.length !== 1) {
      throw new UsageError(`"kiln debug parse" takes exactly one FILE, got ${args.positionals.length}`, { hint: 'Usage: kiln debug parse [--dump] FILE' });
    }
    const file = args.positionals[0]!;
    const input = await readInput(file, io);
    if (flagBool(args, 'dump')) {
      try {
        io.stdout.write(dumpParseResult(parseDockerfile(input, { file })));
      } catch (e) {
        if (e instanceof DockerfileError) Object.assign(e, { sources: new Map([[file, new TextDecoder().decode(input)]]) });
        throw e;
      }
      return 0;
    }
    const { source: _source, ...df } = parseStages(input, { file });
    io.stdout.write(JSON.stringify(df, null, 2) + '\n');
    return 0;
  },
};

export const debugCommand: Command = {
  name: 'debug',
  summary: 'Inspect how kiln reads its inputs',
  usage: 'debug <command> [flags]',
  flags: [],
  subcommands: [parse],
};
