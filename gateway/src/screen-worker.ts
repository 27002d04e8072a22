import { isMainThread, parentPort } from 'node:worker_threads';
import { Guardrails, prepareNormalizer } from './guardrails';
import type { ScreenAnswer, ScreenJob } from './screening';

/**
 * The screening worker's loop (screening.ts): one request at a time, each detector set compiled once.
 * Answers with the verdict only, never text of the body; an error is reported by its name.
 */
export function runScreeningWorker(): void {
  const port = parentPort!;
  prepareNormalizer();
  // The budget of a request starts when the worker can take it, not while it loads.
  port.postMessage({ ready: true });
  let current: { version: number; guardrails: Guardrails } | undefined;
  port.on('message', (job: ScreenJob) => {
    let answer: ScreenAnswer;
    try {
      if (current?.version !== job.version) {
        current = { version: job.version, guardrails: new Guardrails(job.custom ?? []) };
      }
      const verdict = current.guardrails.verdict(job.route, job.body, (name) => job.policy[name] ?? 'block');
      answer = { id: job.id, verdict };
    } catch (error) {
      answer = { id: job.id, error: error instanceof Error ? error.name : typeof error };
    }
    port.postMessage(answer);
  });
}

// Bundled on its own (gateway/build.mjs: dist/screen-worker.js), so a worker loads the guardrails
// only, not the AWS SDK and the server.
if (!isMainThread) runScreeningWorker();
