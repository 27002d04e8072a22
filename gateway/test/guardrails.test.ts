import {
  CustomDetectorError,
  type GuardrailDecision,
  Guardrails,
  luhnValid,
  MAX_MATCHES_PER_DETECTOR,
  myNumberValid,
  type Route,
} from '../src/guardrails';
import { BUILT_IN_DETECTORS, type GuardrailAction } from '../../contracts/gateway-documents';
import { prng } from './helpers/prng';

const digitsOf = (random: () => number, n: number) =>
  Array.from({ length: n }, () => Math.floor(random() * 10)).join('');

/** The Luhn check digit, computed here from the definition rather than through the implementation. */
function withLuhnDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let n = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) n = n * 2 > 9 ? n * 2 - 9 : n * 2;
    sum += n;
  }
  return `${body}${(10 - (sum % 10)) % 10}`;
}

/** The My Number check digit, from the published rule, independently of the implementation. */
function withMyNumberDigit(body: string): string {
  let sum = 0;
  for (let n = 1; n <= 11; n++) sum += Number(body[11 - n]) * (n <= 6 ? n + 1 : n - 5);
  const r = sum % 11;
  return `${body}${r <= 1 ? 0 : 11 - r}`;
}

/** Another digit in place of the last one. */
const mutateLast = (number: string, random: () => number) =>
  number.slice(0, -1) + ((Number(number.at(-1)) + 1 + Math.floor(random() * 9)) % 10);

const group4 = (digits: string, separator: string) => digits.match(/.{1,4}/g)!.join(separator);

const guardrails = new Guardrails([]);
const everything = () => 'log' as GuardrailAction;

/** The detectors that flag `text` as an embeddings input, with how many times. */
function flagged(text: string, g: Guardrails = guardrails): Record<string, number> {
  const result = g.screen('embeddings', { model: 'm', input: text }, everything);
  return Object.fromEntries(result.decisions.map((d) => [d.detector, d.count]));
}

/** What is left of `text` once every detector redacts. */
function redacted(text: string, g: Guardrails = guardrails): string {
  return g.screen('embeddings', { model: 'm', input: text }, () => 'redact').body.input as string;
}

/** Deep-freezes a body, so any write to it during screening throws (the tests run in strict mode). */
function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) frozen(child);
    Object.freeze(value);
  }
  return value;
}

