/**
 * A generated corpus of ways to slip secrets and personal data past the guardrails, and of ordinary
 * text that must not be mistaken for them. The corpus test (guardrails-corpus.test.ts) asserts every
 * in-scope form is caught; `npm run bench:guardrails` prints detection per form, out-of-scope forms
 * included. Deterministic: the same samples on every run.
 */
import type { Guardrails, Route } from '../../src/guardrails';

export interface Sample {
  /** The evasion class, as the issue names them. */
  readonly family: 'separators' | 'characters' | 'adjacent data' | 'places' | 'splits' | 'out of scope';
  readonly form: string;
  readonly detector: string;
  readonly route: Route;
  readonly body: Record<string, unknown>;
  /** The secret in canonical form: what must not reach the provider (digits only for numbers). */
  readonly secret: string;
}

// --- Base secrets ----------------------------------------------------------------------------------

/** Card numbers of several networks, each with the layout it is printed in. */
export const CARDS: ReadonlyArray<{ number: string; layout: number[] }> = [
  { number: '4111111111111111', layout: [4, 4, 4, 4] },
  { number: '5555555555554444', layout: [4, 4, 4, 4] },
  { number: '2223003122003222', layout: [4, 4, 4, 4] },
  { number: '3530111333300000', layout: [4, 4, 4, 4] },
  { number: '6011111111111117', layout: [4, 4, 4, 4] },
  { number: '378282246310005', layout: [4, 6, 5] },
  { number: '30569309025904', layout: [4, 6, 4] },
];
/** My Numbers with valid check digits (123456789018 is worked by hand in guardrails.test.ts). */
export const MY_NUMBERS = ['123456789018', '000000000060', '876543210989'];
export const EMAILS = ['jane.doe@example.com', 'taro_yamada@example.co.jp'];
export const AWS_KEYS = ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A'];
export const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB',
  'aNDTs2WJyoYbt8yHLjIXuWZYoxdYZu1LE1V3ohBQ0ExdOj21hbgmCkjsLq+ZwLKa',
  '-----END RSA PRIVATE KEY-----',
].join('\n');
const PEM_MATERIAL = 'MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn';

const group = (digits: string, layout: number[], separator: string) => {
  const parts: string[] = [];
  let at = 0;
  for (const size of layout) {
    parts.push(digits.slice(at, at + size));
    at += size;
  }
  return parts.join(separator);
};

/** Digit items: every card and My Number in its printed layout. */
const digitItems = () => [
  ...CARDS.map((c) => ({ detector: 'credit_card', digits: c.number, layout: c.layout })),
  ...MY_NUMBERS.map((n) => ({ detector: 'my_number', digits: n, layout: [4, 4, 4] })),
];

/** Carrying text around a secret, in English and Japanese. */
const contexts = [(s: string) => `Please use ${s} for this.`, (s: string) => `番号は${s}です。`];

const chat = (text: string): Record<string, unknown> => ({
  model: 'm',
  messages: [{ role: 'user', content: text }],
});

// --- Forms ----------------------------------------------------------------------------------------

const SEPARATORS: Record<string, string> = {
  'single space (documented)': ' ',
  'hyphen (documented)': '-',
  dot: '.',
  slash: '/',
  underscore: '_',
  'two spaces': '  ',
  'three spaces': '   ',
  newline: '\n',
  CRLF: '\r\n',
  tab: '\t',
  '" - "': ' - ',
  'no-break space': '\u00a0',
  'narrow no-break space': '\u202f',
  'ideographic space': '\u3000',
  'thin space': '\u2009',
  'en dash': '\u2013',
  'em dash': '\u2014',
  'minus sign': '\u2212',
  'non-breaking hyphen': '\u2011',
  'full-width hyphen-minus': '\uff0d',
  'katakana prolonged sound mark': '\u30fc',
};

/** Digits of other scripts: the code point of each script's zero. */
const SCRIPTS: Record<string, number> = {
  'full-width digits': 0xff10,
  'Arabic-Indic digits': 0x0660,
  'Persian digits': 0x06f0,
  'Devanagari digits': 0x0966,
  'Bengali digits': 0x09e6,
  'Thai digits': 0x0e50,
  'mathematical bold digits': 0x1d7ce,
  'mathematical double-struck digits': 0x1d7d8,
};
const inScript = (text: string, zero: number) => text.replace(/[0-9]/g, (d) => String.fromCodePoint(zero + Number(d)));

