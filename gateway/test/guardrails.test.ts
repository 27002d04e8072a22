import { Guardrails } from '../src/guardrails';
import { BUILT_INS, luhnValid, myNumberValid } from '../src/guardrails/detectors';
import type { GuardrailAction } from '../src/records';

/** A seeded PRNG (mulberry32): generated cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const digitsOf = (random: () => number, n: number) =>
  Array.from({ length: n }, () => Math.floor(random() * 10)).join('');

function luhnComplete(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

function myNumberComplete(body: string): string {
  for (let d = 0; d <= 9; d++) if (myNumberValid(body + d)) return body + d;
  throw new Error('unreachable');
}

const found = (text: string) =>
  BUILT_INS.flatMap((d) => d.find(text).map((s) => ({ detector: d.name, text: text.slice(s.start, s.end) })));

describe('detectors', () => {
  it.each([
    ['a Visa test number', 'pay with 4111 1111 1111 1111 today', 'credit_card'],
    ['a card with hyphens', 'card 5500-0000-0000-0004.', 'credit_card'],
    ['a card number beside a phone-like group', 'ref 0000-0000-0004', 'phone'],
    ['an Amex number', 'amex 378282246310005', 'credit_card'],
    ['a My Number', 'マイナンバーは 1234 5678 9018 です', 'my_number'],
    ['an e-mail address', 'write to jane.doe+dify@example.co.jp', 'email'],
    ['an international phone number', 'call +81 90 1234 5678', 'phone'],
    ['a Japanese mobile number', 'tel 090-1234-5678', 'phone'],
    ['a US phone number', 'ring (415) 555-0134', 'phone'],
    ['an AWS access key id', 'key AKIAIOSFODNN7EXAMPLE here', 'aws_access_key'],
    [
      'a private key block',
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----',
      'private_key',
    ],
    [
      'an encrypted private key',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----',
      'private_key',
    ],
  ])('finds %s', (_name, text, detector) => {
    expect(found(text).map((f) => f.detector)).toEqual([detector]);
  });

  it.each([
    ['a digit run failing Luhn', 'order 4111 1111 1111 1112'],
    ['a My Number with a wrong check digit', 'id 1234 5678 9012'],
    ['a plain number', 'version 20240620 of 12 items'],
    ['an address without a domain', 'user@localhost'],
    ['a lower-case AKIA lookalike', 'akiaiosfodnn7example'],
    ['a public key block', '-----BEGIN PUBLIC KEY-----\nMII\n-----END PUBLIC KEY-----'],
    ['a date', 'on 2026-11-22'],
  ])('does not flag %s', (_name, text) => {
    expect(found(text)).toEqual([]);
  });

  it('never flags part of a longer digit sequence as a My Number', () => {
    expect(found('4111 1111 1111 1111').map((f) => f.detector)).toEqual(['credit_card']);
  });

  it('finds every generated valid card and My Number, and none whose check digit was changed (seeded)', () => {
    const random = prng(20261122);
    for (let i = 0; i < 300; i++) {
      const card = luhnComplete(`4${digitsOf(random, 14)}`);
      const wrongCard = card.slice(0, -1) + ((Number(card.at(-1)) + 1 + Math.floor(random() * 8)) % 10);
      expect(found(`x ${card} y`).map((f) => f.detector)).toContain('credit_card');
      expect(found(`x ${wrongCard} y`).map((f) => f.detector)).not.toContain('credit_card');
      const number = myNumberComplete(digitsOf(random, 11));
      const wrongNumber = number.slice(0, -1) + ((Number(number.at(-1)) + 1) % 10);
      if (!myNumberValid(wrongNumber)) {
        expect(found(`番号 ${number} です`).map((f) => f.detector)).toContain('my_number');
        expect(found(`番号 ${wrongNumber} です`).map((f) => f.detector)).not.toContain('my_number');
      }
    }
  });

  it('checks My Number digits with the official weights', () => {
    // The check digit is computed here independently of the implementation, from the published rule.
    const body = '12345678901';
    let sum = 0;
    for (let n = 1; n <= 11; n++) sum += Number(body[11 - n]) * (n <= 6 ? n + 1 : n - 5);
    const check = sum % 11 <= 1 ? 0 : 11 - (sum % 11);
    expect(myNumberValid(body + check)).toBe(true);
    expect(myNumberValid(body + ((check + 1) % 10))).toBe(false);
  });
});

describe('Guardrails.screen', () => {
  const policy =
    (map: Record<string, GuardrailAction>, fallback: GuardrailAction = 'log') =>
    (detector: string) =>
      map[detector] ?? fallback;
  const guardrails = new Guardrails([{ name: 'project-code', pattern: 'PRJ-[0-9]{4}', flags: '' }]);

  it('reads prompt text per API and touches nothing else', () => {
    const bodies: Array<[Parameters<Guardrails['screen']>[0], Record<string, unknown>]> = [
      [
        'chat',
        {
          model: 'jane@example.com',
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'jane@example.com' },
                { type: 'image_url', image_url: { url: 'x' } },
              ],
            },
          ],
        },
      ],
      ['completions', { model: 'm', prompt: ['a', 'jane@example.com'] }],
      ['embeddings', { model: 'm', input: 'jane@example.com' }],
      ['embeddings', { model: 'm', input: [1, 2, 3] }],
      [
        'messages',
        {
          model: 'm',
          system: [{ type: 'text', text: 'jane@example.com' }],
          messages: [{ role: 'user', content: 'hi' }],
        },
      ],
    ];
    const counts = bodies.map(([route, body]) =>
      guardrails.screen(route, body, policy({})).decisions.map((d) => d.count),
    );
    expect(counts).toEqual([[1], [1], [1], [], [1]]);
  });

  it('redacts into a copy, leaving the original body as it was', () => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'mail jane@example.com about PRJ-1234' }] };
    const before = JSON.stringify(body);
    const result = guardrails.screen('chat', body, policy({ email: 'redact', 'custom:project-code': 'redact' }));
    expect(JSON.stringify(body)).toBe(before);
    expect((result.body.messages as Array<{ content: string }>)[0].content).toBe(
      'mail [REDACTED:email] about [REDACTED:custom:project-code]',
    );
    expect(result.blockedBy).toBeNull();
  });

  it('blocks on the first detector whose policy is block, and reports no matched text', () => {
    const result = guardrails.screen(
      'chat',
      { model: 'm', messages: [{ role: 'user', content: 'AKIAIOSFODNN7EXAMPLE and jane@example.com' }] },
      policy({ email: 'block', aws_access_key: 'block' }),
    );
    expect(result.blockedBy).toBe('aws_access_key');
    expect(JSON.stringify(result.decisions)).not.toMatch(/AKIA|jane/);
  });

  it('resolves overlapping matches deterministically: earliest, then longest', () => {
    const g = new Guardrails([{ name: 'long', pattern: 'jane@example\\.com x', flags: '' }]);
    const result = g.screen(
      'chat',
      { model: 'm', messages: [{ role: 'user', content: 'to jane@example.com x' }] },
      policy({}, 'redact'),
    );
    expect((result.body.messages as Array<{ content: string }>)[0].content).toBe('to [REDACTED:custom:long]');
  });

  it('refuses a custom detector that does not compile, naming it', () => {
    expect(() => new Guardrails([{ name: 'broken', pattern: '(unclosed', flags: '' }])).toThrow(
      /custom detector 'broken': invalid regular expression/,
    );
  });

  it('stops counting at the match cap on hostile input', () => {
    const text = 'a@b.co '.repeat(5000);
    const result = guardrails.screen('embeddings', { model: 'm', input: text }, policy({}));
    expect(result.decisions[0].count).toBe(1000);
  });
});
