import type { ActionSpec, Command, CommandArgs, FormSpec, OptionSpec } from './command';
import { UsageError } from './errors';

/**
 * The command line as each command declares it (command.ts): checked here before the context makes any
 * AWS client, and rendered as each command's and action's `--help`.
 */

/** A value as an error message quotes it: options never carry secrets (those come from stdin), but may be long. */
export const shown = (value: string) => (value.length > 40 ? `${value.slice(0, 40)}…` : value);

/** The options every command takes. */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'stack',
    value: 'NAME',
    description: 'the deployment: its main stack, as given to cdk deploy (default Dify)',
    check: (value) => {
      if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(value)) {
        throw new UsageError(
          `--stack '${shown(value)}': expected a CloudFormation stack name: a letter, then letters, digits or -, 128 at most`,
        );
      }
    },
  },
  {
    name: 'region',
    value: 'REGION',
    description: "the deployment's region (default: AWS_REGION, or the AWS_PROFILE profile's region)",
    check: (value) => {
      if (!/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/.test(value)) {
        throw new UsageError(
          `--region '${shown(value)}': expected an AWS region name such as us-east-1 or ap-northeast-1`,
        );
      }
    },
  },
  { name: 'json', description: 'print the result as JSON on stdout, and an error as a JSON object on stderr' },
  { name: 'yes', description: 'answer yes to the confirmation a disruptive action asks first (for automation)' },
  { name: 'help', description: 'show help for the command or action, and do nothing else' },
];

/** A whole number from `min` to `max`, for `--name`. */
export const wholeNumber =
  (name: string, min: number, max: number, unit = '') =>
  (value: string) => {
    const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= min && n <= max)) {
      throw new UsageError(`--${name} '${shown(value)}': expected a whole number${unit} from ${min} to ${max}`);
    }
  };

/** One of `values`, for `--name` (or an operand, when `name` has no dashes). */
export const oneOf = (name: string, values: readonly string[]) => (value: string) => {
  if (!values.includes(value)) {
    throw new UsageError(`${name} '${shown(value)}': expected one of ${values.join(', ')}`);
  }
};

/** A form's command line, for `usage:` lines: operand, then required options, then optional ones in brackets. */
export function usageLine(prefix: string, form: FormSpec): string {
  const option = (o: OptionSpec) => `--${o.name}${o.value ? ` ${o.value}` : ''}`;
  const operand =
    form.operand === undefined ? [] : [form.operand.required ? form.operand.name : `[${form.operand.name}]`];
  return [
    prefix,
    ...operand,
    ...form.options.filter((o) => o.required).map(option),
    ...form.options.filter((o) => !o.required).map((o) => `[${option(o)}]`),
  ].join(' ');
}

/** A paragraph in lines of at most `width` characters, broken between words. */
export function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line].join('\n');
}

function columns(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`).join('\n');
}

const optionRows = (options: readonly OptionSpec[]) =>
  options.map(
    (o) =>
      [`--${o.name}${o.value ? ` ${o.value}` : ''}`, `${o.required ? '(required) ' : ''}${o.description}`] as const,
  );

const COMMON_HELP = `common options:\n${columns(optionRows(COMMON_OPTIONS))}`;

/** `dify-aws --help`: every command, the common options, and how errors and exit codes work. */
export function globalHelp(commands: readonly Command[]): string {
  return `dify-aws: operate a deployed Dify stack

usage: dify-aws <command> [<action>] [options]

commands:
${columns(commands.map((c) => [c.name, c.summary] as const))}

common options:
${columns(optionRows([...COMMON_OPTIONS, { name: 'version', description: 'print the version of dify-aws, and do nothing else' }]))}

dify-aws <command> --help (or dify-aws help <command> [<action>]) shows a command's actions, options and examples.
credentials: the AWS SDK's standard chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE and SSO,
the task or instance role); the region: --region, AWS_REGION or the profile's.
errors: one line on stderr saying what failed and what to do (with --json, a JSON object {"error": ...});
exit codes: 0 done, 1 failed, 2 wrong arguments (nothing was called), 3 cancelled, 4 checks or queries failed.`;
}

/** `dify-aws <command> --help`: a command with actions lists them; a command without is its form's help. */
export function commandHelp(command: Command): string {
  if (command.actions === undefined) return formHelp(`dify-aws ${command.name}`, command.form!);
  const examples = command.actions.map((a) => a.examples[0]);
  return `dify-aws ${command.name}: ${command.summary}

