/**
 * CloudWatch Logs filter patterns, evaluated the way metric filters and FilterLogEvents read them,
 * so that each filter this project deploys is tested against log lines in its source's real format.
 * moto_server accepts metric filters but does not evaluate JSON patterns, and CloudWatch's own
 * TestMetricFilter needs an account, hence this evaluator, itself tested against the examples of
 * CloudWatch's filter pattern syntax (test/helpers/filter-pattern.test.ts).
 *
 * Supported, as documented:
 * - JSON patterns `{ <selector> <op> <value> }` joined with `&&` and `||` and grouped with
 *   parentheses; selectors `$.a.b`, `$.a[0]`, `$.a[0].b`; operators `=` and `!=` for strings (with `*`
 *   as a wildcard) and `=`, `!=`, `<`, `<=`, `>`, `>=` for numbers; `IS NULL`, `NOT EXISTS`,
 *   `IS TRUE`, `IS FALSE`. A comparison with a property the event lacks does not match (use
 *   `NOT EXISTS` for that).
 * - Term patterns: space-separated terms that must all occur (case-sensitive), a quoted term for
 *   text with spaces or punctuation, `?term` alternatives (any of them), `-term` exclusions.
 * - Regular expressions between `%` signs, standing alone or as a JSON comparison's value, with only the characters CloudWatch admits:
 *   letters, digits, `_ # = @ / ; , -` and the operators `^ $ ? [ ] { } | \ * + .` (no parentheses,
 *   no spaces, no multi-byte characters); a pattern with anything else throws, as CloudWatch refuses it.
 * - The empty pattern, which matches every event.
 * Anything else throws, naming the pattern: a test never passes on a pattern this cannot read.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const MISSING = Symbol('missing');

export function matchesFilterPattern(pattern: string, message: string): boolean {
  const trimmed = pattern.trim();
  if (trimmed === '') return true;
  if (trimmed.startsWith('{')) {
    if (!trimmed.endsWith('}')) throw new Error(`filter pattern ${pattern}: a JSON pattern ends with }`);
    let event: Json;
    try {
      event = JSON.parse(message) as Json;
    } catch {
      return false; // a JSON pattern matches JSON events only
    }
    const parser = new JsonPatternParser(trimmed.slice(1, -1), pattern);
    const predicate = parser.parse();
    return predicate(event);
  }
  if (trimmed.startsWith('%')) return regexMatches(trimmed, message, pattern);
  return termsMatch(trimmed, message, pattern);
}

// ---- regular expressions ----

const REGEX_CHARACTERS = /^[A-Za-z0-9_#=@/;,\-^$?[\]{}|\\*+.]*$/;

function regexMatches(pattern: string, message: string, original: string): boolean {
  if (pattern.length < 3 || !pattern.endsWith('%')) {
    throw new Error(`filter pattern ${original}: a regular expression is written %expression%`);
  }
  const body = pattern.slice(1, -1);
  if (!REGEX_CHARACTERS.test(body)) {
    const bad = [...body].find((c) => !REGEX_CHARACTERS.test(c));
    throw new Error(`filter pattern ${original}: CloudWatch does not admit '${bad}' in a regular expression`);
  }
  return new RegExp(body).test(message);
}

// ---- term patterns ----

function termsMatch(pattern: string, message: string, original: string): boolean {
  const terms = [...pattern.matchAll(/([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))/g)].map((m) => ({
    prefix: m[1],
    text: m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3],
  }));
  if (terms.length === 0) throw new Error(`filter pattern ${original}: no terms`);
  const alternatives = terms.filter((t) => t.prefix === '?');
  if (alternatives.length > 0) {
    if (alternatives.length !== terms.length) {
      throw new Error(`filter pattern ${original}: ?term alternatives cannot be mixed with other terms`);
    }
    return alternatives.some((t) => message.includes(t.text));
  }
  return terms.every((t) => (t.prefix === '-' ? !message.includes(t.text) : message.includes(t.text)));
}

// ---- JSON patterns ----

type Predicate = (event: Json) => boolean;

class JsonPatternParser {
  private position = 0;

  constructor(
    private readonly text: string,
    private readonly original: string,
  ) {}

  parse(): Predicate {
    const predicate = this.orExpression();
    this.skipSpace();
    if (this.position < this.text.length) this.fail(`unexpected '${this.text.slice(this.position)}'`);
    return predicate;
  }

  private orExpression(): Predicate {
    let left = this.andExpression();
    while (this.take('||')) {
      const right = this.andExpression();
      const l = left;
      left = (event) => l(event) || right(event);
    }
    return left;
  }

  private andExpression(): Predicate {
    let left = this.primary();
    while (this.take('&&')) {
      const right = this.primary();
      const l = left;
      left = (event) => l(event) && right(event);
    }
    return left;
  }

  private primary(): Predicate {
    this.skipSpace();
    if (this.take('(')) {
      const inner = this.orExpression();
      if (!this.take(')')) this.fail('a ( without its )');
      return inner;
    }
    return this.comparison();
  }

  private comparison(): Predicate {
    this.skipSpace();
    const selector = /^\$(?:\.[A-Za-z_][\w-]*|\[\d+\])+/.exec(this.text.slice(this.position))?.[0];
    if (selector === undefined) this.fail(`expected a selector such as $.field at '${this.rest()}'`);
    this.position += selector!.length;
    const path = [...selector!.matchAll(/\.([A-Za-z_][\w-]*)|\[(\d+)\]/g)].map((m) => m[1] ?? Number(m[2]));
    const read = (event: Json): Json | typeof MISSING => {
      let value: Json | typeof MISSING = event;
      for (const step of path) {
        if (value === null || typeof value !== 'object') return MISSING;
        if (typeof step === 'number') {
          if (!Array.isArray(value) || step >= value.length) return MISSING;
          value = value[step];
        } else {
          if (Array.isArray(value) || !Object.hasOwn(value, step)) return MISSING;
          value = (value as Record<string, Json>)[step];
        }
      }
      return value;
    };
    this.skipSpace();
    for (const [keyword, test] of [
      ['IS NULL', (v: Json | typeof MISSING) => v === null],
      ['NOT EXISTS', (v: Json | typeof MISSING) => v === MISSING],
      ['IS TRUE', (v: Json | typeof MISSING) => v === true],
      ['IS FALSE', (v: Json | typeof MISSING) => v === false],
    ] as const) {
      if (this.take(keyword)) return (event) => test(read(event));
    }
    const operator = /^(!=|<=|>=|=|<|>)/.exec(this.rest())?.[0];
    if (operator === undefined) this.fail(`expected an operator after ${selector} at '${this.rest()}'`);
    this.position += operator!.length;
    this.skipSpace();
    const regex = /^%[^%]+%/.exec(this.rest())?.[0];
    if (regex !== undefined) {
      if (operator !== '=' && operator !== '!=') this.fail(`${operator} cannot compare with a regular expression`);
      this.position += regex.length;
      return (event) => {
        const value = read(event);
        if (value === MISSING || value === null || typeof value === 'object') return false;
        const matched = regexMatches(regex, String(value), this.original);
        return operator === '=' ? matched : !matched;
      };
    }
    const literal = this.value();
    if (typeof literal === 'number') {
      return (event) => {
        const value = read(event);
        if (typeof value !== 'number') return false;
        switch (operator) {
          case '=':
            return value === literal;
          case '!=':
            return value !== literal;
          case '<':
            return value < literal;
          case '<=':
            return value <= literal;
          case '>':
            return value > literal;
          default:
            return value >= literal;
        }
      };
    }
    if (operator !== '=' && operator !== '!=') this.fail(`${operator} compares numbers only, not '${literal}'`);
    const wildcard = new RegExp(
      `^${literal
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
      's',
    );
    return (event) => {
      const value = read(event);
      if (value === MISSING || value === null || typeof value === 'object') return false;
      const matched = wildcard.test(String(value));
      return operator === '=' ? matched : !matched;
    };
  }

  /** A quoted string, a number, or an unquoted word (a string). */
  private value(): string | number {
    const rest = this.rest();
    const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
    if (quoted !== null) {
      this.position += quoted[0].length;
      return quoted[1].replace(/\\(.)/g, '$1');
    }
    const number = /^-?\d+(?:\.\d+)?(?![\w.*])/.exec(rest);
    if (number !== null) {
      this.position += number[0].length;
      return Number(number[0]);
    }
    const word = /^[^\s()&|]+/.exec(rest);
    if (word === null) this.fail(`expected a value at '${rest}'`);
    this.position += word![0].length;
    return word![0];
  }

  private take(token: string): boolean {
    this.skipSpace();
    if (this.text.startsWith(token, this.position)) {
      this.position += token.length;
      return true;
    }
    return false;
  }

  private skipSpace(): void {
    while (this.position < this.text.length && /\s/.test(this.text[this.position])) this.position++;
  }

  private rest(): string {
    return this.text.slice(this.position);
  }

  private fail(why: string): never {
    throw new Error(`filter pattern ${this.original}: ${why}`);
  }
}