const INVISIBLES: Record<string, string> = {
  'zero-width space': '\u200b',
  'zero-width non-joiner': '\u200c',
  'zero-width joiner': '\u200d',
  'word joiner': '\u2060',
  'soft hyphen': '\u00ad',
  'byte order mark': '\ufeff',
};
const interleave = (text: string, filler: string) => [...text].join(filler);
const fullWidth = (text: string) =>
  text.replace(/[!-~]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) - 0x21 + 0xff01));

function separators(): Sample[] {
  const out: Sample[] = [];
  for (const [form, separator] of Object.entries(SEPARATORS)) {
    for (const item of digitItems()) {
      for (const context of contexts) {
        out.push({
          family: 'separators',
          form,
          detector: item.detector,
          route: 'chat',
          body: chat(context(group(item.digits, item.layout, separator))),
          secret: item.digits,
        });
      }
    }
  }
  return out;
}

/** A family's samples, each a chat message built by `wrap` around its text. */
function collector(family: Sample['family'], wrap: (text: string) => string = (text) => text) {
  const out: Sample[] = [];
  const add = (form: string, detector: string, text: string, secret: string) =>
    out.push({ family, form, detector, route: 'chat', body: chat(wrap(text)), secret });
  return { out, add };
}

function characters(): Sample[] {
  const { out, add } = collector('characters', (text) => `see ${text} here`);
  for (const [form, zero] of Object.entries(SCRIPTS)) {
    for (const item of digitItems()) {
      add(form, item.detector, inScript(group(item.digits, item.layout, ' '), zero), item.digits);
      add(`${form}, unbroken`, item.detector, inScript(item.digits, zero), item.digits);
    }
  }
  for (const item of digitItems()) {
    add('full-width digits and hyphens', item.detector, fullWidth(group(item.digits, item.layout, '-')), item.digits);
  }
  for (const [form, filler] of Object.entries(INVISIBLES)) {
    for (const item of digitItems())
      add(`${form} between characters`, item.detector, interleave(item.digits, filler), item.digits);
    for (const email of EMAILS) add(`${form} between characters`, 'email', interleave(email, filler), email);
    for (const key of AWS_KEYS) add(`${form} between characters`, 'aws_access_key', interleave(key, filler), key);
  }
  for (const email of EMAILS) {
    add('full-width @ in an e-mail', 'email', email.replace('@', '\uff20'), email);
    add('full-width e-mail', 'email', fullWidth(email), email);
    add('small commercial at', 'email', email.replace('@', '\ufe6b'), email);
  }
  for (const key of AWS_KEYS) add('full-width AWS key', 'aws_access_key', fullWidth(key), key);
  for (const [form, dash] of Object.entries({
    'katakana prolonged sound mark': '\u30fc',
    'full-width hyphen': '\uff0d',
    hyphen: '\u2010',
    'en dash': '\u2013',
  })) {
    add(`phone with ${form}`, 'phone', `090${dash}1234${dash}5678`, '09012345678');
  }
  add('phone in full-width digits', 'phone', fullWidth('03-1234-5678'), '0312345678');
  add('international phone with no-break spaces', 'phone', '+81\u00a090\u00a01234\u00a05678', '819012345678');
  return out;
}

function adjacent(): Sample[] {
  const { out, add } = collector('adjacent data');
  for (const card of CARDS) {
    for (const separator of [' ', '-', '.']) {
      const printed = group(card.number, card.layout, separator);
      add('card then expiry', 'credit_card', `card ${printed} 12/28`, card.number);
      add(
        'card then expiry with the same separator',
        'credit_card',
        `card ${printed}${separator}12${separator}28`,
        card.number,
      );
      add('card then CVV', 'credit_card', `card ${printed} 123`, card.number);
      add('card then CVV with the same separator', 'credit_card', `card ${printed}${separator}123`, card.number);
      add('card then expiry and CVV', 'credit_card', `card ${printed} 12 28 123`, card.number);
      add('date then card', 'credit_card', `on 2026 12 02 ${printed}`, card.number);
      add('two cards in one run', 'credit_card', `cards ${printed} ${printed}`, card.number);
    }
  }
  for (const key of AWS_KEYS) {
    const groups = (size: number, separator: string) => key.match(new RegExp(`.{1,${size}}`, 'g'))!.join(separator);
    add('AWS key in groups of four with spaces', 'aws_access_key', `key ${groups(4, ' ')} ok`, key);
    add('AWS key in groups of four with hyphens', 'aws_access_key', `key ${groups(4, '-')} ok`, key);
    add('AWS key in groups of five with dots', 'aws_access_key', `key ${groups(5, '.')} ok`, key);
    add('AWS key one character a line', 'aws_access_key', `key\n${groups(1, '\n')}\nok`, key);
    add('AWS key as AKIA then the rest', 'aws_access_key', `key ${key.slice(0, 4)}-${key.slice(4)} ok`, key);
  }
  return out;
}

