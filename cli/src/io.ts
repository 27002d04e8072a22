import { createInterface } from 'node:readline';

/** Where a command reads and writes: the terminal in use, buffers in tests. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Reads one secret value from stdin (piped) or a prompt that does not echo (a terminal). */
  readSecret(prompt: string): Promise<string>;
  /** Asks before anything disruptive; `--yes` answers for automation. */
  confirm(question: string): Promise<boolean>;
}

export function terminalIo(): Io {
  const readLine = (prompt: string, hidden: boolean) =>
    new Promise<string>((resolve) => {
      if (!process.stdin.isTTY) {
        let data = '';
        process.stdin.setEncoding('utf8');
        process.stdin.on('data', (chunk) => (data += chunk));
        process.stdin.on('end', () => resolve(data.trim()));
        return;
      }
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      if (hidden) {
        // Write the prompt, then keep readline from echoing what is typed.
        process.stderr.write(prompt);
        (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
        rl.question('', (answer) => {
          rl.close();
          process.stderr.write('\n');
          resolve(answer.trim());
        });
      } else {
        rl.question(prompt, (answer) => {
          rl.close();
          resolve(answer.trim());
        });
      }
    });
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    readSecret: (prompt) => readLine(prompt, true),
    confirm: async (question) => /^y(es)?$/i.test(await readLine(`${question} [y/N] `, false)),
  };
}

/** A fixed-width table for humans; `--json` prints the rows instead. */
export function table(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const columns = Object.keys(rows[0]);
  const text = (v: unknown) => (v === undefined || v === null ? '' : Array.isArray(v) ? v.join(',') : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => text(r[c])))),
  ].join('\n');
}
