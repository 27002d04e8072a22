import { execFileSync } from 'node:child_process';

/** `squid` when it is installed (`squid -v` runs), else undefined; the tests that need it say how to install it. */
export const SQUID = (() => {
  try {
    execFileSync('squid', ['-v'], { stdio: 'ignore' });
    return 'squid';
  } catch {
    return undefined;
  }
})();
