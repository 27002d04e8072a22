import { tearDownRun } from './test-run';

/** jest.config.js's globalTeardown: removes the run's directory and checks for litter (test/helpers/test-run.ts). */
export default function globalTeardown(): void {
  tearDownRun();
}
