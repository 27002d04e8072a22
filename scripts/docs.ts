// Regenerates the README's parameter table and docs/nag-acknowledgements.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { repoPath } from '../lib/paths';
import { build, VARIANTS } from '../test/helpers/synth';
import { acknowledgementDocument, PARAMETERS_END, PARAMETERS_START, parameterTable } from './doc-tables';

const readmePath = repoPath('README.md');
const readme = readFileSync(readmePath, 'utf8');
const start = readme.indexOf(PARAMETERS_START);
const end = readme.indexOf(PARAMETERS_END);
if (start < 0 || end < start) throw new Error(`README.md needs the markers ${PARAMETERS_START} and ${PARAMETERS_END}`);
writeFileSync(
  readmePath,
  `${readme.slice(0, start + PARAMETERS_START.length)}\n${parameterTable()}\n${readme.slice(end)}`,
);

const apps = Object.fromEntries(Object.entries(VARIANTS).map(([name, context]) => [name, build(context).app]));
writeFileSync(repoPath('docs/nag-acknowledgements.md'), acknowledgementDocument(apps));
console.log('README.md parameter table and docs/nag-acknowledgements.md regenerated');