describe('built-in detectors', () => {
  it('lists the built-ins in the order of records.ts, then custom detectors in document order', () => {
    const g = new Guardrails([
      { name: 'zeta', pattern: 'z', flags: '' },
      { name: 'alpha', pattern: 'a', flags: '' },
    ]);
    expect(g.detectorNames).toEqual([...BUILT_IN_DETECTORS, 'custom:zeta', 'custom:alpha']);
  });

  describe('credit_card', () => {
    it.each([
      ['a Visa number in groups of four', 'pay with 4111 1111 1111 1111 today'],
      ['a number with hyphens', 'card 5500-0000-0000-0004.'],
      ['an unbroken number', 'card:4012888888881881'],
      ['an Amex number, 4-6-5', 'amex 3782 822463 10005'],
      ['an unbroken Amex number', 'amex 378282246310005'],
      ['a Diners number, 4-6-4', 'diners 3056 930902 5904'],
      ['a 13-digit Visa number', 'old visa 4222222222222'],
      ['a 19-digit number', 'card 4000 0000 0000 0000 006'],
      ['a number followed by its expiry', 'card 4111 1111 1111 1111 12/28 cvc 123'],
      ['a number in full-width digits', 'カード４１１１－１１１１－１１１１－１１１１です'],
    ])('finds %s', (_name, text) => {
      expect(flagged(text)).toEqual({ credit_card: 1 });
    });

    it.each([
      ['a 16-digit run that fails Luhn', 'order 4111 1111 1111 1112'],
      ['an unbroken run that fails Luhn', 'order 4111111111111112'],
      ['a valid card number inside a 20-digit identifier', 'trace 41111111111111110000'],
      ['a list of small numbers whose digits pass Luhn', 'scores 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'],
      ['a valid card number in two-digit groups', 'ids 41 11 11 11 11 11 11 11'],
      ['12 digits', 'ref 4111 1111 1111'],
    ])('does not flag %s', (_name, text) => {
      expect(flagged(text).credit_card).toBeUndefined();
    });

    it('redacts the number but not the expiry that follows it', () => {
      expect(redacted('card 4111 1111 1111 1111 12/28')).toBe('card [REDACTED:credit_card] 12/28');
    });

    it('agrees with the Luhn definition', () => {
      expect(luhnValid('79927398713')).toBe(false); // 11 digits: too short for a card, though Luhn-valid
      expect(luhnValid('4111 1111 1111 1111')).toBe(true);
      expect(luhnValid('4111-1111-1111-1112')).toBe(false);
    });
  });

  describe('my_number', () => {
    // 12345678901 -> from the right P1..P11 = 1,0,9,8,7,6,5,4,3,2,1 with weights 2..7 then 2..6:
    // 2+0+36+40+42+42+10+12+12+10+6 = 212; 212 mod 11 = 3; check digit 11 - 3 = 8.
    it.each([
      ['a number in 4-4-4 groups with spaces', 'マイナンバーは 1234 5678 9018 です'],
      ['a number with hyphens', 'my number: 1234-5678-9018'],
      ['an unbroken number', 'number=123456789018;'],
      ['a number in full-width digits', '番号１２３４５６７８９０１８です'],
      ['a number whose remainder is 1 (check digit 0)', 'id 000000000060'],
      ['a number beside a phone number', '番号 123456789018 090-1234-5678'],
    ])('finds %s', (_name, text) => {
      expect(flagged(text).my_number).toBe(1);
    });

    it.each([
      ['a wrong check digit', 'id 1234 5678 9012'],
      ['11 digits', 'id 12345678901'],
      ['13 digits', 'id 1234567890188'],
      ['three groups that belong to a longer chain of four-digit groups', 'ref 1234 5678 9018 2026'],
      ['groups of another shape', 'id 123 456 789 018'],
      ['mixed separators', 'id 1234 5678-9018'],
    ])('does not flag %s', (_name, text) => {
      expect(flagged(text).my_number).toBeUndefined();
    });

    it('applies the official weights (checked against a hand computation)', () => {
      expect(myNumberValid('123456789018')).toBe(true);
      expect(myNumberValid('123456789012')).toBe(false);
      expect(myNumberValid('000000000060')).toBe(true);
      expect(myNumberValid('000000000061')).toBe(false);
    });
  });

  describe('email', () => {
    it.each([
      ['a plain address', 'write to jane@example.com'],
      ['tags and subdomains', 'write to jane.doe+dify@mail.example.co.jp.'],
      ['an address in Japanese text', '連絡先はtaro_yamada@example.jpです'],
    ])('finds %s', (_name, text) => {
      expect(flagged(text)).toEqual({ email: 1 });
    });

    it.each([
      ['an address without a domain', 'user@localhost'],
      ['a handle', 'ping @jane on chat'],
      ['a one-letter top-level domain', 'jane@example.c'],
      ['a decorator', '@Component({selector: "x"})'],
    ])('does not flag %s', (_name, text) => {
      expect(flagged(text)).toEqual({});
    });
  });

  describe('phone', () => {
    it.each([
      ['a Japanese mobile number', 'tel 090-1234-5678'],
      ['a Japanese mobile number with spaces', 'tel 080 1234 5678'],
      ['a Tokyo number', '電話は03-1234-5678まで'],
      ['a Japanese number with parentheses', 'tel 03(1234)5678'],
      ['a toll-free Japanese number', 'call 0120-123-456'],
      ['an international number with spaces', 'call +81 90 1234 5678'],
      ['an international number with hyphens', 'call +81-3-1234-5678'],
      ['an international number with a trunk prefix', 'call +44 (0)20 7946 0958'],
      ['an E.164 number', 'sms +14155550134'],
      ['a US number with parentheses', 'ring (415) 555-0134'],
      ['a US number with a country code', 'ring +1 (415) 555-0134'],
      ['a US number with hyphens', 'ring 415-555-0134 now'],
      ['a US number with dots', 'ring 415.555.0134'],
    ])('finds %s', (_name, text) => {
      expect(flagged(text)).toEqual({ phone: 1 });
    });

    it.each([
      ['a date', 'on 2026-11-22'],
      ['a date with a leading zero', 'on 01-02-2026'],
      ['a version', 'version 1.2.3'],
      ['a plain 10-digit number', 'order 0901234567'],
      ['a time range', '09:00-17:30'],
      ['12 digits in a Japanese layout', 'ref 0000-0000-0004'],
      ['a short international number', 'x +81 12'],
    ])('does not flag %s', (_name, text) => {
      expect(flagged(text)).toEqual({});
    });

    it('never reads a plain long number as a phone number: card, My Number and failing runs alike', () => {
      expect(flagged('4111111111111111')).toEqual({ credit_card: 1 });
      expect(flagged('4111111111111112')).toEqual({});
      expect(flagged('123456789018')).toEqual({ my_number: 1 });
      expect(flagged('+14155550134 4111 1111 1111 1111')).toEqual({ credit_card: 1, phone: 1 });
    });

    it('gives a card number precedence over a phone number that covers the same digits', () => {
      // `+` and 15 digits is an E.164 number in form, and 378282246310005 is a valid Amex number.
      expect(flagged('+378282246310005')).toEqual({ credit_card: 1 });
      expect(redacted('+378282246310005')).toBe('+[REDACTED:credit_card]');
      expect(flagged('+378282246310006')).toEqual({ phone: 1 });
    });
  });

  describe('aws_access_key', () => {
    it.each([
      ['a long-term key id', 'key AKIAIOSFODNN7EXAMPLE here'],
      ['a temporary key id', 'export AWS_ACCESS_KEY_ID=ASIAY34FZKBOKMUTVV7A'],
    ])('finds %s', (_name, text) => {
      expect(flagged(text)).toEqual({ aws_access_key: 1 });
    });

    it.each([
      ['a lower-case lookalike', 'akiaiosfodnn7example'],
      ['a key id one character short', 'AKIAIOSFODNN7EXAMPL'],
      ['a longer identifier that contains one', 'XAKIAIOSFODNN7EXAMPLE'],
      ['another prefix', 'AIDAIOSFODNN7EXAMPLE'],
    ])('does not flag %s', (_name, text) => {
      expect(flagged(text)).toEqual({});
    });
  });

  describe('private_key', () => {
    const block = (label: string) =>
      `-----BEGIN ${label}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAbCdEf==\n-----END ${label}-----`;
    it.each([
      ['an RSA key', block('RSA PRIVATE KEY')],
      ['an EC key', block('EC PRIVATE KEY')],
      ['an OpenSSH key', block('OPENSSH PRIVATE KEY')],
      ['a PKCS#8 key', block('PRIVATE KEY')],
      ['an encrypted PKCS#8 key', block('ENCRYPTED PRIVATE KEY')],
      ['a PGP key', block('PGP PRIVATE KEY BLOCK')],
      ['a key whose END line is missing', '-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADAN'],
    ])('finds %s', (_name, text) => {
      expect(flagged(`here it is:\n${text}\nthanks`)).toEqual({ private_key: 1 });
    });

    it('redacts the whole block from BEGIN through END, and each of two blocks', () => {
      const text = `a ${block('RSA PRIVATE KEY')} b ${block('EC PRIVATE KEY')} c`;
      expect(redacted(text)).toBe('a [REDACTED:private_key] b [REDACTED:private_key] c');
    });

    it('redacts to the end of the text when the END line is missing', () => {
      expect(redacted('key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN')).toBe('key: [REDACTED:private_key]');
    });

    it.each([
      ['a public key', block('PUBLIC KEY')],
      ['a certificate', block('CERTIFICATE')],
      ['an END line alone', '-----END RSA PRIVATE KEY-----'],
    ])('does not flag %s', (_name, text) => {
      expect(flagged(text)).toEqual({});
    });
  });

  it('finds every generated valid card number and My Number, and none whose check digit was changed (seeded)', () => {
    const random = prng(20261122);
    // Grouped 4-4-4-4, hyphenated, or unbroken, by turns. 15- and 19-digit numbers come out unbroken:
    // in groups of four, the first 16 digits of a 19-digit number can be a valid card by themselves.
    const layouts = [' ', '-', ''];
    for (let i = 0; i < 500; i++) {
      const separator = layouts[i % layouts.length];
      const prefix = ['4', '51', '37', '6011'][i % 4];
      const length = [16, 16, 15, 16, 13, 19][i % 6];
      const card = withLuhnDigit(prefix + digitsOf(random, length - prefix.length - 1));
      const wrongCard = mutateLast(card, random);
      expect(flagged(`x ${group4(card, separator)} y`).credit_card).toBe(1);
      expect(flagged(`x ${group4(wrongCard, separator)} y`).credit_card).toBeUndefined();

      const number = withMyNumberDigit(digitsOf(random, 11));
      const wrongNumber = mutateLast(number, random);
      expect(flagged(`番号 ${group4(number, separator)} です`).my_number).toBe(1);
      expect(flagged(`番号 ${group4(wrongNumber, separator)} です`).my_number).toBeUndefined();
    }
  });
});

