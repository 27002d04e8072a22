import type { Context } from './context';

/** The parsed options of a command line. */
export type Options = Record<string, string | boolean | undefined>;

/** What a command is given besides the context: `dify-aws <command> <action> <rest...> --options`. */
export interface CommandArgs {
  readonly action: string | undefined;
  readonly rest: readonly string[];
  readonly options: Options;
}

/** One option of a command line, as `--help` shows it and as main.ts checks it before any AWS call. */
export interface OptionSpec {
  /** Its name, without the dashes. */
  readonly name: string;
  /** The value's placeholder (`N`, `URL`); an option without one is a flag. */
  readonly value?: string;
  readonly description: string;
  readonly required?: boolean;
  /** Throws a UsageError naming the option, the value given and what is expected. */
  readonly check?: (value: string) => void;
}

/** A positional argument: `secrets rotate NAME`, `quarantine TARGET`. */
export interface OperandSpec {
  readonly name: string;
  readonly description: string;
  readonly required: boolean;
  readonly check?: (value: string) => void;
}

/** One form of a command line: a command without actions, or one action of a command. */
export interface FormSpec {
  /** One line, for the list of commands or actions. */
  readonly summary: string;
  /** What else `--help` says about it, a paragraph. */
  readonly description?: string;
  readonly operand?: OperandSpec;
  readonly options: readonly OptionSpec[];
  /** At least one; whole command lines, as a user would type them. */
  readonly examples: readonly string[];
  /** Rules across options (one or the other, one needs another), checked after each option's own. */
  readonly check?: (args: CommandArgs, now: Date) => void;
}

/** An action of a command: `keys add`. */
export interface ActionSpec extends FormSpec {
  readonly name: string;
}

/**
 * One command of the CLI: its name, its arguments (checked by main.ts before the context makes any
 * AWS client) and its help, and what it does. A command has either actions (`keys add`, `keys list`)
 * or a single form (`doctor`).
 */
export interface Command {
  readonly name: string;
  /** One line, for `dify-aws --help`. */
  readonly summary: string;
  readonly actions?: readonly ActionSpec[];
  readonly form?: FormSpec;
  run(ctx: Context, args: CommandArgs): Promise<void>;
}
