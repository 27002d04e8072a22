import { closest, distance } from 'fastest-levenshtein';
import type { Construct } from 'constructs';
import type { z } from 'zod';
import { CONFIG_KEYS, type Config, configSchema } from './schema';

/**
 * Context keys that are not ours but may legitimately be present: CDK feature flags (`@aws-cdk/...`),
 * CLI-injected keys (`aws:cdk:...`), lookups cached by the CLI (`availability-zones:...`) and the
 * few plain keys the CDK CLI itself reads from cdk.json.
 */
const FOREIGN_PLAIN_KEYS = new Set(['cli-telemetry', 'acknowledged-issue-numbers']);

function isPlainKey(key: string): boolean {
  return !/[:@/]/.test(key) && !FOREIGN_PLAIN_KEYS.has(key);
}

/** Thrown when the context does not describe a valid deployment; `problems` holds one line per mistake. */
export class ConfigError extends Error {
  constructor(public readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates a plain record of context values (as `cdk.json` and `-c` deliver them) against the schema.
 * Every problem is reported at once, each naming its key and what is expected.
 */
export function parseConfig(context: Record<string, unknown>): Config {
  const problems: string[] = [];
  const ours: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) {
    if (!isPlainKey(key)) continue;
    if ((CONFIG_KEYS as string[]).includes(key)) {
      ours[key] = value;
      continue;
    }
    const nearest = closest(key, CONFIG_KEYS as string[]);
    const hint =
      distance(key.toLowerCase(), nearest.toLowerCase()) <= Math.max(2, key.length / 3)
        ? `; did you mean '${nearest}'?`
        : '';
    problems.push(`unknown context key '${key}'${hint}${hint ? '' : ` Valid keys: ${CONFIG_KEYS.join(', ')}`}`);
  }
  // reportInput: each issue carries the value it is about, so a list error names the bad item.
  const result = configSchema.safeParse(ours, { reportInput: true });
  if (!result.success) {
    problems.push(...result.error.issues.map((issue) => describeIssue(issue, ours)));
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.data;
}

/** Reads every context value of the app (cdk.json, `-c`, defaults) and validates it. */
export function loadConfig(scope: Construct): Config {
  return parseConfig(scope.node.getAllContext() as Record<string, unknown>);
}

/**
 * One line per issue: the key (and the list item, by position), the value given, once, and what is
 * expected. Schema messages that start with "expected" say only what is expected; the value given is
 * put in front of them here. Other messages (a rule across keys: "required with ...") stand alone.
 */
function describeIssue(issue: z.core.$ZodIssue, input: Record<string, unknown>): string {
  const key = issue.path.length > 0 ? String(issue.path[0]) : '(config)';
  const item = issue.path.length > 1 && typeof issue.path[1] === 'number' ? issue.path[1] : undefined;
  const where = `context key '${key}'${item === undefined ? '' : ` (item ${item + 1})`}`;
  let expected = issue.message;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    expected = `expected one of ${issue.values.map((v) => `'${String(v)}'`).join(', ')}`;
    const values = issue.values.map(String);
    if (typeof issue.input === 'string' && values.length > 0) {
      const nearest = closest(issue.input, values);
      if (distance(issue.input.toLowerCase(), nearest.toLowerCase()) <= 2) expected += `; did you mean '${nearest}'?`;
    }
  } else if (issue.code === 'invalid_type' && !expected.startsWith('expected')) {
    // zod's own wording ("Invalid input: expected string, received number")
    expected = `expected ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
  }
  // A list item's own value, not the whole list; a key's value as the user wrote it (`-c` or cdk.json).
  const given = item !== undefined ? issue.input : key in input ? input[key] : undefined;
  if (given !== undefined && expected.startsWith('expected') && !/\bgot\b/.test(expected)) {
    return `${where}: got ${JSON.stringify(given)}; ${expected}`;
  }
  return `${where}: ${expected}`;
}
