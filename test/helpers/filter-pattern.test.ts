import { matchesFilterPattern as matches } from './filter-pattern';

/**
 * The evaluator against the examples of CloudWatch Logs' filter pattern syntax ("Filter pattern
 * syntax for metric filters, subscription filters, and filter log events" in the CloudWatch Logs
 * user guide): each documented pattern with the documented event, both ways.
 */
describe('CloudWatch Logs filter patterns', () => {
  const event = JSON.stringify({
    eventType: 'UpdateTrail',
    sourceIPAddress: '111.111.111.111',
    arrayKey: ['value', 'another value'],
    objectList: [
      { name: 'a', id: 1 },
      { name: 'b', id: 2 },
    ],
    SomeObject: null,
    ThisFlag: true,
    bandwidth: 80,
    latency: 40,
    user: { id: 1, username: 'system:serviceaccount:kube-system:x' },
    users: [{ email: 'John.Doe@example.com' }],
    actions: ['GET', 'PUT', 'DELETE'],
  });

  it.each([
    ['{ $.eventType = "UpdateTrail" }', true],
    ['{ $.eventType = UpdateTrail }', true],
    ['{ $.eventType = "Update*" }', true],
    ['{ $.eventType = "*Trail" }', true],
    ['{ $.eventType = "CreateTrail" }', false],
    ['{ $.eventType != "UpdateTrail" }', false],
    ['{ $.sourceIPAddress != 123.123.* }', true],
    ['{ $.sourceIPAddress = 111.111.* }', true],
    ['{ $.arrayKey[0] = "value" }', true],
    ['{ $.arrayKey[1] = "value" }', false],
    ['{ $.objectList[1].id = 2 }', true],
    ['{ $.objectList[1].id = 1 }', false],
    ['{ $.SomeObject IS NULL }', true],
    ['{ $.eventType IS NULL }', false],
    ['{ $.SomeOtherObject NOT EXISTS }', true],
    ['{ $.SomeObject NOT EXISTS }', false],
    ['{ $.ThisFlag IS TRUE }', true],
    ['{ $.ThisFlag IS FALSE }', false],
    ['{ $.bandwidth > 75 }', true],
    ['{ $.bandwidth >= 80 }', true],
    ['{ $.bandwidth < 80 }', false],
    ['{ $.latency <= 40 }', true],
    ['{ $.latency != 40 }', false],
    ['{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', true],
    ['{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "DELETE" }', true],
    ['{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', false],
    ['{ $.user.username != "system:*" }', false],
    ['{ $.user.username = "system:*" }', true],
    // A comparison with a property the event lacks does not match, whichever the operator.
    ['{ $.missing != "x" }', false],
    ['{ $.missing = "x" }', false],
    // A numeric comparison needs a number in the event; = and != compare the text of a value.
    ['{ $.eventType > 3 }', false],
    ['{ $.bandwidth = "80" }', true],
  ])('%s -> %s', (pattern, expected) => {
    expect(matches(pattern, event)).toBe(expected);
  });

  it('matches JSON patterns against JSON events only', () => {
    expect(matches('{ $.eventType = "UpdateTrail" }', 'eventType=UpdateTrail')).toBe(false);
  });

  it.each([
    ['ERROR', '[ERROR] Failed to connect', true],
    ['ERROR', '[error] failed to connect', false],
    ['ERROR connect', '[ERROR] Failed to connect', true],
    ['ERROR Exiting', '[ERROR] Failed to connect', false],
    ['"Failed to"', '[ERROR] Failed to connect', true],
    ['"failed to"', '[ERROR] Failed to connect', false],
    ['?ERROR ?WARN', '[WARN] disk almost full', true],
    ['?ERROR ?WARN', '[INFO] started', false],
    ['ERROR -Exiting', '[ERROR] Failed to connect', true],
    ['ERROR -Exiting', '[ERROR] Exiting', false],
    ['', 'anything at all', true],
  ])('term pattern %j on %j -> %s', (pattern, message, expected) => {
    expect(matches(pattern, message)).toBe(expected);
  });

  it.each([
    // The documented examples: %ERROR%, %gray|grey%, %colou?r%, %10\.10\.0\.1%, %[a-z]%.
    ['%ERROR%', '[ERROR] Failed to connect', true],
    ['%gray|grey%', 'a grey cat', true],
    ['%colou?r%', 'color', true],
    ['%colou?r%', 'colr', false],
    ['%10\\.10\\.0\\.1%', 'from 10.10.0.1 port 22', true],
    ['%10\\.10\\.0\\.1%', 'from 10a10b0c1 port 22', false],
    ['%^[a-z]+$%', 'lowercase', true],
    ['%^[a-z]+$%', 'Mixed', false],
    ['%code.401.|code.429.%', 'code 429 slow down', true],
    ['%code.401.|code.429.%', 'code 403 forbidden', false],
  ])('regular expression %j on %j -> %s', (pattern, message, expected) => {
    expect(matches(pattern, message)).toBe(expected);
  });

  it.each([
    ['{ $.log = %^POST./login% }', '{"log":"POST /login 401"}', true],
    ['{ $.log = %^POST./login% }', '{"log":"GET /login 401"}', false],
    ['{ $.log != %^POST% && $.n = 1 }', '{"log":"GET /","n":1}', true],
    ['{ $.log = %POST% }', '{"other":"POST"}', false],
  ])('regular expression in JSON %j on %j -> %s', (pattern, message, expected) => {
    expect(matches(pattern, message)).toBe(expected);
  });

  it('refuses what CloudWatch refuses in a regular expression: parentheses, spaces, other symbols', () => {
    expect(() => matches('%(a|b)c%', 'ac')).toThrow("does not admit '('");
    expect(() => matches('%a b%', 'a b')).toThrow("does not admit ' '");
    expect(() => matches('%something!%', 'something!')).toThrow("does not admit '!'");
    expect(() => matches('%abc', 'abc')).toThrow('a regular expression is written %expression%');
  });

  it('refuses a pattern it cannot read, naming it, rather than matching or not', () => {
    expect(() => matches('{ $.a = "x" ', '{}')).toThrow('filter pattern { $.a = "x" : a JSON pattern ends with }');
    expect(() => matches('{ a = "x" }', '{}')).toThrow('expected a selector such as $.field');
    expect(() => matches('{ $.a ~ "x" }', '{}')).toThrow('expected an operator after $.a');
    expect(() => matches('{ $.a > "x" }', '{}')).toThrow('> compares numbers only');
    expect(() => matches('{ ($.a = 1 }', '{}')).toThrow('a ( without its )');
    expect(() => matches('?ERROR WARN', 'x')).toThrow('cannot be mixed');
  });
});
