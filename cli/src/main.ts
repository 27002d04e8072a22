import { parseArgs } from 'node:util';
import { version as PACKAGE_VERSION } from '../../package.json';
import type { FormSpec } from './command';
import { COMMANDS } from './commands';
import { Context, type ContextOptions } from './context';
import { type CliError, toCliError, UsageError } from './errors';
import { type Io, terminalIo } from './io';
import { checkArgs, commandHelp, COMMON_OPTIONS, findAction, formHelp, globalHelp, shown } from './spec';

/** The version of dify-aws: the project's, from package.json (bundled into the built CLI). */
export const VERSION: string = PACKAGE_VERSION;

/** `dify-aws --help`: every command, the common options, errors and exit codes. */
export const USAGE = globalHelp(COMMANDS);

/** Every form of every command, for the option table below. */
const FORMS: readonly FormSpec[] = COMMANDS.flatMap((c) => (c.actions ? [...c.actions] : [c.form!]));

/**
 * The options parseArgs knows: the common ones, `--version`, and every command's, each a string (it has
 * a value placeholder) or a flag. main.test.ts holds each name to one type across commands.
 */
export const OPTIONS = Object.fromEntries(
  [...COMMON_OPTIONS, ...FORMS.flatMap((f) => f.options), { name: 'version' }].map((o) => [
    o.name,
    { type: 'value' in o && o.value !== undefined ? ('string' as const) : ('boolean' as const) },
  ]),
);

/** Prints an error: one line on stderr, or with `--json` one JSON object on stderr; returns its exit code. */
function report(io: Io, error: CliError, json: boolean): number {
  if (json) {
    io.err(JSON.stringify({ error: { kind: error.kind, message: error.message, exitCode: error.exitCode } }));
  } else io.err(`dify-aws: ${error.message}`);
  return error.exitCode;
}

/** `dify-aws help [command [action]]`, `dify-aws command [action] --help`: the help asked for, or a UsageError. */
function helpFor(name: string | undefined, action: string | undefined): string {
  if (name === undefined) return USAGE;
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) throw unknownCommand(name);
  if (command.actions === undefined || action === undefined) return commandHelp(command);
  return formHelp(`dify-aws ${command.name} ${action}`, findAction(command, action));
}

function unknownCommand(name: string): UsageError {
  const names = COMMANDS.map((candidate) => candidate.name);
  return new UsageError(
    `unknown command '${shown(name)}'; expected ${names.slice(0, -1).join(', ')} or ${names.at(-1)} (dify-aws --help)`,
  );
}

/**
 * Runs one command line; returns the exit code. Never throws. The arguments are checked against the
 * command's declared ones (spec.ts) before the context makes any AWS client.
 */
export async function run(
  argv: string[],
  io: Io = terminalIo(),
  overrides: Partial<ContextOptions> = {},
): Promise<number> {
  const json = argv.includes('--json');
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return report(io, new UsageError(`${(error as Error).message.split('\n')[0]}; see dify-aws --help`), json);
  }
  const { values, positionals } = parsed;
  const [name, action, ...rest] = positionals;
  if (values.version === true) {
    io.out(values.json === true ? JSON.stringify({ version: VERSION }) : `dify-aws ${VERSION}`);
    return 0;
  }
  if (name === undefined && values.help !== true) {
    io.out(USAGE);
    return 2;
  }
  if (name === undefined || name === 'help' || values.help === true) {
    try {
      io.out(name === 'help' ? helpFor(action, rest[0]) : helpFor(name, action));
      return 0;
    } catch (error) {
      return report(io, toCliError(error), json);
    }
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) return report(io, unknownCommand(name), json);
  const options = values as Record<string, string | boolean | undefined>;
  const args = { action, rest, options };
  try {
    checkArgs(command, args, (overrides.now ?? (() => new Date()))());
  } catch (error) {
    return report(io, toCliError(error), json);
  }
  const ctx = new Context({
    io,
    stackName: (values.stack as string | undefined) ?? 'Dify',
    region: values.region as string | undefined,
    json: values.json === true,
    yes: values.yes === true,
    ...overrides,
  });
  try {
    await command.run(ctx, args);
    return 0;
  } catch (error) {
    return report(io, toCliError(error), json);
  } finally {
    ctx.destroy();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
