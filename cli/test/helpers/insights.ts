/**
 * An evaluator of the part of the CloudWatch Logs Insights query language that `dify-aws investigate`
 * uses, for its tests: moto_server 5.2 accepts StartQuery but evaluates only `fields` (of @timestamp,
 * @message, @logStream and @log), `sort` by time and `limit`, so the queries' filters, parses and
 * aggregations are run here instead. It throws on anything it does not model, so a query that leaves
 * the subset fails its test instead of being checked against a guess.
 *
 * Modelled (after the Logs Insights query syntax reference):
 * - fields discovered in JSON events, nested objects flattened with dots (`httpRequest.clientIp`),
 *   array items by index (`guardrails.0.detector`); `@message` is the raw event text;
 * - `filter` with `=` or `in [...]` against string literals, `like /regex/`, `and`, `or` and
 *   parentheses; a field that is missing matches nothing; comparing a number or boolean throws;
 * - `parse <field> /regex/` with named groups, which set fields on the events it matches;
 * - `stats count(*) as <name> by <field>, ...` (a missing field groups as missing and is left out of
 *   the row); then `sort <name> asc|desc` (stable) and `limit <n>`.
 */

/** One log event, as PutLogEvents stores it. */
export interface InsightsEvent {
  readonly timestamp: number;
  readonly message: string;
}

/** One result row, as GetQueryResults returns it. */
export type InsightsRow = Array<{ field: string; value: string }>;

type Token =
  | { kind: 'word'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'regex'; text: string }
  | { kind: 'punct'; text: string };

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i];
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '"') {
      let text = '';
      i += 1;
      while (i < query.length && query[i] !== '"') {
        if (query[i] === '\\') i += 1;
        text += query[i];
        i += 1;
      }
      if (i >= query.length) throw new Error('unterminated string');
      tokens.push({ kind: 'string', text });
      i += 1;
    } else if (c === '/') {
      // The subset has no division: a slash always opens a regex, which ends at the next unescaped slash.
      let text = '';
      i += 1;
      while (i < query.length && query[i] !== '/') {
        if (query[i] === '\\') {
          text += query[i];
          i += 1;
        }
        text += query[i];
        i += 1;
      }
      if (i >= query.length) throw new Error('unterminated regex');
      i += 1;
      if (/[a-z]/i.test(query[i] ?? '')) throw new Error('regex flags are not modelled');
      tokens.push({ kind: 'regex', text });
    } else if (/[A-Za-z0-9_@.]/.test(c)) {
      let text = '';
      while (i < query.length && /[A-Za-z0-9_@.]/.test(query[i])) text += query[i++];
      tokens.push({ kind: 'word', text });
    } else if ('|()[],=*'.includes(c)) {
      tokens.push({ kind: 'punct', text: c });
      i += 1;
    } else throw new Error(`unmodelled character '${c}'`);
  }
  return tokens;
}

type Fields = Map<string, unknown>;
type Predicate = (fields: Fields) => boolean;

function flatten(value: unknown, prefix: string, into: Fields): void {
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) flatten(item, prefix === '' ? key : `${prefix}.${key}`, into);
  } else into.set(prefix, value);
}

function fieldsOf(event: InsightsEvent): Fields {
  const fields: Fields = new Map<string, unknown>([
    ['@message', event.message],
    ['@timestamp', event.timestamp],
  ]);
  if (event.message.trimStart().startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(event.message);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) flatten(parsed, '', fields);
    } catch {
      // Not JSON after all: only @message.
    }
  }
  return fields;
}

/** A field's text, or undefined when the event lacks it; anything but a string is not modelled. */
function text(fields: Fields, name: string): string | undefined {
  const value = fields.get(name);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new Error(`field ${name} is a ${typeof value}: comparisons with it are not modelled`);
  return value;
}