describe('custom detectors', () => {
  it('compiles a pattern with its flags, adds g, and names it custom:<name>', () => {
    const g = new Guardrails([{ name: 'project-code', pattern: 'prj-[0-9]{4}', flags: 'i' }]);
    expect(flagged('PRJ-1234 and prj-5678', g)).toEqual({ 'custom:project-code': 2 });
    expect(redacted('see PRJ-1234', g)).toBe('see [REDACTED:custom:project-code]');
  });

  it.each([
    [
      'a pattern that does not compile',
      { pattern: '(sk-live-[0-9a-f]+', flags: '' },
      /invalid regular expression \(Unterminated group\)/,
    ],
    ['flags other than i, m, s and u', { pattern: 'x', flags: 'y' }, /flags may only be i, m, s and u/],
    ['a repeated flag', { pattern: 'x', flags: 'ii' }, /flags may only be i, m, s and u/],
    ['a pattern that matches the empty string', { pattern: '(sk-live)?', flags: '' }, /matches the empty string/],
  ])('refuses %s, naming the detector and the problem without the pattern', (_name, fields, problem) => {
    let error: unknown;
    try {
      new Guardrails([
        { name: 'ok', pattern: 'a', flags: '' },
        { name: 'leaked-key', ...fields },
      ]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CustomDetectorError);
    expect((error as CustomDetectorError).code).toBe('invalid_custom_detector');
    expect((error as CustomDetectorError).detector).toBe('leaked-key');
    expect((error as Error).message).toMatch(/^custom detector 'leaked-key': /);
    expect((error as Error).message).toMatch(problem);
    // The pattern may itself be a secret to look for: it never appears in the message.
    expect((error as Error).message).not.toContain(fields.pattern);
  });

  it('refuses two custom detectors with the same name', () => {
    expect(
      () =>
        new Guardrails([
          { name: 'dup', pattern: 'a', flags: '' },
          { name: 'dup', pattern: 'b', flags: '' },
        ]),
    ).toThrow("custom detector 'dup': the name is used by another custom detector");
  });

  it('refuses a malformed name', () => {
    expect(() => new Guardrails([{ name: 'Bad Name', pattern: 'a', flags: '' }])).toThrow(CustomDetectorError);
  });

  it('finds matches of a unicode pattern that can match nothing at some places without looping', () => {
    const g = new Guardrails([{ name: 'emoji', pattern: '\\p{Extended_Pictographic}+', flags: 'u' }]);
    expect(flagged('ok 😀😀 then 🎉', g)).toEqual({ 'custom:emoji': 2 });
  });
});

describe('what is screened: every string the provider reads', () => {
  const g = new Guardrails([{ name: 'secret', pattern: 'SECRET-[0-9]+', flags: '' }]);
  const screenAll = (route: Route, body: Record<string, unknown>) =>
    g.screen(route, frozen(body), (d) => (d === 'custom:secret' ? 'redact' : 'log'));

  // Before, only message text was read: tool-call arguments, tool definitions, image and file parts,
  // message names, `user`, `metadata` and `suffix` went to the provider unscreened. Every string leaf,
  // object key and long integer is read now, wherever it sits.
  it.each<[string, Route, Record<string, unknown>, number]>([
    [
      'chat: content of every role, and tool-call arguments',
      'chat',
      {
        model: 'm',
        messages: [
          { role: 'system', content: 'SECRET-1' },
          { role: 'user', content: 'SECRET-2' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c', function: { arguments: '{"a":"SECRET-3"}' } }] },
          { role: 'tool', tool_call_id: 'c', content: 'SECRET-4' },
        ],
      },
      4,
    ],
    [
      'chat: text parts and image parts alike',
      'chat',
      {
        model: 'm',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'SECRET-1' },
              { type: 'image_url', image_url: { url: 'https://x/SECRET-2' } },
              { type: 'text', text: 'and SECRET-3' },
            ],
          },
        ],
      },
      3,
    ],
    [
      'chat: the model, user, metadata keys and values, and message names',
      'chat',
      {
        model: 'SECRET-1',
        user: 'SECRET-2',
        metadata: { 'SECRET-3': 'SECRET-4' },
        messages: [{ role: 'user', name: 'SECRET-5', content: 'hello' }],
      },
      5,
    ],
    [
      'completions: prompts and suffix',
      'completions',
      { model: 'm', prompt: ['SECRET-1', 'x'], suffix: 'SECRET-2' },
      2,
    ],
    ['completions: token ids are not text', 'completions', { model: 'm', prompt: [1, 2, 3] }, 0],
    ['embeddings: every input', 'embeddings', { model: 'm', input: ['SECRET-1', 'SECRET-2'] }, 2],
    [
      'messages: system, blocks, tool use, tool results, images and metadata',
      'messages',
      {
        model: 'm',
        system: [{ type: 'text', text: 'SECRET-1', cache_control: { type: 'ephemeral' } }],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'SECRET-2' },
              { type: 'image', source: { type: 'base64', data: 'SECRET-3' } },
            ],
          },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'n', input: { q: 'SECRET-4' } }] },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 't', content: 'SECRET-5' },
              { type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'SECRET-6' }] },
            ],
          },
        ],
        metadata: { user_id: 'SECRET-7' },
      },
      7,
    ],
  ])('%s', (_name, route, body, count) => {
    const result = screenAll(route, body);
    expect(result.decisions).toEqual(count === 0 ? [] : [{ detector: 'custom:secret', action: 'redact', count }]);
    expect(JSON.stringify(result.body)).not.toMatch(/SECRET-[0-9]/);
  });

  it('reads a long integer as its digits, and redacts it to a string', () => {
    const result = guardrails.screen(
      'chat',
      { model: 'm', messages: [{ role: 'user', content: 'x' }], seed: 4111111111111111 },
      () => 'redact',
    );
    expect(result.decisions).toEqual([{ detector: 'credit_card', action: 'redact', count: 1 }]);
    expect(result.body.seed).toBe('[REDACTED:credit_card]');
  });

  it('renames a redacted key in place, keeping the order of the others', () => {
    const body = { model: 'm', input: 'x', user: 'u', metadata: { a: 1, 'jane@example.com': 2, z: 3 } } as Record<
      string,
      unknown
    >;
    const result = guardrails.screen('embeddings', frozen(body), () => 'redact');
    expect(Object.keys(result.body.metadata as object)).toEqual(['a', '[REDACTED:email]', 'z']);
  });

  it('redacts in place of the original string, leaving the structure as it was', () => {
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'a SECRET-1 b' }] }],
      temperature: 0.2,
    };
    expect(screenAll('chat', body).body).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'a [REDACTED:custom:secret] b' }] }],
      temperature: 0.2,
    });
  });

  it('ignores bodies of an unexpected shape instead of throwing', () => {
    for (const body of [{}, { messages: 'x' }, { messages: [null, 3, { content: 7 }] }, { prompt: { a: 1 } }]) {
      for (const route of ['chat', 'completions', 'embeddings', 'messages'] as const) {
        expect(g.screen(route, body, () => 'block').decisions).toEqual([]);
      }
    }
  });
});

