import { readFileSync } from 'node:fs';
import { CONFIG_KEYS } from '../../lib/config/schema';
import { repoPath } from '../../lib/paths';
import { PARAMETERS_END, PARAMETERS_START, parameterTable } from '../../scripts/doc-tables';

describe('the README parameter table', () => {
  const readme = readFileSync(repoPath('README.md'), 'utf8');
  const section = readme
    .slice(readme.indexOf(PARAMETERS_START) + PARAMETERS_START.length, readme.indexOf(PARAMETERS_END))
    .trim();

  it('is generated from the schema and up to date (run `npm run docs`)', () => {
    expect(section).toBe(parameterTable());
  });

  it('documents every key with a description', () => {
    for (const key of CONFIG_KEYS) expect(section).toMatch(new RegExp(`\\| \`${key}\` \\|[^\\n]+\\| [^|]{10,} \\|`));
  });
});