class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  done(): boolean {
    return this.at >= this.tokens.length;
  }
  peek(): Token | undefined {
    return this.tokens[this.at];
  }
  next(): Token {
    const token = this.tokens[this.at++];
    if (token === undefined) throw new Error('unexpected end of query');
    return token;
  }
  word(expected?: string): string {
    const token = this.next();
    if (token.kind !== 'word' || (expected !== undefined && token.text.toLowerCase() !== expected)) {
      throw new Error(`expected ${expected ?? 'a word'}, found '${token.text}'`);
    }
    return token.text;
  }
  punct(expected: string): void {
    const token = this.next();
    if (token.kind !== 'punct' || token.text !== expected)
      throw new Error(`expected '${expected}', found '${token.text}'`);
  }
  isPunct(text: string): boolean {
    const token = this.peek();
    return token?.kind === 'punct' && token.text === text;
  }
  isWord(text: string): boolean {
    const token = this.peek();
    return token?.kind === 'word' && token.text.toLowerCase() === text;
  }

  expression(): Predicate {
    const terms = [this.conjunction()];
    while (this.isWord('or')) {
      this.next();
      terms.push(this.conjunction());
    }
    return (fields) => terms.some((term) => term(fields));
  }
  conjunction(): Predicate {
    const terms = [this.primary()];
    while (this.isWord('and')) {
      this.next();
      terms.push(this.primary());
    }
    return (fields) => terms.every((term) => term(fields));
  }
  primary(): Predicate {
    if (this.isPunct('(')) {
      this.next();
      const inner = this.expression();
      this.punct(')');
      return inner;
    }
    const name = this.word();
    if (this.isPunct('=')) {
      this.next();
      const literal = this.next();
      if (literal.kind !== 'string') throw new Error(`${name} = ${literal.text}: only string literals are modelled`);
      return (fields) => text(fields, name) === literal.text;
    }
    if (this.isWord('like')) {
      this.next();
      const literal = this.next();
      if (literal.kind !== 'regex') throw new Error(`${name} like ${literal.text}: only /regex/ is modelled`);
      const regex = new RegExp(literal.text);
      return (fields) => {
        const value = text(fields, name);
        return value !== undefined && regex.test(value);
      };
    }
    if (this.isWord('in')) {
      this.next();
      this.punct('[');
      const values: string[] = [];
      for (;;) {
        const literal = this.next();
        if (literal.kind !== 'string') throw new Error(`${name} in [...]: only string literals are modelled`);
        values.push(literal.text);
        if (this.isPunct(']')) break;
        this.punct(',');
      }
      this.punct(']');
      return (fields) => {
        const value = text(fields, name);
        return value !== undefined && values.includes(value);
      };
    }
    throw new Error(`after ${name}: only =, like and in are modelled`);
  }
}

/** Splits a query into its commands at the pipes between them (tokens keep pipes inside regexes). */
function commands(query: string): Token[][] {
  const out: Token[][] = [[]];
  for (const token of tokenize(query)) {
    if (token.kind === 'punct' && token.text === '|') out.push([]);
    else out.at(-1)!.push(token);
  }
  return out;
}

/** Runs `query` over `events` (already within the query's window and log groups). */
export function evaluate(query: string, events: readonly InsightsEvent[]): InsightsRow[] {
  let rows: Fields[] = events.map(fieldsOf);
  let aggregated = false;
  for (const tokens of commands(query)) {
    const p = new Parser(tokens);
    const command = p.word().toLowerCase();
    if (command === 'filter') {
      if (aggregated) throw new Error('filter after stats is not modelled');
      const predicate = p.expression();
      rows = rows.filter(predicate);
    } else if (command === 'parse') {
      if (aggregated) throw new Error('parse after stats is not modelled');
      const source = p.word();
      const literal = p.next();
      if (literal.kind !== 'regex') throw new Error('only parse with a /regex/ is modelled');
      const regex = new RegExp(literal.text);
      for (const fields of rows) {
        const value = text(fields, source);
        const match = value === undefined ? null : regex.exec(value);
        for (const [name, captured] of Object.entries(match?.groups ?? {})) {
          if (captured !== undefined) fields.set(name, captured);
        }
      }
    } else if (command === 'stats') {
      if (aggregated) throw new Error('a second stats is not modelled');
      p.word('count');
      p.punct('(');
      p.punct('*');
      p.punct(')');
      p.word('as');
      const alias = p.word();
      p.word('by');
      const by = [p.word()];
      while (p.isPunct(',')) {
        p.next();
        by.push(p.word());
      }
      const groups = new Map<string, { fields: Fields; count: number }>();
      for (const fields of rows) {
        const key = by.map((name) => fields.get(name));
        const id = JSON.stringify(key);
        const group = groups.get(id);
        if (group !== undefined) group.count += 1;
        else {
          const grouped: Fields = new Map();
          by.forEach((name, index) => {
            if (key[index] !== undefined && key[index] !== null) grouped.set(name, key[index]);
          });
          groups.set(id, { fields: grouped, count: 1 });
        }
      }
      rows = [...groups.values()].map(({ fields, count }) => fields.set(alias, count));
      aggregated = true;
    } else if (command === 'sort') {
      const name = p.word();
      const order = p.word().toLowerCase();
      if (order !== 'asc' && order !== 'desc') throw new Error('sort without asc or desc is not modelled');
      const value = (fields: Fields) => {
        const v = fields.get(name);
        if (typeof v !== 'number') throw new Error(`sort by ${name}: only numbers are modelled`);
        return v;
      };
      rows = [...rows].sort((a, b) => (order === 'asc' ? value(a) - value(b) : value(b) - value(a)));
    } else if (command === 'limit') {
      const n = Number(p.word());
      if (!Number.isInteger(n) || n < 1) throw new Error('limit takes a whole number');
      rows = rows.slice(0, n);
    } else throw new Error(`command '${command}' is not modelled`);
    if (!p.done()) throw new Error(`${command}: unexpected '${p.peek()!.text}'`);
  }
  if (!aggregated) throw new Error('only queries that end in stats are modelled');
  return rows.map((fields) => [...fields].map(([field, value]) => ({ field, value: String(value) })));
}