describe('normalized before matching, redacted in the original', () => {
  it.each([
    [
      'full-width digits and hyphens',
      'カード４１１１－１１１１－１１１１－１１１１です',
      'カード[REDACTED:credit_card]です',
    ],
    ['Arabic-Indic digits', 'card ٤١١١ ١١١١ ١١١١ ١١١١ ok', 'card [REDACTED:credit_card] ok'],
    ['mathematical digits (two UTF-16 units each)', 'card 𝟒𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏 ok', 'card [REDACTED:credit_card] ok'],
    [
      'zero-width spaces between the digits',
      'card 4\u200b111 1111\u200b 1111 1111 ok',
      'card [REDACTED:credit_card] ok',
    ],
    ['soft hyphens inside an address', 'to ja\u00adne@exam\u00adple.com now', 'to [REDACTED:email] now'],
    ['a full-width at sign', 'to jane＠example.com now', 'to [REDACTED:email] now'],
    ['no-break spaces as separators', 'card 4111\u00a01111\u00a01111\u00a01111 ok', 'card [REDACTED:credit_card] ok'],
    ['a combining mark next to a match', 'é 4111 1111 1111 1111 é', 'é [REDACTED:credit_card] é'],
  ])('%s', (_name, text, after) => {
    expect(redacted(text)).toBe(after);
  });

  it('leaves text it does not change as the very same string', () => {
    const body = { model: 'm', input: 'plain ASCII text, nothing to see' };
    expect(guardrails.screen('embeddings', body, () => 'redact').body).toBe(body);
  });
});

