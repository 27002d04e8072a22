// The estimates of `npm run cost` as markdown: totals per profile and platform, the assumptions, and
// each deployment's lines. The README's cost section is this text for us-east-1.
import type { RegionPrices } from './cost-prices';
import { ASSUMPTIONS, type Estimate, MODEL, type Platform, type Profile } from './cost-estimate';

/** Dollars with cents and thousands separators, the same on every machine (no locale). */
export const usd = (value: number) => `$${value.toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}`;

const escape = (text: string) => text.replace(/\|/g, '\\|');

/** What every estimate leaves out, whatever the templates say. */
export const NOT_ESTIMATED = [
  'data transfer out to the internet and between zones',
  'Container Insights (enhanced observability, on both platforms: per metric or observation and per GB of performance logs)',
  "model usage (Bedrock, or the LLM gateway's providers)",
  'ECR storage of the gateway image',
  'Aurora backups beyond the free amount (up to the cluster size), Performance Insights beyond its free 7 days',
  'free tiers, Savings Plans and reserved capacity',
];

function assumptionText(profile: Profile): string {
  const a = ASSUMPTIONS[profile];
  return (
    `Aurora at its minimum ACU plus ${a.auroraLoadShare * 100} % of its range, ${a.auroraStorageGb} GB stored, ` +
    `${a.auroraIoMillions} M I/O; ${a.requestsMillions} M requests and ${a.cloudFrontGb} GB through CloudFront; ` +
    `${a.albLcu} LCU; NAT ${a.natGb} GB, endpoints ${a.endpointGb} GB; logs ${a.appLogsGb} GB from the application ` +
    `and ${a.flowLogsGb} GB of flow logs (on EKS, ${a.eksControlPlaneLogsGb} GB of control-plane logs); ${a.dnsQueriesMillions} M DNS queries; S3 ${a.s3Gb} GB, ` +
    `${a.s3PutThousands}k PUT, ${a.s3GetThousands}k GET; ${a.kmsRequestsThousands}k KMS requests`
  );
}

/** The estimates as markdown: totals, assumptions, then each deployment's lines. */
export function costMarkdown(estimates: Estimate[], prices: RegionPrices): string {
  const total = (profile: Profile, platform: Platform) => {
    const found = estimates.find((e) => e.profile === profile && e.platform === platform);
    return found === undefined ? '—' : usd(found.totalUsd);
  };
  const profiles = [...new Set(estimates.map((e) => e.profile))];
  const platforms = [...new Set(estimates.map((e) => e.platform))];
  const out = [
    `Monthly estimate in ${prices.region} (${prices.name}), list prices as of ${prices.asOf} ` +
      `(scripts/prices.json, each with its source or a note that it was not verified), ${prices.hoursPerMonth} hours a month, ` +
      `read from the templates of the default variants synthesized for ${prices.region}.`,
    '',
    `| platform | ${profiles.join(' | ')} |`,
    `|---|${profiles.map(() => '---:').join('|')}|`,
    ...platforms.map(
      (platform) =>
        `| ${platform.toUpperCase()} | ${profiles.map((profile) => total(profile, platform)).join(' | ')} |`,
    ),
    '',
    'Assumed usage (what a template cannot tell):',
    '',
    ...profiles.map((profile) => `- **${profile}:** ${assumptionText(profile)}.`),
    `- EKS nodes: each pool's pods packed onto the cheapest Graviton shape that fits (${Object.keys(MODEL.instanceShapes).join(', ')}), ` +
      `${MODEL.nodeReserve.vcpu} vCPU and ${MODEL.nodeReserve.memoryGiB} GiB per node kept for the kubelet and agents; Auto Mode's own system pool stays empty.`,
    `- Logs: WAF ${MODEL.wafLogBytesPerRequest} bytes a request, DNS query log ${MODEL.dnsLogBytesPerQuery} bytes a query, ` +
      `S3 data events ${MODEL.trailEventBytes} bytes each; stored logs are ${MODEL.logCompression * 100} % of ingested.`,
    "- Every line uses the region's prices, including the few resources of the us-east-1 stacks (the CloudFront web ACL, its logs, the global alarms).",
    `- Not estimated: ${NOT_ESTIMATED.join('; ')}.`,
  ];
  for (const e of estimates) {
    out.push(
      '',
      `<details><summary>${e.profile} on ${e.platform.toUpperCase()}: ${usd(e.totalUsd)} a month</summary>`,
      '',
      '| item | in the templates | how | per month |',
      '|---|---|---|---:|',
      ...e.lines.map(
        (line) => `| ${escape(line.item)} | ${escape(line.quantity)} | ${escape(line.basis)} | ${usd(line.usd)} |`,
      ),
      `| **total** | | | **${usd(e.totalUsd)}** |`,
      '',
    );
    const usage = Object.entries(e.usageOnly).map(([type, count]) => `${type} × ${count}`);
    if (usage.length > 0) out.push(`Billed only by use, not priced: ${usage.join(', ')}.`, '');
    if (e.oneOffTasks.length > 0) out.push(`Run once per deploy, not priced: ${e.oneOffTasks.join(', ')}.`, '');
    if (e.unpriced.length > 0) {
      out.push(
        `**Not priced (the estimate is low by these):** ${e.unpriced.map((u) => `${u.what} × ${u.count} (${u.why})`).join('; ')}.`,
        '',
      );
    }
    out.push('</details>');
  }
  return out.join('\n');
}

/** The estimates as data (`npm run cost -- --json`): the prices' date, the assumptions, every line. */
export function costJson(estimates: Estimate[], prices: RegionPrices) {
  return {
    region: prices.region,
    regionName: prices.name,
    asOf: prices.asOf,
    hoursPerMonth: prices.hoursPerMonth,
    assumptions: ASSUMPTIONS,
    model: MODEL,
    notEstimated: NOT_ESTIMATED,
    estimates,
  };
}

/** The README's cost section markers; `npm run docs` writes between them. */
export const COST_START =
  '<!-- cost:start (generated by `npm run docs` from the synthesized templates and scripts/prices.json) -->';
export const COST_END = '<!-- cost:end -->';