usage: dify-aws ${command.name} <action> [options]

actions:
${columns(command.actions.map((a) => [a.name, a.summary] as const))}

dify-aws ${command.name} <action> --help shows the action's options.

examples:
${examples.map((e) => `  ${e}`).join('\n')}`;
}

/** `dify-aws <command> <action> --help`, or the help of a command without actions. */
export function formHelp(prefix: string, form: FormSpec): string {
  const sections = [
    `${prefix}: ${form.summary}`,
    `usage: ${usageLine(prefix, form)} [common options]`,
    ...(form.description === undefined ? [] : [wrap(form.description)]),
    ...(form.operand === undefined && form.options.length === 0
      ? []
      : [
          `${form.operand === undefined ? 'options' : 'arguments'}:\n${columns([
            ...(form.operand === undefined
              ? []
              : [
                  [
                    form.operand.name,
                    `${form.operand.required ? '(required) ' : ''}${form.operand.description}`,
                  ] as const,
                ]),
            ...optionRows(form.options),
          ])}`,
        ]),
    COMMON_HELP,
    `example${form.examples.length > 1 ? 's' : ''}:\n${form.examples.map((e) => `  ${e}`).join('\n')}`,
  ];
  return sections.join('\n\n');
}

/** The action of `command` named `name`, or a UsageError listing the actions. */
export function findAction(command: Command, name: string | undefined): ActionSpec {
  const actions = command.actions!;
  const names = actions.map((a) => a.name);
  const list = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  if (name === undefined) {
    throw new UsageError(`${command.name}: expected an action: ${list} (dify-aws ${command.name} --help)`);
  }
  const found = actions.find((a) => a.name === name);
  if (found === undefined) {
    throw new UsageError(
      `${command.name}: unknown action '${shown(name)}'; expected ${list} (dify-aws ${command.name} --help)`,
    );
  }
  return found;
}

/**
 * Checks a command line against the command's declared arguments, before any AWS call: the action, the
 * operand, that each option belongs to this form, required options, each value, and the form's rules
 * across options. Throws a UsageError (exit code 2) naming what is wrong, the value and what is expected.
 */
export function checkArgs(command: Command, args: CommandArgs, now: Date): void {
  const action = command.actions === undefined ? undefined : findAction(command, args.action);
  const form: FormSpec = action ?? command.form!;
  const label = `${command.name}${action ? ` ${action.name}` : ''}`;
  const positionals = action === undefined ? [args.action, ...args.rest] : [...args.rest];
  const [operand, ...extra] = form.operand === undefined ? [undefined, ...positionals] : positionals;
  const unexpected = extra.filter((value) => value !== undefined);
  if (unexpected.length > 0) {
    throw new UsageError(
      `${label}: unexpected argument '${shown(unexpected[0]!)}'; usage: ${usageLine(`dify-aws ${label}`, form)}`,
    );
  }
  if (form.operand !== undefined) {
    if (operand === undefined) {
      if (form.operand.required) {
        throw new UsageError(
          `${label}: expected ${form.operand.name}: ${form.operand.description} (dify-aws ${label} --help)`,
        );
      }
    } else form.operand.check?.(operand);
  }
  for (const common of COMMON_OPTIONS) {
    const value = args.options[common.name];
    if (typeof value === 'string') common.check?.(value);
  }
  const known = new Set([...COMMON_OPTIONS.map((o) => o.name), ...form.options.map((o) => o.name)]);
  for (const [name, value] of Object.entries(args.options)) {
    if (value === undefined) continue;
    if (!known.has(name)) {
      throw new UsageError(`${label}: --${name} is not an option of this command; see dify-aws ${label} --help`);
    }
  }
  for (const option of form.options) {
    const value = args.options[option.name];
    if (value === undefined) {
      if (option.required) {
        throw new UsageError(
          `${label}: --${option.name}${option.value ? ` ${option.value}` : ''} is required: ${option.description}`,
        );
      }
      continue;
    }
    if (typeof value === 'string') {
      if (value === '') throw new UsageError(`--${option.name}: expected a value, got an empty one`);
      option.check?.(value);
    }
  }
  form.check?.(args, now);
}
