/**
 * EventBridge event patterns, matched the way EventBridge documents it ("Event patterns in Amazon
 * EventBridge", content filtering), so that each rule this project deploys is tested on events in
 * their source's real shape. moto_server's matcher does not descend into arrays of objects (an ECS
 * task's `containers[].exitCode`), and TestEventPattern needs an account, hence this evaluator,
 * itself tested on the documented examples (test/helpers/event-pattern.test.ts).
 *
 * A pattern field's value is either an object (a nested pattern) or an array of filters, any of which
 * may match any value found at that path; arrays in the event are searched element by element. Filters:
 * a string, number or null (equality), `prefix`, `suffix`, `anything-but` (a value, a list, or
 * `{ prefix }`), `exists`, `numeric` (pairs of comparison and number), and `$or` at any level.
 * Anything else throws, naming it: a test never passes on a pattern this cannot read.
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function matchesEventPattern(pattern: Record<string, unknown>, event: Json): boolean {
  return matchObject(pattern, [event]);
}

/** Every value reachable by `key` from the given nodes, descending arrays. */
function step(nodes: Json[], key: string): Json[] {
  const out: Json[] = [];
  const visit = (node: Json) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object' && Object.hasOwn(node, key)) out.push(node[key]);
  };
  nodes.forEach(visit);
  return out;
}

const leaves = (values: Json[]): Json[] => values.flatMap((value) => (Array.isArray(value) ? leaves(value) : [value]));

function matchObject(pattern: Record<string, unknown>, nodes: Json[]): boolean {
  return Object.entries(pattern).every(([key, value]) => {
    if (key === '$or') {
      if (!Array.isArray(value)) throw new Error('event pattern: $or takes a list of patterns');
      return value.some((alternative) => matchObject(alternative as Record<string, unknown>, nodes));
    }
    const found = step(nodes, key);
    if (Array.isArray(value)) return matchFilters(value, leaves(found), found.length > 0);
    if (value !== null && typeof value === 'object') return matchObject(value as Record<string, unknown>, found);
    throw new Error(`event pattern: the value of ${key} must be a list of filters or a nested pattern`);
  });
}

function matchFilters(filters: unknown[], values: Json[], present: boolean): boolean {
  return filters.some((filter) => {
    if (filter === null || typeof filter === 'string' || typeof filter === 'number') {
      return values.some((value) => value === filter);
    }
    if (typeof filter !== 'object' || Array.isArray(filter))
      throw new Error(`event pattern: cannot read filter ${JSON.stringify(filter)}`);
    const entries = Object.entries(filter as Record<string, unknown>);
    if (entries.length !== 1) throw new Error(`event pattern: one operator per filter, not ${JSON.stringify(filter)}`);
    const [[operator, operand]] = entries;
    switch (operator) {
      case 'exists':
        return present === operand;
      case 'prefix':
        return values.some((value) => typeof value === 'string' && value.startsWith(String(operand)));
      case 'suffix':
        return values.some((value) => typeof value === 'string' && value.endsWith(String(operand)));
      case 'anything-but': {
        const excluded = (value: Json) => {
          if (Array.isArray(operand)) return operand.includes(value);
          if (operand !== null && typeof operand === 'object') {
            const prefix = (operand as Record<string, unknown>).prefix;
            if (typeof prefix !== 'string')
              throw new Error(`event pattern: cannot read anything-but ${JSON.stringify(operand)}`);
            return typeof value === 'string' && value.startsWith(prefix);
          }
          return value === operand;
        };
        return values.some((value) => value !== null && typeof value !== 'object' && !excluded(value));
      }
      case 'numeric': {
        const parts = operand as Array<string | number>;
        if (!Array.isArray(parts) || parts.length % 2 !== 0)
          throw new Error('event pattern: numeric takes comparison, number pairs');
        return values.some((value) => {
          if (typeof value !== 'number') return false;
          for (let i = 0; i < parts.length; i += 2) {
            const bound = Number(parts[i + 1]);
            const ok = {
              '<': value < bound,
              '<=': value <= bound,
              '=': value === bound,
              '>': value > bound,
              '>=': value >= bound,
            }[String(parts[i]) as '<'];
            if (ok === undefined) throw new Error(`event pattern: unknown numeric comparison ${String(parts[i])}`);
            if (!ok) return false;
          }
          return true;
        });
      }
      default:
        throw new Error(`event pattern: unsupported operator ${operator}`);
    }
  });
}
