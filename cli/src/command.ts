import type { Context } from './context';

/** The parsed options of a command line. */
export type Options = Record<string, string | boolean | undefined>;

/** What a command is given besides the context: `dify-aws <command> <action> <rest...> --options`. */
export interface CommandArgs {
  readonly action: string | undefined;
  readonly rest: readonly string[];
  readonly options: Options;
}

/** One command of the CLI: its name, its lines of `--help`, and what it does. */
export interface Command {
  readonly name: string;
  /** Its usage lines, as `--help` prints them (two columns, the description at column 32). */
  readonly usage: string;
  run(ctx: Context, args: CommandArgs): Promise<void>;
}
