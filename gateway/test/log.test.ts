import { MAX_FIELD_CHARS, Telemetry } from '../src/log';

/** What reaches CloudWatch Logs: one bounded JSON object per line, whatever went into it. */
describe('telemetry lines', () => {
  const capture = () => {
    const lines: string[] = [];
    return {
      lines,
      telemetry: new Telemetry(
        (line) => lines.push(line),
        () => Date.UTC(2026, 11, 2),
      ),
    };
  };

  it('cuts every string field, at any depth, and every list, so one line stays small', () => {
    const { lines, telemetry } = capture();
    telemetry.audit({
      type: 'request',
      model: 'm'.repeat(3_000_000),
      guardrails: Array.from({ length: 500 }, () => ({ detector: 'd'.repeat(1000), count: 1 })),
      nested: { b: { c: { d: { e: 'x' } } } },
    });
    telemetry.log('warn', 'event', { reason: 'r'.repeat(100_000) });
    expect(lines.every((line) => line.length < 16 * 1024)).toBe(true);
    const audit = JSON.parse(lines[0]);
    expect(audit.model).toBe(`${'m'.repeat(MAX_FIELD_CHARS)}…(3000000 chars)`);
    expect(audit.guardrails).toHaveLength(32);
    expect(audit.nested.b.c.d).toBe('…');
    expect(JSON.parse(lines[1]).reason).toHaveLength(MAX_FIELD_CHARS + '…(100000 chars)'.length);
  });

  it('writes a line within bounds as it is', () => {
    const { lines, telemetry } = capture();
    const fields = { type: 'request', requestId: 'r-1', guardrails: [{ detector: 'email', action: 'log', count: 1 }] };
    telemetry.audit(fields);
    expect(JSON.parse(lines[0])).toEqual({ time: '2026-12-02T00:00:00.000Z', ...fields });
  });
});
