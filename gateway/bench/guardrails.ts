/**
 * `npm run bench:guardrails`: what the guardrails catch, per evasion form, and what they cost. Prints
 * the generated corpus's detection rates (test/corpus/evasions.ts; the in-scope ones are asserted at
 * 100% by guardrails-corpus.test.ts), the false-positive rates on random numbers, and the time each
 * detector takes on its worst input at the full 4 MiB body limit. A report, not a test.
 */
import { Guardrails } from '../src/guardrails';
import { BUILT_INS } from '../src/guardrails/detectors';
import { normalize } from '../src/guardrails/normalize';
import { BENIGN, evasionCorpus, flagRate, type Sample, stillPresent } from '../test/corpus/evasions';
import { prng, randomDigits } from '../test/helpers/prng';

const guardrails = new Guardrails([]);

function detection(): void {
  const rows = new Map<string, { samples: number; caught: number; gone: number }>();
  for (const sample of evasionCorpus()) {
    const result = guardrails.screen(sample.route, sample.body, () => 'redact');
    const key = `${sample.family} | ${sample.form}`;
    const row = rows.get(key) ?? { samples: 0, caught: 0, gone: 0 };
    row.samples += 1;
    if (result.decisions.some((d) => d.detector === sample.detector)) row.caught += 1;
    if (!stillPresent(JSON.stringify(result.body), sample as Sample)) row.gone += 1;
    rows.set(key, row);
  }
  console.log('| family | form | samples | caught | redacted (gone from the forwarded body) |');
  console.log('|---|---|---:|---:|---:|');
  const families = new Map<string, { samples: number; caught: number }>();
  for (const [key, row] of rows) {
    const [family, form] = key.split(' | ');
    const pct = (n: number) => `${((n / row.samples) * 100).toFixed(0)}%`;
    console.log(
      `| ${family} | ${form} | ${row.samples} | ${pct(row.caught)} | ${family === 'out of scope' ? '' : pct(row.gone)} |`,
    );
    const total = families.get(family) ?? { samples: 0, caught: 0 };
    total.samples += row.samples;
    total.caught += row.caught;
    families.set(family, total);
  }
  console.log('');
  console.log('| family | samples | caught |');
  console.log('|---|---:|---:|');
  for (const [family, total] of families) {
    console.log(`| ${family} | ${total.samples} | ${((total.caught / total.samples) * 100).toFixed(1)}% |`);
  }
  const flagged = BENIGN.filter(
    ({ text }) =>
      guardrails.screen('chat', { model: 'm', messages: [{ role: 'user', content: text }] }, () => 'log').decisions
        .length > 0,
  );
  console.log(`ordinary texts flagged: ${flagged.length} of ${BENIGN.length}`);
}

function falsePositives(): void {
  const random = prng(20261202);
  const digits = (n: number) => randomDigits(random, n);
  const rate = (texts: string[], detector: string) => flagRate(guardrails, texts, detector);
  const n = 10_000;
  console.log('');
  console.log(`false positives on ${n} random numbers each:`);
  console.log(
    `- 12 digits (an AWS account id) read as a My Number: ${(
      rate(
        Array.from({ length: n }, () => `id ${digits(12)}`),
        'my_number',
      ) * 100
    ).toFixed(1)}%`,
  );
  console.log(
    `- four groups of four digits read as a card: ${(
      rate(
        Array.from({ length: n }, () => `ref ${digits(4)} ${digits(4)} ${digits(4)} ${digits(4)}`),
        'credit_card',
      ) * 100
    ).toFixed(1)}%`,
  );
  console.log(
    `- 16 digits unbroken read as a card: ${(
      rate(
        Array.from({ length: n }, () => `ref ${digits(16)}`),
        'credit_card',
      ) * 100
    ).toFixed(1)}%`,
  );
}

function worstCases(): void {
  const limit = 4 * 1024 * 1024;
  const fill = (unit: string) => unit.repeat(Math.floor(limit / Buffer.byteLength(unit)));
  const cases: Array<[string, keyof typeof BUILT_INS, string]> = [
    ['BEGIN markers with no END', 'private_key', fill('-----BEGIN PRIVATE KEY-----\n')],
    ['one-digit groups', 'credit_card', fill('1 ')],
    ['four-digit groups', 'credit_card', fill('4111 ')],
    ['four-digit groups', 'my_number', fill('1234 ')],
    ['64-character local parts', 'email', fill(`${'a'.repeat(63)}@`)],
    ['zeros and hyphens', 'phone', fill('0-')],
    ['capital As with separators', 'aws_access_key', fill('A ')],
  ];
  console.log('');
  console.log('| worst input at 4 MiB | detector | ms |');
  console.log('|---|---|---:|');
  for (const [name, detector, text] of cases) {
    const start = process.hrtime.bigint();
    BUILT_INS[detector].find(text, 1000);
    console.log(`| ${name} | ${detector} | ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0)} |`);
  }
  for (const [name, text] of [
    ['full-width digits', fill('４')],
    ['endless combining marks', `a${fill('\u0301')}`],
  ] as const) {
    const start = process.hrtime.bigint();
    normalize(text);
    console.log(`| ${name} | (normalizer) | ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0)} |`);
  }
  const body = {
    model: 'm',
    messages: [
      { role: 'user', content: fill('Ordinary prose with a date 2026-12-02, a price of $12.50 and a name. ') },
    ],
  };
  const start = process.hrtime.bigint();
  guardrails.screen('chat', body, () => 'log');
  console.log(
    `| ordinary prose, the whole screen | all | ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0)} |`,
  );
}

detection();
falsePositives();
worstCases();
