// Regenerates the README's parameter table, docs/nag-acknowledgements.md and the architecture diagrams.
import { readFileSync, writeFileSync } from 'node:fs';
import { repoPath } from '../lib/paths';
import { build, VARIANTS } from '../test/helpers/synth';
import { architectureDiagrams } from './architecture';
import { readmeCostSection } from './cost';
import { COST_END, COST_START } from './cost-report';
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
// The same builds (build() caches them): each diagram is drawn from one of the variants above.
const diagrams = architectureDiagrams((variant) => build(VARIANTS[variant]), VARIANTS);
for (const [file, svg] of Object.entries(diagrams)) writeFileSync(repoPath(file), svg);
// The README's cost section, from the same builds (`npm run cost` prints the same for us-east-1).
const withParameters = readFileSync(readmePath, 'utf8');
const costStart = withParameters.indexOf(COST_START);
const costEnd = withParameters.indexOf(COST_END);
if (costStart < 0 || costEnd < costStart) throw new Error(`README.md needs the markers ${COST_START} and ${COST_END}`);
writeFileSync(
  readmePath,
  `${withParameters.slice(0, costStart + COST_START.length)}\n${readmeCostSection()}\n${withParameters.slice(costEnd)}`,
);
console.log(
  `README.md parameter table and cost section, docs/nag-acknowledgements.md and ${Object.keys(diagrams).join(', ')} regenerated`,
);