describe('a secret split between texts the model reads as one', () => {
  const parts = (...texts: string[]) => ({
    model: 'm',
    messages: [{ role: 'user', content: texts.map((text) => ({ type: 'text', text })) }],
  });
  const turns = (...texts: string[]) => ({ model: 'm', messages: texts.map((content) => ({ role: 'user', content })) });

  it.each([
    ['a card number over two text parts', parts('my card is 4111 1111', ' 1111 1111 thanks'), 'credit_card'],
    ['a card number over two messages', turns('my card is 4111 1111', '1111 1111'), 'credit_card'],
    ['a card number over three parts', parts('card 4111', ' 1111 1111 ', '1111 ok'), 'credit_card'],
    ['an address over two parts', parts('mail jane@exam', 'ple.com please'), 'email'],
    ['an AWS key over two messages', turns('key AKIAIOSF', 'ODNN7EXAMPLE'), 'aws_access_key'],
  ])('finds %s, and redacts both halves', (_name, body, detector) => {
    const result = guardrails.screen('chat', body, () => 'redact');
    expect(result.decisions.map((d) => d.detector)).toEqual([detector]);
    const forwarded = JSON.stringify(result.body);
    expect(forwarded).toContain(`[REDACTED:${detector}]`);
    expect(forwarded).not.toMatch(/4111|jane|exam|AKIA/);
  });

  it('does not join unrelated numbers of two messages into a card', () => {
    // 2026 1234 | 5678 9012: the second half alone passes no check; together they form no card either.
    expect(guardrails.screen('chat', turns('in 2026 1234', '5678 9012 items'), () => 'log').decisions).toEqual([]);
  });
});