/** Where a text can sit in each API's body. */
const PLACES: Array<{ form: string; route: Route; body: (text: string) => Record<string, unknown> }> = [
  {
    form: 'chat: system message',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [
        { role: 'system', content: t },
        { role: 'user', content: 'hi' },
      ],
    }),
  },
  {
    form: 'chat: text part',
    route: 'chat',
    body: (t) => ({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: t }] }] }),
  },
  {
    form: 'chat: tool-call arguments',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [
        { role: 'user', content: 'hi' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'pay', arguments: JSON.stringify({ value: t }) } },
          ],
        },
      ],
    }),
  },
  {
    form: 'chat: tool result',
    route: 'chat',
    body: (t) => ({ model: 'm', messages: [{ role: 'tool', tool_call_id: 'c1', content: t }] }),
  },
  {
    form: 'chat: tool result as parts',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [{ role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: t }] }],
    }),
  },
  {
    form: 'chat: tool definition description',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        { type: 'function', function: { name: 'f', description: t, parameters: { type: 'object', properties: {} } } },
      ],
    }),
  },
  {
    form: 'chat: tool definition enum',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        {
          type: 'function',
          function: { name: 'f', parameters: { type: 'object', properties: { v: { type: 'string', enum: [t] } } } },
        },
      ],
    }),
  },
  {
    form: 'chat: tool schema property name',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        {
          type: 'function',
          function: { name: 'f', parameters: { type: 'object', properties: { [t]: { type: 'string' } } } },
        },
      ],
    }),
  },
  {
    form: 'chat: message name',
    route: 'chat',
    body: (t) => ({ model: 'm', messages: [{ role: 'user', name: t, content: 'hi' }] }),
  },
  {
    form: 'chat: image URL',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [{ type: 'image_url', image_url: { url: `https://img.example/p?d=${t.replace(/\s/g, '-')}` } }],
        },
      ],
    }),
  },
  {
    form: 'chat: file part name',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [{ type: 'file', file: { filename: t, file_data: 'data:application/pdf;base64,JVBERi0=' } }],
        },
      ],
    }),
  },
  {
    form: 'chat: another part type',
    route: 'chat',
    body: (t) => ({ model: 'm', messages: [{ role: 'user', content: [{ type: 'input_text', text: t }] }] }),
  },
  {
    form: 'chat: user',
    route: 'chat',
    body: (t) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], user: t }),
  },
  {
    form: 'chat: stop sequence',
    route: 'chat',
    body: (t) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: [t] }),
  },
  {
    form: 'chat: response schema',
    route: 'chat',
    body: (t) => ({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 's', schema: { description: t } } },
    }),
  },
  { form: 'completions: prompt', route: 'completions', body: (t) => ({ model: 'm', prompt: t }) },
  { form: 'completions: suffix', route: 'completions', body: (t) => ({ model: 'm', prompt: 'hi', suffix: t }) },
  { form: 'completions: user', route: 'completions', body: (t) => ({ model: 'm', prompt: 'hi', user: t }) },
  { form: 'embeddings: input', route: 'embeddings', body: (t) => ({ model: 'm', input: [t] }) },
  {
    form: 'messages: system blocks',
    route: 'messages',
    body: (t) => ({
      model: 'm',
      max_tokens: 9,
      system: [{ type: 'text', text: t }],
      messages: [{ role: 'user', content: 'hi' }],
    }),
  },
  {
    form: 'messages: tool_use input',
    route: 'messages',
    body: (t) => ({
      model: 'm',
      max_tokens: 9,
      messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'n', input: { q: t } }] }],
    }),
  },
  {
    form: 'messages: tool_result',
    route: 'messages',
    body: (t) => ({
      model: 'm',
      max_tokens: 9,
      messages: [
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: t }] }] },
      ],
    }),
  },
  {
    form: 'messages: text document',
    route: 'messages',
    body: (t) => ({
      model: 'm',
      max_tokens: 9,
      messages: [
        { role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: t } }] },
      ],
    }),
  },
  {
    form: 'messages: document title',
    route: 'messages',
    body: (t) => ({
      model: 'm',
      max_tokens: 9,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'document', title: t, source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
          ],
        },
      ],
    }),
  },
  {
    form: 'messages: tool definition',
    route: 'messages',
    body: (t) => ({
      model: 'm',
      max_tokens: 9,
      tools: [{ name: 'f', description: t, input_schema: { type: 'object' } }],
      messages: [{ role: 'user', content: 'hi' }],
    }),
  },
  {
    form: 'messages: metadata',
    route: 'messages',
    body: (t) => ({ model: 'm', max_tokens: 9, metadata: { user_id: t }, messages: [{ role: 'user', content: 'hi' }] }),
  },
];

