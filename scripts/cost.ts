// `npm run cost [-- --region ap-northeast-1] [--json]`: a monthly estimate per profile and
// platform, read from the templates each variant synthesizes (offline, in this process) and priced
// with scripts/prices.json. `npm run docs` writes the us-east-1 figures into the README.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, VARIANTS } from '../test/helpers/synth';
import { COST_VARIANTS, estimate, type Estimate } from './cost-estimate';
import { costJson, costMarkdown } from './cost-report';
import { readInventory, type TemplateJson } from './cost-inventory';
import { loadPriceTable, regionPrices, type PriceTable } from './cost-prices';

const USAGE = `usage: npm run cost -- [--region REGION] [--json]

Synthesizes dev and prod on ECS and on EKS (offline), reads what each deployment creates from its
templates, and prints a monthly estimate with every line's quantity, price and assumption.

  --region REGION   price (and synthesize) for this region; default us-east-1
  --json            print JSON instead of markdown
  --help            this text

example: npm run cost -- --region ap-northeast-1`;

export interface CostOptions {
  readonly region: string;
  readonly json: boolean;
  readonly help: boolean;
}

/** Parses the command line; a bad option or an unknown region is an error naming what is known. */
export function parseCostArgs(argv: string[], table: PriceTable): CostOptions {
  let region = 'us-east-1';
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--region' || arg.startsWith('--region=')) {
      const value = arg === '--region' ? argv[(i += 1)] : arg.slice('--region='.length);
      if (value === undefined || value === '')
        throw new Error('--region needs a value, such as --region ap-northeast-1');
      region = value;
    } else throw new Error(`unknown argument "${arg}"; expected --region REGION, --json or --help`);
  }
  regionPrices(table, region);
  return { region, json, help };
}

/** The region whose estimate the README shows. */
export const README_REGION = 'us-east-1';

/** The templates of one variant (as test/helpers/synth.ts defines it), by stack name. */
export function variantTemplates(variant: string, region?: string): Record<string, TemplateJson> {
  const context = VARIANTS[variant];
  if (context === undefined) throw new Error(`no variant "${variant}" in test/helpers/synth.ts`);
  // The variants' own region is the default, us-east-1: the same build (and cache entry) the tests use.
  const built = build(
    region === undefined || region === (context.region ?? README_REGION) ? context : { ...context, region },
  );
  return Object.fromEntries(Object.entries(built.templates).map(([name, template]) => [name, template.toJSON()]));
}

/** Every profile on every platform, synthesized for the region and priced with its prices. */
export function costEstimates(table: PriceTable, region: string, templatesOf = variantTemplates): Estimate[] {
  const prices = regionPrices(table, region);
  return COST_VARIANTS.map(({ profile, platform, variant }) =>
    estimate(readInventory(templatesOf(variant, region)), prices, profile, platform),
  );
}

/** The README's cost section: the us-east-1 estimate, as `npm run cost` prints it. */
export function readmeCostSection(templatesOf = variantTemplates): string {
  const table = loadPriceTable();
  return costMarkdown(costEstimates(table, README_REGION, templatesOf), regionPrices(table, README_REGION));
}

function main(): void {
  const table = loadPriceTable();
  let options: CostOptions;
  try {
    options = parseCostArgs(process.argv.slice(2), table);
  } catch (error) {
    console.error(`cost: ${(error as Error).message}`);
    process.exit(2);
  }
  if (options.help) {
    console.log(USAGE);
    return;
  }
  // Synthesis writes assets to CDK_OUTDIR (a temporary folder unless set): remove what this run made.
  const outdir = mkdtempSync(join(tmpdir(), 'dify-cost-'));
  const previous = process.env.CDK_OUTDIR;
  process.env.CDK_OUTDIR = outdir;
  // Bundling prints to stdout; keep stdout for the estimate.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let estimates: Estimate[];
  try {
    estimates = costEstimates(table, options.region);
  } finally {
    process.stdout.write = write;
    if (previous === undefined) delete process.env.CDK_OUTDIR;
    else process.env.CDK_OUTDIR = previous;
    rmSync(outdir, { recursive: true, force: true });
  }
  const prices = regionPrices(table, options.region);
  for (const e of estimates) {
    for (const u of e.unpriced)
      console.error(`cost: ${e.profile}/${e.platform}: not priced: ${u.what} × ${u.count} (${u.why})`);
  }
  console.log(options.json ? JSON.stringify(costJson(estimates, prices), null, 2) : costMarkdown(estimates, prices));
}

if (require.main === module) main();
