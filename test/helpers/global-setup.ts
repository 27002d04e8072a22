import { setUpRun } from './test-run';

/** jest.config.js's globalSetup: the run's own directory (test/helpers/test-run.ts). */
export default function globalSetup(): void {
  setUpRun();
}
