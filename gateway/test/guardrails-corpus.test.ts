import { Guardrails } from '../src/guardrails';
import { BENIGN, evasionCorpus, flagRate, type Sample, stillPresent } from './corpus/evasions';
import { prng, randomDigits } from './helpers/prng';

/**
 * The generated evasion corpus (corpus/evasions.ts): every in-scope form must be caught by the
 * detector it targets and be gone from the body forwarded with `redact`. Out-of-scope forms are
 * measured by `npm run bench:guardrails` and named in the README; they are not asserted here.
 */
const guardrails = new Guardrails([]);
const corpus = evasionCorpus();

function outcome(sample: Sample) {
  const result = guardrails.screen(sample.route, sample.body, () => 'redact');
  return {
    caught: result.decisions.some((d) => d.detector === sample.detector),
    gone: !stillPresent(JSON.stringify(result.body), sample),
  };
}

describe('the evasion corpus', () => {
  const families = ['separators', 'characters', 'adjacent data', 'places', 'splits'] as const;

  it('holds enough samples in every family to mean something', () => {
    for (const family of families) expect(corpus.filter((s) => s.family === family).length).toBeGreaterThanOrEqual(20);
    expect(new Set(corpus.map((s) => s.form)).size).toBeGreaterThan(80);
  });

  it.each(families)('%s: every sample is caught and redacted', (family) => {
    const missed = corpus
      .filter((s) => s.family === family)
      .filter((s) => {
        const { caught, gone } = outcome(s);
        return !caught || !gone;
      })
      .map((s) => `${s.form} (${s.detector})`);
    expect(missed).toEqual([]);
  });

  it('the body forwarded with block is never sent; with log it is unchanged', () => {
    for (const sample of corpus.filter((s) => s.family !== 'out of scope').slice(0, 200)) {
      expect(guardrails.screen(sample.route, sample.body, () => 'block').blockedBy).toBe(sample.detector);
      expect(guardrails.screen(sample.route, sample.body, () => 'log').body).toBe(sample.body);
    }
  });

  it('flags none of the ordinary texts', () => {
    const flagged = BENIGN.filter(
      ({ text }) =>
        guardrails.screen('chat', { model: 'm', messages: [{ role: 'user', content: text }] }, () => 'log').decisions
          .length > 0,
    );
    expect(flagged.map((b) => b.name)).toEqual([]);
  });
});

describe('false positives on random numbers, as measured (the README states these rates)', () => {
  const random = prng(20261202);
  const digits = (n: number) => randomDigits(random, n);
  const rate = (texts: string[], detector: string) => flagRate(guardrails, texts, detector);

  it('a random 12-digit number (an AWS account id) reads as a My Number about one time in eleven', () => {
    const r = rate(
      Array.from({ length: 2000 }, () => `account ${digits(12)} here`),
      'my_number',
    );
    expect(r).toBeGreaterThan(0.06);
    expect(r).toBeLessThan(0.12);
  });

  it('random four-digit groups (4-4-4-4) read as a card only when an issuer prefix and Luhn agree: about one in twenty', () => {
    const r = rate(
      Array.from({ length: 2000 }, () => `ref ${digits(4)} ${digits(4)} ${digits(4)} ${digits(4)}`),
      'credit_card',
    );
    expect(r).toBeGreaterThan(0.02);
    expect(r).toBeLessThan(0.08);
  });

  it('lists of years never read as a card or a My Number', () => {
    const years = Array.from({ length: 500 }, () => {
      const start = 1990 + Math.floor(random() * 40);
      return `in ${start} ${start + 1} ${start + 2} ${start + 3} and ${start}, ${start + 1}, ${start + 2}`;
    });
    expect([rate(years, 'credit_card'), rate(years, 'my_number')]).toEqual([0, 0]);
  });
});