describe('policy actions', () => {
  const g = new Guardrails([{ name: 'ticket', pattern: 'TICKET-[0-9]+', flags: '' }]);
  const prompt = 'card 4111 1111 1111 1111, mail jane@example.com, key AKIAIOSFODNN7EXAMPLE, TICKET-42';
  const body = () => frozen({ model: 'm', messages: [{ role: 'user', content: prompt }] });
  const policy =
    (map: Record<string, GuardrailAction>, fallback: GuardrailAction = 'log') =>
    (detector: string) =>
      map[detector] ?? fallback;

  it('reports one decision per matching detector, in detector order, with the policy action and count', () => {
    const result = g.screen('chat', body(), policy({ email: 'redact' }));
    expect(result.decisions).toEqual([
      { detector: 'credit_card', action: 'log', count: 1 },
      { detector: 'email', action: 'redact', count: 1 },
      { detector: 'aws_access_key', action: 'log', count: 1 },
      { detector: 'custom:ticket', action: 'log', count: 1 },
    ]);
  });

  it('asks the policy only about detectors that matched', () => {
    const asked: string[] = [];
    g.screen('chat', body(), (d) => {
      asked.push(d);
      return 'log';
    });
    expect(asked).toEqual(['credit_card', 'email', 'aws_access_key', 'custom:ticket']);
  });

  it('log: forwards the same body object', () => {
    const original = body();
    const result = g.screen('chat', original, policy({}));
    expect(result.blockedBy).toBeNull();
    expect(result.body).toBe(original);
  });

  it('block: names the first blocking detector in decision order and forwards nothing changed', () => {
    const original = body();
    const result = g.screen(
      'chat',
      original,
      policy({ 'custom:ticket': 'block', aws_access_key: 'block', email: 'redact' }),
    );
    expect(result.blockedBy).toBe('aws_access_key');
    expect(result.body).toBe(original);
  });

  it('redact: forwards a redacted deep copy and leaves the original untouched', () => {
    const original = body();
    const before = structuredClone(original);
    const result = g.screen('chat', original, policy({ credit_card: 'redact', 'custom:ticket': 'redact' }));
    expect(result.blockedBy).toBeNull();
    expect(result.body).not.toBe(original);
    expect(original).toEqual(before);
    expect((result.body.messages as Array<{ content: string }>)[0].content).toBe(
      'card [REDACTED:credit_card], mail jane@example.com, key AKIAIOSFODNN7EXAMPLE, [REDACTED:custom:ticket]',
    );
  });

  it('never puts matched text in a decision', () => {
    const results = (['log', 'redact', 'block'] as const).map((action) => g.screen('chat', body(), () => action));
    const decisions: GuardrailDecision[] = results.flatMap((r) => r.decisions);
    expect(decisions.length).toBe(12);
    for (const d of decisions) expect(Object.keys(d).sort()).toEqual(['action', 'count', 'detector']);
    const serialized = JSON.stringify(decisions);
    for (const secret of ['4111', 'jane', 'example.com', 'AKIA', 'TICKET-42']) expect(serialized).not.toContain(secret);
  });

  describe('overlapping matches of different detectors', () => {
    const email = 'jane@example.com';
    const screenRedact = (g2: Guardrails, text: string, map: Record<string, GuardrailAction> = {}) =>
      g2.screen('embeddings', { model: 'm', input: text }, policy(map, 'redact'));

    it('merges them, so no character of either survives, under the label of the earliest match', () => {
      const g2 = new Guardrails([{ name: 'domain-tail', pattern: 'example\\.com and more', flags: '' }]);
      const result = screenRedact(g2, `to ${email} and more text`);
      expect(result.body.input).toBe('to [REDACTED:email] text');
      expect(result.decisions.map((d) => d.detector)).toEqual(['email', 'custom:domain-tail']);
    });

    it('labels by the longest match when two start at the same place', () => {
      const g2 = new Guardrails([{ name: 'longer', pattern: 'jane@example\\.com x', flags: '' }]);
      expect(screenRedact(g2, `to ${email} x`).body.input).toBe('to [REDACTED:custom:longer]');
    });

    it('labels by the detector listed first when two matches cover the same text', () => {
      const g2 = new Guardrails([{ name: 'same', pattern: 'jane@example\\.com', flags: '' }]);
      expect(screenRedact(g2, `to ${email}`).body.input).toBe('to [REDACTED:email]');
    });

    it('redacts only the matches whose detector redacts, whatever overlaps them', () => {
      const g2 = new Guardrails([{ name: 'longer', pattern: 'to jane@example\\.com x', flags: '' }]);
      expect(screenRedact(g2, `say to ${email} x`, { 'custom:longer': 'log' }).body.input).toBe(
        'say to [REDACTED:email] x',
      );
    });
  });

  describe('the match cap', () => {
    const text = 'a@b.co '.repeat(MAX_MATCHES_PER_DETECTOR + 500);

    it('stops counting at the cap and says so', () => {
      const result = g.screen('embeddings', { model: 'm', input: text }, policy({}));
      expect(result.decisions).toEqual([{ detector: 'email', action: 'log', count: MAX_MATCHES_PER_DETECTOR }]);
      expect(result.capped).toEqual(['email']);
      expect(result.blockedBy).toBeNull();
    });

    it('counts the cap across all the texts of a request, not per text', () => {
      const input = Array.from({ length: 3 }, () => 'a@b.co '.repeat(MAX_MATCHES_PER_DETECTOR / 2));
      const result = g.screen('embeddings', { model: 'm', input }, policy({}));
      expect(result.decisions[0].count).toBe(MAX_MATCHES_PER_DETECTOR);
    });

    it('blocks rather than forward matches past the cap unredacted (fails closed)', () => {
      const result = g.screen('embeddings', { model: 'm', input: text }, policy({ email: 'redact' }));
      expect(result.blockedBy).toBe('email');
      expect(result.decisions).toEqual([{ detector: 'email', action: 'redact', count: MAX_MATCHES_PER_DETECTOR }]);
    });
  });
});
