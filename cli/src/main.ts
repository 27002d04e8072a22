import { parseArgs } from 'node:util';
import { COMMANDS } from './commands';
import { Context, type ContextOptions } from './context';
import { CliError } from './errors';
import { type Io, terminalIo } from './io';

export const USAGE = `dify-aws: operate a deployed Dify stack

usage: dify-aws <command> [options]

${COMMANDS.map((command) => command.usage).join('\n')}

every command: --stack NAME (default Dify) --region REGION --json --yes (no confirmation prompts)
credentials: the AWS SDK's standard chain (AWS_PROFILE, environment, instance role)`;

const OPTIONS = {
  stack: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean' },
  help: { type: 'boolean' },
  provider: { type: 'string' },
  id: { type: 'string' },
  weight: { type: 'string' },
  verify: { type: 'boolean' },
  'base-url': { type: 'string' },
  models: { type: 'string' },
  cidrs: { type: 'string' },
  rpm: { type: 'string' },
  tpm: { type: 'string' },
  to: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'force-secret-key': { type: 'boolean' },
  undo: { type: 'boolean' },
  release: { type: 'boolean' },
  'max-age-days': { type: 'string' },
  'max-key-age-days': { type: 'string' },
  timeout: { type: 'string' },
  since: { type: 'string' },
  start: { type: 'string' },
  end: { type: 'string' },
} as const;

/** Runs one command line; returns the exit code. Never throws. */
export async function run(
  argv: string[],
  io: Io = terminalIo(),
  overrides: Partial<ContextOptions> = {},
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    io.err(`dify-aws: ${(error as Error).message.split('\n')[0]}; see dify-aws --help`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [name, action, ...rest] = positionals;
  if (values.help === true || name === undefined || name === 'help') {
    io.out(USAGE);
    return name === undefined && values.help !== true ? 2 : 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) {
    const names = COMMANDS.map((candidate) => candidate.name);
    io.err(
      `dify-aws: unknown command '${name}'; expected ${names.slice(0, -1).join(', ')} or ${names.at(-1)} (dify-aws --help)`,
    );
    return 2;
  }
  const ctx = new Context({
    io,
    stackName: values.stack ?? 'Dify',
    region: values.region,
    json: values.json === true,
    yes: values.yes === true,
    ...overrides,
  });
  try {
    await command.run(ctx, { action, rest, options: values as Record<string, string | boolean | undefined> });
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`dify-aws: ${error.message}`);
      return error.exitCode;
    }
    // Unexpected: name the kind only; the message of an SDK error can quote request parameters.
    io.err(`dify-aws: unexpected ${(error as Error)?.name ?? 'error'}; nothing more is printed so that no secret is`);
    return 1;
  } finally {
    ctx.destroy();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
