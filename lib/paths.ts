import { existsSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The repository root, found from this file whether it runs from `lib/` (jest, tsc) or from
 * `dist/lib/` (the compiled app that `cdk synth` runs).
 */
function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package-lock.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`package-lock.json not found above ${start}`);
    dir = parent;
  }
  return dir;
}

const ROOT = findRoot(__dirname);

/** An absolute path inside the repository. */
export function repoPath(relative: string): string {
  return path.join(ROOT, relative);
}
