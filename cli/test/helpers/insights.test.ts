import { evaluate, type InsightsEvent } from './insights';

/**
 * The Logs Insights evaluator the investigate tests run their queries with: each modelled behaviour
 * (after the query syntax reference), and a throw for what it does not model, so a query outside the
 * subset cannot pass by accident.
 */
const at = (message: string, timestamp = 0): InsightsEvent => ({ timestamp, message });
const asObjects = (rows: ReturnType<typeof evaluate>) =>
  rows.map((row) => Object.fromEntries(row.map(({ field, value }) => [field, value])));

describe('Logs Insights evaluator', () => {
  const events = [
    at('{"user":"a","ip":"10.0.0.1","http":{"method":"POST"},"list":[{"name":"x"}]}'),
    at('{"user":"a","ip":"10.0.0.1","http":{"method":"GET"}}'),
    at('{"user":"b","ip":"10.0.0.2","http":{"method":"POST"}}'),
    at('{"ip":"10.0.0.3","http":{"method":"POST"}}'),
    at('GET /health 200 text line'),
  ];

  it('counts by JSON fields, nested ones by their dotted names, largest first', () => {
    const rows = evaluate('filter http.method = "POST" | stats count(*) as n by user, ip | sort n desc', events);
    expect(asObjects(rows)).toEqual([
      { user: 'a', ip: '10.0.0.1', n: '1' },
      { user: 'b', ip: '10.0.0.2', n: '1' },
      // A missing group-by field groups as missing and is left out of its row.
      { ip: '10.0.0.3', n: '1' },
    ]);
    expect(asObjects(evaluate('stats count(*) as n by list.0.name', events))).toEqual([
      { 'list.0.name': 'x', n: '1' },
      { n: '4' },
    ]);
  });

  it('filters with in, like, and, or and parentheses; a missing field matches nothing', () => {
    const count = (filter: string) =>
      asObjects(evaluate(`filter ${filter} | stats count(*) as n by ip | sort n desc`, events)).reduce(
        (sum, row) => sum + Number(row.n),
        0,
      );
    expect(count('user in ["a", "b"]')).toBe(3);
    expect(count('user = "a" and http.method = "GET"')).toBe(1);
    expect(count('(user = "b" or http.method = "GET") and ip like /^10\\.0\\.0\\.[12]$/')).toBe(2);
    expect(count('@message like /^GET \\/health/')).toBe(1);
    expect(count('user like /./')).toBe(3);
  });

  it('parses named groups from a field, on the events the regex matches', () => {
    const rows = evaluate(
      'parse @message /^(?<method>[A-Z]+) (?<path>\\/\\S*) (?<status>\\d{3}) / | filter status = "200" | stats count(*) as n by method, path',
      events,
    );
    expect(asObjects(rows)).toEqual([{ method: 'GET', path: '/health', n: '1' }]);
  });

  it('keeps the first rows of a sorted result with limit', () => {
    const many = ['a', 'b', 'b', 'c', 'c', 'c'].map((user) => at(JSON.stringify({ user })));
    expect(asObjects(evaluate('stats count(*) as n by user | sort n asc | limit 2', many))).toEqual([
      { user: 'a', n: '1' },
      { user: 'b', n: '2' },
    ]);
  });

  it('throws on what it does not model instead of guessing', () => {
    const numbers = [at('{"status":401}')];
    expect(() => evaluate('filter status = "401" | stats count(*) as n by status', numbers)).toThrow(/is a number/);
    expect(() => evaluate('filter status = 401 | stats count(*) as n by status', numbers)).toThrow(/string literals/);
    expect(() => evaluate('fields @timestamp, @message | limit 20', events)).toThrow(/'fields' is not modelled/);
    expect(() => evaluate('stats count(*) as n by bin(5m)', events)).toThrow(/unexpected '\('/);
    expect(() => evaluate('stats sum(bytes) as n by ip', events)).toThrow(/expected count/);
    expect(() => evaluate('filter ip != "x" | stats count(*) as n by ip', events)).toThrow(/unmodelled character/);
    expect(() => evaluate('stats count(*) as n by ip | sort n', events)).toThrow(/unexpected end/);
    expect(() => evaluate('filter user like /a/i | stats count(*) as n by ip', events)).toThrow(/flags/);
    expect(() => evaluate('filter user = "a"', events)).toThrow(/end in stats/);
  });
});
