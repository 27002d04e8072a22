import { Guardrails } from '../src/guardrails';
import { BUILT_INS } from '../src/guardrails/detectors';
import { normalize } from '../src/guardrails/normalize';

/**
 * Every detector, and the normalizer, on the input that is worst for it, at the gateway's full
 * default body limit (4 MiB). A quadratic scan of any of these runs for minutes (the private-key
 * pattern this replaced took 19 s on 1 MiB), far past the suite's timeout; a linear one finishes
 * within it with a wide margin. No timing is asserted: finishing is the test, and each case also
 * checks what was found, so a detector that gives up early fails too.
 */
const LIMIT = 4 * 1024 * 1024;
const fill = (unit: string) => unit.repeat(Math.floor(LIMIT / Buffer.byteLength(unit)));

type Detector = keyof typeof BUILT_INS;
const cases: Array<[string, Detector | 'normalize', () => string, number]> = [
  ['BEGIN markers with no END (the reported 19 s case)', 'private_key', () => fill('-----BEGIN PRIVATE KEY-----\n'), 1],
  [
    'END markers after key material',
    'private_key',
    () => fill('QUJDREVGR0hJSktMTU5PUA==\n-----END PRIVATE KEY-----\n'),
    1000,
  ],
  ['a BEGIN followed by endless label words', 'private_key', () => `-----BEGIN ${fill('A ')}`, 0],
  ['one-digit groups', 'credit_card', () => fill('1 '), 0],
  ['four-digit groups that never pass Luhn', 'credit_card', () => fill('4111 '), 0],
  ['four-digit groups joined by every separator', 'credit_card', () => fill('4111.1111/1111_1112 - '), 0],
  ['one endless digit block', 'credit_card', () => fill('1'), 0],
  ['four-digit groups, for My Number', 'my_number', () => fill('1234 '), 0],
  ['at signs', 'email', () => fill('a@'), 0],
  ['64-character local parts', 'email', () => fill(`${'a'.repeat(63)}@`), 0],
  ['endless domain labels', 'email', () => `x@${fill('a.')}`, 0],
  ['plus signs and digits', 'phone', () => fill('+1 '), 0],
  ['zeros and hyphens', 'phone', () => fill('0-'), 0],
  ['area codes', 'phone', () => fill('(415) '), 0],
  ['capital As', 'aws_access_key', () => fill('A'), 0],
  ['capital As with separators', 'aws_access_key', () => fill('A '), 0],
  ['key prefixes', 'aws_access_key', () => fill('AKIA '), 1000],
  ['full-width digits', 'normalize', () => fill('４'), 0],
  ['one character with endless combining marks', 'normalize', () => `a${fill('\u0301\u0300')}`, 0],
  ['zero-width spaces between digits', 'normalize', () => fill('1\u200b'), 0],
];

describe('worst-case inputs at the full body limit', () => {
  it.each(cases)('%s (%s) completes', (_name, detector, make, expected) => {
    const text = make();
    expect(Buffer.byteLength(text)).toBeGreaterThan(LIMIT * 0.9);
    if (detector === 'normalize') {
      const normalized = normalize(text);
      expect(normalized.text.length).toBeGreaterThan(0);
      return;
    }
    expect(BUILT_INS[detector].find(normalize(text).text, 1000)).toHaveLength(expected);
  });

  it('the whole screen of a 4 MiB body of many small parts completes', () => {
    // Each part too short to hold a match alone; every four in a row spell a valid card number.
    const parts = Array.from({ length: 200_000 }, (_, i) => ({ type: 'text', text: i % 4 === 0 ? '4111 ' : '1111 ' }));
    const result = new Guardrails([]).screen(
      'chat',
      { model: 'm', messages: [{ role: 'user', content: parts }] },
      () => 'log',
    );
    expect(result.decisions).toEqual([{ detector: 'credit_card', action: 'log', count: 1000 }]);
  });
});
