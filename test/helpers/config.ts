import { ConfigError, parseConfig } from '../../lib/config/load';

/** The message a context (as `-c key=value` delivers it) is refused with; fails the test if it is accepted. */
export function refusal(context: Record<string, unknown>): string {
  try {
    parseConfig(context);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(context)} to be refused`);
}