const plainItems = () => [
  ...CARDS.map((c) => ({ detector: 'credit_card', text: group(c.number, c.layout, ' '), secret: c.number })),
  ...MY_NUMBERS.map((n) => ({ detector: 'my_number', text: group(n, [4, 4, 4], '-'), secret: n })),
  ...EMAILS.map((e) => ({ detector: 'email', text: e, secret: e })),
  ...AWS_KEYS.map((k) => ({ detector: 'aws_access_key', text: k, secret: k })),
  { detector: 'phone', text: '+81 90-1234-5678', secret: '819012345678' },
  { detector: 'private_key', text: PEM, secret: PEM_MATERIAL },
];

function places(): Sample[] {
  return PLACES.flatMap((place) =>
    plainItems()
      // A URL cannot carry a PEM block's spaces and line breaks: keys in URLs are base64, out of scope.
      .filter((item) => !(place.form === 'chat: image URL' && item.detector === 'private_key'))
      .map((item) => ({
        family: 'places' as const,
        form: place.form,
        detector: item.detector,
        route: place.route,
        body: place.body(item.text),
        secret: item.secret,
      })),
  );
}

function splits(): Sample[] {
  const out: Sample[] = [];
  const parts = (texts: string[]) => ({
    model: 'm',
    messages: [{ role: 'user', content: texts.map((text) => ({ type: 'text', text })) }],
  });
  const messages = (texts: string[]) => ({
    model: 'm',
    messages: texts.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content })),
  });
  const anthropic = (texts: string[]) => ({
    model: 'm',
    max_tokens: 9,
    messages: [{ role: 'user', content: texts.map((text) => ({ type: 'text', text })) }],
  });
  for (const item of plainItems()) {
    const half = Math.floor(item.text.length / 2);
    const third = Math.floor(item.text.length / 3);
    const two = [`my value is ${item.text.slice(0, half)}`, `${item.text.slice(half)} ok`];
    const three = [
      `value ${item.text.slice(0, third)}`,
      item.text.slice(third, 2 * third),
      `${item.text.slice(2 * third)} end`,
    ];
    out.push({
      family: 'splits',
      form: 'two text parts',
      detector: item.detector,
      route: 'chat',
      body: parts(two),
      secret: item.secret,
    });
    out.push({
      family: 'splits',
      form: 'two messages',
      detector: item.detector,
      route: 'chat',
      body: messages(two),
      secret: item.secret,
    });
    out.push({
      family: 'splits',
      form: 'three text parts',
      detector: item.detector,
      route: 'chat',
      body: parts(three),
      secret: item.secret,
    });
    out.push({
      family: 'splits',
      form: 'Anthropic text blocks',
      detector: item.detector,
      route: 'messages',
      body: anthropic(two),
      secret: item.secret,
    });
    out.push({
      family: 'splits',
      form: 'system prompt and first message',
      detector: item.detector,
      route: 'messages',
      body: { model: 'm', max_tokens: 9, system: two[0], messages: [{ role: 'user', content: two[1] }] },
      secret: item.secret,
    });
  }
  return out;
}

/** Forms the guardrails do not claim to catch (README: out of scope), measured all the same. */
function outOfScope(): Sample[] {
  const { out, add } = collector('out of scope');
  for (const card of CARDS) {
    add('base64-encoded number', 'credit_card', Buffer.from(card.number).toString('base64'), card.number);
    add(
      'number in words',
      'credit_card',
      [...card.number].map((d) => 'zero one two three four five six seven eight nine'.split(' ')[Number(d)]).join(' '),
      card.number,
    );
    add('one digit per group', 'credit_card', [...card.number].join(' '), card.number);
    add('two-digit groups', 'credit_card', card.number.match(/.{1,2}/g)!.join(' '), card.number);
    add('comma-separated groups', 'credit_card', group(card.number, card.layout, ', '), card.number);
    add('digits reversed', 'credit_card', [...card.number].reverse().join(''), card.number);
  }
  for (const card of CARDS)
    add(
      'percent-encoded separators',
      'credit_card',
      `https://x.example/?q=${group(card.number, card.layout, '%20')}`,
      card.number,
    );
  for (const email of EMAILS) {
    add('"at" and "dot" spelled out', 'email', email.replace('@', ' at ').replace(/\./g, ' dot '), email);
    add('e-mail with spaces around @', 'email', email.replace('@', ' @ '), email);
  }
  for (const key of AWS_KEYS)
    add('Cyrillic homoglyph in an AWS key', 'aws_access_key', key.replace('A', '\u0410'), key);
  return out;
}

