// The dated price table of `npm run cost` (scripts/prices.json): loaded, checked, and looked up.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { repoPath } from '../lib/paths';

const priceEntry = z
  .object({
    usd: z.number().nonnegative(),
    unit: z.string().optional(),
    source: z.string().min(1).optional(),
    note: z.string().min(1).optional(),
  })
  .strict()
  // A figure nobody can trace is worse than none: each says where it was read, or that it was not checked.
  .refine((entry) => entry.source !== undefined || entry.note !== undefined, {
    message: 'needs a "source" (where the figure was read) or a "note" (why it was not verified)',
  });

const priceTableSchema = z
  .object({
    asOf: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'expected a date such as 2026-12-03' }),
    currency: z.literal('USD'),
    hoursPerMonth: z.number().positive(),
    note: z.string(),
    regions: z.record(
      z.string().regex(/^[a-z]{2}(?:-gov)?-[a-z]+-\d$/, { message: 'expected a region name such as us-east-1' }),
      z.object({ name: z.string(), prices: z.record(z.string(), priceEntry) }).strict(),
    ),
  })
  .strict();

export type PriceEntry = z.infer<typeof priceEntry>;
export type PriceTable = z.infer<typeof priceTableSchema>;

/** One region's prices, with the table's date and hours per month. */
export interface RegionPrices {
  readonly region: string;
  readonly name: string;
  readonly asOf: string;
  readonly hoursPerMonth: number;
  readonly prices: Readonly<Record<string, PriceEntry>>;
}

/**
 * Checks a price table: the shape, a source or a note on every entry, and the same keys in every
 * region (a key missing in one region would price that region's line at nothing).
 */
export function parsePriceTable(json: unknown, origin = 'scripts/prices.json'): PriceTable {
  const parsed = priceTableSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`${origin} is not a valid price table:\n  ${issues.join('\n  ')}`);
  }
  const regions = Object.entries(parsed.data.regions);
  const keys = new Set(regions.flatMap(([, region]) => Object.keys(region.prices)));
  const gaps = regions.flatMap(([name, region]) =>
    [...keys].filter((key) => !(key in region.prices)).map((key) => `${name} has no "${key}"`),
  );
  if (gaps.length > 0) throw new Error(`${origin}: every region needs the same prices; ${gaps.join('; ')}`);
  return parsed.data;
}

/** The repository's price table. */
export function loadPriceTable(): PriceTable {
  return parsePriceTable(JSON.parse(readFileSync(repoPath('scripts/prices.json'), 'utf8')));
}

/** A region's prices; an unknown region is refused with the regions the table knows. */
export function regionPrices(table: PriceTable, region: string): RegionPrices {
  const entry = table.regions[region];
  if (entry === undefined) {
    throw new Error(
      `no prices for region "${region}"; scripts/prices.json has ${Object.keys(table.regions).join(', ')}`,
    );
  }
  return { region, name: entry.name, asOf: table.asOf, hoursPerMonth: table.hoursPerMonth, prices: entry.prices };
}