/** Every sample, in a stable order. */
export function evasionCorpus(): Sample[] {
  return [...separators(), ...characters(), ...adjacent(), ...places(), ...splits(), ...outOfScope()];
}

/** The value of any decimal digit: its distance from the start of its run of digits, modulo ten. */
function digitValue(ch: string): number {
  const cp = ch.codePointAt(0)!;
  let first = cp;
  while (/\p{Nd}/u.test(String.fromCodePoint(first - 1))) first -= 1;
  return (cp - first) % 10;
}

/**
 * Whether a secret still reaches the provider in a forwarded body (its JSON text), read the way a
 * person or a model would read it, independently of the gateway's own normalizer: compatibility forms
 * folded, invisible characters dropped, digits of every script read as digits. A number counts as
 * present when its digits appear in order with only non-digits between them; a key or an address
 * when it appears with separators squeezed out.
 */
export function stillPresent(forwarded: string, sample: Sample): boolean {
  const text = forwarded.normalize('NFKC').replace(/\p{Default_Ignorable_Code_Point}/gu, '');
  if (/^\d+$/.test(sample.secret)) {
    const digits = [...text].map((ch) => (/\p{Nd}/u.test(ch) ? String(digitValue(ch)) : '')).join('');
    return digits.includes(sample.secret);
  }
  const squeezed = text.replace(/\\[nrt]|[\s\-._/]/g, '');
  return (
    text.toLowerCase().includes(sample.secret.toLowerCase()) || squeezed.includes(sample.secret.replace(/\n/g, ''))
  );
}

/** Ordinary text that no built-in detector may flag. */
export const BENIGN: ReadonlyArray<{ name: string; text: string }> = [
  { name: 'a list of years', text: 'Revenue grew in 2019, 2020, 2021 and 2022.' },
  { name: 'years with spaces', text: 'compare 2019 2020 2021 2022' },
  { name: 'years with dots', text: 'periods 2019.2020.2021.2022' },
  { name: 'a date and time', text: 'on 2026-12-02 at 09:30, then 2026/12/03 17:45' },
  { name: 'prices', text: 'costs $1,234.56, €99.99 and ¥12,800' },
  { name: 'a version string', text: 'upgrade from 1.13.3 to 1.14.0-rc.2' },
  { name: 'an IP address and port', text: 'listening on 192.168.10.20:8080' },
  { name: 'a UUID', text: 'request 2e72765a-f33e-45b9-8ff6-91384f51ad72 failed' },
  { name: 'a git commit', text: 'fixed in ae3637c5b2f1d0e9c8a7b6f5e4d3c2b1a0f9e8d7' },
  { name: 'an ISBN-13', text: 'ISBN 978-3-16-148410-0' },
  { name: 'a Japanese postal code', text: '〒100-0001 東京都千代田区' },
  { name: 'coordinates', text: 'at 35.6812, 139.7671' },
  { name: 'arithmetic', text: '12 + 34 = 46, and 1234 × 5678 = 7006652' },
  { name: 'a table of small numbers', text: '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16' },
  { name: 'a matrix', text: '0 1 0 0\n1 0 1 1\n0 0 1 0\n1 1 1 1' },
  { name: 'an order number of 20 digits', text: 'order 12345678901234567890' },
  { name: 'a handle and a decorator', text: 'ping @jane about @Component' },
  { name: 'an upper-case sentence with ASIA', text: 'ASIA PACIFIC REGION REPORT FOR THE YEAR' },
  { name: 'a Japanese sentence with ー', text: 'コーヒーとケーキを2つ、ソーダを3つください' },
  {
    name: 'a public key block',
    text: '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----',
  },
  { name: 'a quoted END line', text: 'what does "-----END RSA PRIVATE KEY-----" mean?' },
  { name: 'a time range', text: 'open 09:00-17:30' },
  { name: 'a phone-like product code', text: 'SKU 12-3456-789' },
];

/** The share of texts in which a detector finds something, each screened as an embeddings input. */
export function flagRate(guardrails: Guardrails, texts: readonly string[], detector: string): number {
  const flagged = texts.filter((text) =>
    guardrails
      .screen('embeddings', { model: 'm', input: text }, () => 'log')
      .decisions.some((d) => d.detector === detector),
  );
  return flagged.length / texts.length;
}
