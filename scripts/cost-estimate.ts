// Prices an inventory (scripts/cost-inventory.ts) with a region's list prices (scripts/prices.json)
// and the usage assumptions below; scripts/cost-report.ts renders the result.
import type { Inventory, Pod } from './cost-inventory';
import type { RegionPrices } from './cost-prices';

export type Profile = 'dev' | 'prod';
export type Platform = 'ecs' | 'eks';

/** Usage the templates cannot tell: traffic, data and log volumes. Stated in every output. */
export interface Assumptions {
  /** Average Aurora capacity: the minimum plus this share of the range above it. */
  readonly auroraLoadShare: number;
  readonly auroraStorageGb: number;
  readonly auroraIoMillions: number;
  readonly natGb: number;
  readonly endpointGb: number;
  /** Average Load Balancer Capacity Units, every hour. */
  readonly albLcu: number;
  /** Requests a month at the front door (CloudFront, WAF, the load balancer). */
  readonly requestsMillions: number;
  /** GB a month CloudFront sends to viewers. */
  readonly cloudFrontGb: number;
  /** GB a month of application and service logs (tasks, pods, database, cache, functions). */
  readonly appLogsGb: number;
  readonly flowLogsGb: number;
  /** GB a month of EKS control-plane logs (audit above all), when the cluster sends them. */
  readonly eksControlPlaneLogsGb: number;
  /** DNS queries a month from the VPC (DNS Firewall and the query log). */
  readonly dnsQueriesMillions: number;
  readonly s3Gb: number;
  readonly s3PutThousands: number;
  readonly s3GetThousands: number;
  readonly kmsRequestsThousands: number;
}

/** The profile's assumed usage: a small team on dev, a department on prod. */
export const ASSUMPTIONS: Record<Profile, Assumptions> = {
  dev: {
    auroraLoadShare: 0.05,
    auroraStorageGb: 10,
    auroraIoMillions: 10,
    natGb: 50,
    endpointGb: 20,
    albLcu: 1,
    requestsMillions: 1,
    cloudFrontGb: 10,
    appLogsGb: 5,
    flowLogsGb: 5,
    eksControlPlaneLogsGb: 5,
    dnsQueriesMillions: 5,
    s3Gb: 10,
    s3PutThousands: 100,
    s3GetThousands: 1000,
    kmsRequestsThousands: 200,
  },
  prod: {
    auroraLoadShare: 0.05,
    auroraStorageGb: 50,
    auroraIoMillions: 100,
    natGb: 200,
    endpointGb: 100,
    albLcu: 2,
    requestsMillions: 10,
    cloudFrontGb: 100,
    appLogsGb: 30,
    flowLogsGb: 20,
    eksControlPlaneLogsGb: 20,
    dnsQueriesMillions: 20,
    s3Gb: 100,
    s3PutThousands: 1000,
    s3GetThousands: 10000,
    kmsRequestsThousands: 1000,
  },
};

/** Fixed modelling choices, the same for every profile. */
export const MODEL = {
  /** Fargate Spot's discount on the on-demand price (it varies; AWS quotes up to 70 %). */
  fargateSpotDiscount: 0.7,
  /** Bytes WAF logs per request. */
  wafLogBytesPerRequest: 1500,
  /** Bytes a Resolver query log entry takes. */
  dnsLogBytesPerQuery: 400,
  /** Bytes a CloudTrail data event takes in CloudWatch Logs. */
  trailEventBytes: 1000,
  /** Stored log size against ingested (CloudWatch bills compressed storage). */
  logCompression: 0.15,
  /** Per node, what Dify's pods cannot use: the kubelet's reserve and Auto Mode's agents. */
  nodeReserve: { vcpu: 0.2, memoryGiB: 1 },
  /** Graviton instance shapes Auto Mode may choose, by the price table's `ec2.<type>.hour` keys. */
  instanceShapes: {
    'm7g.large': { vcpu: 2, memoryGiB: 8 },
    'm7g.xlarge': { vcpu: 4, memoryGiB: 16 },
    'm7g.2xlarge': { vcpu: 8, memoryGiB: 32 },
    'r7g.large': { vcpu: 2, memoryGiB: 16 },
    'r7g.xlarge': { vcpu: 4, memoryGiB: 32 },
  } as Record<string, { vcpu: number; memoryGiB: number }>,
} as const;

/** One priced line: what the template has, how it is priced, and what it costs a month. */
export interface LineItem {
  readonly item: string;
  /** What the templates contain. */
  readonly quantity: string;
  /** The arithmetic, with the prices and assumptions used. */
  readonly basis: string;
  readonly usd: number;
}

export interface Estimate {
  readonly profile: Profile;
  readonly platform: Platform;
  readonly region: string;
  readonly lines: LineItem[];
  readonly totalUsd: number;
  /** What the templates contain that no line prices, and why. */
  readonly unpriced: Inventory['unpriced'];
  /** Billed only by use, at volumes within free tiers or cents (named, not priced). */
  readonly usageOnly: Record<string, number>;
  readonly oneOffTasks: string[];
}

/** A figure without trailing zeros, rounded to cents (or the digits given). */
export const fmt = (value: number, digits = 2) => Number(value.toFixed(digits)).toString();

/** Packs pods first-fit by memory onto nodes of one shape; undefined when a pod fits no node. */
export function packPods(
  pods: Array<Pick<Pod, 'vcpu' | 'memoryGiB' | 'replicas'>>,
  node: { vcpu: number; memoryGiB: number },
  reserve: { vcpu: number; memoryGiB: number },
): number | undefined {
  const room = { vcpu: node.vcpu - reserve.vcpu, memoryGiB: node.memoryGiB - reserve.memoryGiB };
  const replicas = pods
    .flatMap((pod) => Array.from({ length: pod.replicas }, () => pod))
    .sort((a, b) => b.memoryGiB - a.memoryGiB || b.vcpu - a.vcpu);
  const nodes: Array<{ vcpu: number; memoryGiB: number }> = [];
  for (const pod of replicas) {
    if (pod.vcpu > room.vcpu || pod.memoryGiB > room.memoryGiB) return undefined;
    const free = nodes.find((candidate) => candidate.vcpu >= pod.vcpu && candidate.memoryGiB >= pod.memoryGiB);
    const target = free ?? { ...room };
    if (free === undefined) nodes.push(target);
    target.vcpu -= pod.vcpu;
    target.memoryGiB -= pod.memoryGiB;
  }
  return nodes.length;
}

/** Prices one deployment's inventory. */
export function estimate(
  inventory: Inventory,
  prices: RegionPrices,
  profile: Profile,
  platform: Platform,
  assumptions: Assumptions = ASSUMPTIONS[profile],
): Estimate {
  const hours = prices.hoursPerMonth;
  const unpriced = [...inventory.unpriced];
  const price = (key: string): number | undefined => prices.prices[key]?.usd;
  const need = (key: string): number => {
    const value = price(key);
    if (value === undefined) throw new Error(`scripts/prices.json has no "${key}" for ${prices.region}`);
    return value;
  };
  const lines: LineItem[] = [];
  const add = (item: string, quantity: string, basis: string, amount: number) => {
    lines.push({ item, quantity, basis, usd: Math.round(amount * 100) / 100 });
  };

  // Fargate, per architecture and purchase option, at the services' desired counts.
  const groups = new Map<string, typeof inventory.fargate>();
  for (const service of inventory.fargate) {
    const key = `${service.architecture}${service.spot ? ' Spot' : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), service]);
  }
  for (const [key, services] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const architecture = services[0].architecture;
    const vcpu = services.reduce((sum, s) => sum + s.vcpu * s.tasks, 0);
    const memory = services.reduce((sum, s) => sum + s.memoryGiB * s.tasks, 0);
    const tasks = services.reduce((sum, s) => sum + s.tasks, 0);
    const perVcpu = need(`fargate.${architecture}.vcpuHour`);
    const perGb = need(`fargate.${architecture}.gbHour`);
    const factor = services[0].spot ? 1 - MODEL.fargateSpotDiscount : 1;
    add(
      `Fargate ${key}`,
      `${services.length} services, ${tasks} tasks: ${fmt(vcpu)} vCPU, ${fmt(memory)} GiB`,
      `${fmt(vcpu * hours)} vCPU-h × $${perVcpu} + ${fmt(memory * hours)} GB-h × $${perGb}` +
        (factor < 1 ? `, less ${MODEL.fargateSpotDiscount * 100} % (Spot)` : ''),
      (vcpu * hours * perVcpu + memory * hours * perGb) * factor,
    );
  }
  const extraStorage = inventory.fargate.reduce((sum, s) => sum + Math.max(0, s.ephemeralGiB - 20) * s.tasks, 0);
  if (extraStorage > 0) {
    const rate = need('fargate.ephemeralGbHour');
    add(
      'Fargate ephemeral storage',
      `${fmt(extraStorage)} GiB above the 20 included`,
      `${fmt(extraStorage * hours)} GB-h × $${rate}`,
      extraStorage * hours * rate,
    );
  }

  if (inventory.eksClusters > 0) {
    const rate = need('eks.clusterHour');
    add(
      'EKS cluster',
      `${inventory.eksClusters}`,
      `${inventory.eksClusters} × ${hours} h × $${rate}`,
      inventory.eksClusters * hours * rate,
    );
  }
  // Auto Mode nodes: the pool's pods packed onto the cheapest Graviton shape that fits them.
  const feeShare = price('eks.autoModeFeeShare') ?? 0;
  for (const pool of inventory.nodePools) {
    const pods = inventory.pods.filter((pod) => pod.pool === pool.name);
    if (pods.length === 0) continue;
    if (
      !pool.architectures.includes('arm64') ||
      (pool.capacityTypes.length > 0 && !pool.capacityTypes.includes('on-demand'))
    ) {
      unpriced.push({ what: `node pool ${pool.name}`, count: 1, why: 'only on-demand arm64 pools are priced' });
      continue;
    }
    const reserve = {
      vcpu: MODEL.nodeReserve.vcpu + inventory.daemonSet.vcpu,
      memoryGiB: MODEL.nodeReserve.memoryGiB + inventory.daemonSet.memoryGiB,
    };
    const options = Object.entries(MODEL.instanceShapes)
      .filter(([type]) => price(`ec2.${type}.hour`) !== undefined)
      .map(([type, shape]) => {
        const nodes = packPods(pods, shape, reserve);
        return { type, nodes, hourly: nodes === undefined ? Infinity : nodes * need(`ec2.${type}.hour`) };
      })
      .filter((option) => option.nodes !== undefined)
      .sort((a, b) => a.hourly - b.hourly || a.type.localeCompare(b.type));
    const best = options[0];
    if (best === undefined || best.nodes === undefined) {
      unpriced.push({
        what: `node pool ${pool.name}`,
        count: 1,
        why: 'no instance shape in the table fits its largest pod',
      });
      continue;
    }
    const vcpu = pods.reduce((sum, pod) => sum + pod.vcpu * pod.replicas, 0);
    const memory = pods.reduce((sum, pod) => sum + pod.memoryGiB * pod.replicas, 0);
    const rate = need(`ec2.${best.type}.hour`);
    add(
      `EKS Auto Mode nodes, pool ${pool.name}`,
      `${pods.reduce((sum, pod) => sum + pod.replicas, 0)} pods request ${fmt(vcpu)} vCPU, ${fmt(memory)} GiB: ${best.nodes} × ${best.type}`,
      `${best.nodes} × ${hours} h × $${rate} × ${fmt(1 + feeShare)} (Auto Mode fee)`,
      best.nodes * hours * rate * (1 + feeShare),
    );
    const gp3 = need('ebs.gp3.gbMonth');
    add(
      `EKS node volumes, pool ${pool.name}`,
      `${best.nodes} × ${fmt(inventory.nodeVolumeGiB)} GiB gp3`,
      `${fmt(best.nodes * inventory.nodeVolumeGiB)} GB-month × $${gp3}`,
      best.nodes * inventory.nodeVolumeGiB * gp3,
    );
  }

  if (inventory.auroraInstances.length > 0) {
    const acuHours = inventory.auroraInstances.reduce(
      (sum, instance) =>
        sum + (instance.minAcu + assumptions.auroraLoadShare * (instance.maxAcu - instance.minAcu)) * hours,
      0,
    );
    const ranges = [
      ...new Set(inventory.auroraInstances.map((instance) => `${instance.minAcu}–${instance.maxAcu} ACU`)),
    ].join(', ');
    const rate = need('aurora.acuHour');
    add(
      'Aurora Serverless v2',
      `${inventory.auroraInstances.length} instance(s), ${ranges}`,
      `${fmt(acuHours)} ACU-h (minimum + ${assumptions.auroraLoadShare * 100} % of the range) × $${rate}`,
      acuHours * rate,
    );
    const storage = need('aurora.storageGbMonth');
    const io = need('aurora.ioPerMillion');
    add(
      'Aurora storage and I/O',
      `${inventory.auroraClusters} cluster(s), Aurora Standard`,
      `${assumptions.auroraStorageGb} GB × $${storage} + ${assumptions.auroraIoMillions} M I/O × $${io}`,
      assumptions.auroraStorageGb * storage + assumptions.auroraIoMillions * io,
    );
  }

  for (const cache of inventory.cacheNodes) {
    const key = `elasticache.${cache.engine}.${cache.nodeType}.hour`;
    const rate = price(key);
    if (rate === undefined) {
      unpriced.push({
        what: `ElastiCache ${cache.engine} ${cache.nodeType}`,
        count: cache.count,
        why: `scripts/prices.json has no "${key}"`,
      });
      continue;
    }
    add(
      `ElastiCache (${cache.engine})`,
      `${cache.count} × ${cache.nodeType}`,
      `${cache.count} × ${hours} h × $${rate}`,
      cache.count * hours * rate,
    );
  }

  if (inventory.natGateways > 0) {
    const rate = need('nat.hour');
    const perGb = need('nat.gb');
    add(
      'NAT gateways',
      `${inventory.natGateways}`,
      `${inventory.natGateways} × ${hours} h × $${rate}`,
      inventory.natGateways * hours * rate,
    );
    add(
      'NAT data processing',
      `${inventory.natGateways} gateway(s)`,
      `${assumptions.natGb} GB × $${perGb}`,
      assumptions.natGb * perGb,
    );
  }
  if (inventory.publicIpv4 > 0) {
    const rate = need('publicIpv4.hour');
    add(
      'Public IPv4 addresses',
      `${inventory.publicIpv4}`,
      `${inventory.publicIpv4} × ${hours} h × $${rate}`,
      inventory.publicIpv4 * hours * rate,
    );
  }
  if (inventory.interfaceEndpoints.length > 0) {
    const zoneHours = inventory.interfaceEndpoints.reduce((sum, endpoint) => sum + endpoint.zones, 0) * hours;
    const rate = need('vpce.interfaceAzHour');
    const perGb = need('vpce.gb');
    const zones = [...new Set(inventory.interfaceEndpoints.map((endpoint) => endpoint.zones))].join('/');
    add(
      'VPC interface endpoints',
      `${inventory.interfaceEndpoints.length} in ${zones} zones: ${inventory.interfaceEndpoints.map((e) => e.service).join(', ')}`,
      `${fmt(zoneHours)} endpoint-zone-h × $${rate} + ${assumptions.endpointGb} GB × $${perGb}`,
      zoneHours * rate + assumptions.endpointGb * perGb,
    );
  }
  for (const lb of inventory.loadBalancers) {
    const rate = need('alb.hour');
    const lcu = need('alb.lcuHour');
    add(
      'Application Load Balancer',
      `1, ${lb.scheme}`,
      `${hours} h × $${rate} + ${assumptions.albLcu} LCU × ${hours} h × $${lcu}`,
      hours * rate + assumptions.albLcu * hours * lcu,
    );
  }
  if (inventory.distributions > 0) {
    const perGb = need('cloudfront.gb');
    const per10k = need('cloudfront.httpsPer10k');
    const requests = assumptions.requestsMillions * 100;
    add(
      'CloudFront',
      `${inventory.distributions} distribution(s)`,
      `${assumptions.cloudFrontGb} GB × $${perGb} + ${assumptions.requestsMillions} M HTTPS requests × $${per10k} per 10k`,
      assumptions.cloudFrontGb * perGb + requests * per10k,
    );
    if (inventory.cloudFrontFunctions > 0) {
      const perMillion = need('cloudfront.functionPerMillion');
      add(
        'CloudFront Functions',
        `${inventory.cloudFrontFunctions}`,
        `${assumptions.requestsMillions} M invocations × $${perMillion} per million`,
        assumptions.requestsMillions * perMillion,
      );
    }
  }
  for (const acl of inventory.webAcls) {
    const month = need('waf.webAclMonth');
    const rule = need('waf.ruleMonth');
    const perMillion = need('waf.perMillionRequests');
    add(
      `WAF web ACL (${acl.scope.toLowerCase()})`,
      `1 web ACL, ${acl.rules} rules`,
      `$${month} + ${acl.rules} × $${rule} + ${assumptions.requestsMillions} M requests × $${perMillion}`,
      month + acl.rules * rule + assumptions.requestsMillions * perMillion,
    );
  }

  if (inventory.kmsKeys > 0) {
    const rate = need('kms.keyMonth');
    const per10k = need('kms.per10kRequests');
    add(
      'KMS keys',
      `${inventory.kmsKeys}`,
      `${inventory.kmsKeys} × $${rate} + ${assumptions.kmsRequestsThousands}k requests × $${per10k} per 10k`,
      inventory.kmsKeys * rate + (assumptions.kmsRequestsThousands / 10) * per10k,
    );
  }
  if (inventory.secrets > 0) {
    const rate = need('secretsmanager.secretMonth');
    add('Secrets Manager secrets', `${inventory.secrets}`, `${inventory.secrets} × $${rate}`, inventory.secrets * rate);
  }

  const { alarms } = inventory;
  if (alarms.alarms + alarms.composite > 0) {
    const standard = need('cloudwatch.alarmMetricMonth');
    const high = need('cloudwatch.highResolutionAlarmMetricMonth');
    const composite = need('cloudwatch.compositeAlarmMonth');
    add(
      'CloudWatch alarms',
      `${alarms.alarms} alarms (${alarms.anomalyAlarms} anomaly detection, billed as 3 metrics each), ` +
        `${alarms.standardMetrics + alarms.highResolutionMetrics} billed metrics, ${alarms.composite} composite`,
      `${alarms.standardMetrics} × $${standard}` +
        (alarms.highResolutionMetrics > 0 ? ` + ${alarms.highResolutionMetrics} × $${high}` : '') +
        ` + ${alarms.composite} × $${composite}`,
      alarms.standardMetrics * standard + alarms.highResolutionMetrics * high + alarms.composite * composite,
    );
  }
  if (inventory.dashboards > 0) {
    const rate = need('cloudwatch.dashboardMonth');
    add(
      'CloudWatch dashboards',
      `${inventory.dashboards}`,
      `${inventory.dashboards} × $${rate} (the account's 3 free ones used elsewhere)`,
      inventory.dashboards * rate,
    );
  }
  if (inventory.filterMetrics + inventory.insightRules > 0) {
    const metric = need('cloudwatch.customMetricMonth');
    const rule = need('cloudwatch.contributorInsightsRuleMonth');
    add(
      'Metric filters, Contributor Insights',
      `${inventory.filterMetrics} filter metrics, ${inventory.insightRules} rules`,
      `${inventory.filterMetrics} × $${metric} + ${inventory.insightRules} × $${rule}`,
      inventory.filterMetrics * metric + inventory.insightRules * rule,
    );
  }

  // Logs: what the application writes, plus what the templates' vended logs imply.
  const ingest = need('cloudwatch.logsIngestGb');
  const vended = need('cloudwatch.vendedLogsIngestGb');
  const wafGb = inventory.webAcls.some((acl) => acl.logged)
    ? (assumptions.requestsMillions * 1e6 * MODEL.wafLogBytesPerRequest) / 1e9
    : 0;
  const dnsGb =
    inventory.dnsQueryLogs > 0 ? (assumptions.dnsQueriesMillions * 1e6 * MODEL.dnsLogBytesPerQuery) / 1e9 : 0;
  const dataEvents =
    inventory.s3DataEventTrails > 0 ? (assumptions.s3PutThousands + assumptions.s3GetThousands) * 1000 : 0;
  const trailGb = (dataEvents * MODEL.trailEventBytes) / 1e9;
  const flowGb = inventory.flowLogs.some((flowLog) => flowLog.destination === 'cloud-watch-logs')
    ? assumptions.flowLogsGb
    : 0;
  const eksGb = inventory.eksLogTypes > 0 ? assumptions.eksControlPlaneLogsGb : 0;
  const standardGb = assumptions.appLogsGb + dnsGb + trailGb;
  const vendedGb = flowGb + wafGb + eksGb;
  add(
    'CloudWatch Logs ingestion',
    `${inventory.logGroups} log groups`,
    `${fmt(standardGb)} GB (application ${assumptions.appLogsGb}, DNS queries ${fmt(dnsGb)}, S3 data events ${fmt(trailGb)}) × $${ingest}`,
    standardGb * ingest,
  );
  if (vendedGb > 0) {
    const sources = [
      `${inventory.flowLogs.length} flow log(s)`,
      `${inventory.webAcls.filter((acl) => acl.logged).length} WAF log(s)`,
      ...(eksGb > 0 ? [`${inventory.eksLogTypes} EKS control-plane log types`] : []),
    ];
    add(
      'Vended logs (flow, WAF' + (eksGb > 0 ? ', EKS control plane)' : ')'),
      sources.join(', '),
      `${fmt(vendedGb)} GB (flow ${fmt(flowGb)}, WAF ${fmt(wafGb)}${eksGb > 0 ? `, EKS ${fmt(eksGb)}` : ''}) × $${vended} (vended)`,
      vendedGb * vended,
    );
  }
  const retentionMonths = inventory.logRetentionDays === undefined ? 12 : inventory.logRetentionDays / 30;
  const storedGb = (standardGb + vendedGb) * Math.max(1, retentionMonths) * MODEL.logCompression;
  const storage = need('cloudwatch.logsStorageGbMonth');
  add(
    'CloudWatch Logs storage',
    `retention ${inventory.logRetentionDays ?? 'never expires'} days`,
    `${fmt(storedGb)} GB stored (a month's logs × ${fmt(Math.max(1, retentionMonths))} months × ${MODEL.logCompression} compressed) × $${storage}`,
    storedGb * storage,
  );

  if (inventory.buckets > 0) {
    const gb = need('s3.standardGbMonth');
    const put = need('s3.putPer1k');
    const get = need('s3.getPer1k');
    add(
      'S3',
      `${inventory.buckets} buckets`,
      `${assumptions.s3Gb} GB × $${gb} + ${assumptions.s3PutThousands}k PUT × $${put} + ${assumptions.s3GetThousands}k GET × $${get} per 1k`,
      assumptions.s3Gb * gb + assumptions.s3PutThousands * put + assumptions.s3GetThousands * get,
    );
  }
  if (dataEvents > 0) {
    const rate = need('cloudtrail.dataEventsPer100k');
    add(
      'CloudTrail S3 data events',
      `${inventory.s3DataEventTrails} trail(s)`,
      `${fmt(dataEvents / 1e6)} M events (the S3 requests) × $${rate} per 100k`,
      (dataEvents / 1e5) * rate,
    );
  }
  if (inventory.dnsFirewallAssociations > 0) {
    const rate = need('dnsfirewall.perMillionQueries');
    add(
      'Route 53 Resolver DNS Firewall',
      `${inventory.dnsFirewallAssociations} VPC association(s)`,
      `${assumptions.dnsQueriesMillions} M queries × $${rate}`,
      assumptions.dnsQueriesMillions * rate,
    );
  }
  const registered = inventory.fargate.filter((s) => s.registered).reduce((sum, s) => sum + s.tasks, 0);
  if (inventory.privateDnsNamespaces + registered > 0) {
    const zone = need('route53.hostedZoneMonth');
    const instance = need('cloudmap.instanceMonth');
    add(
      'Cloud Map (service discovery)',
      `${inventory.privateDnsNamespaces} private namespace(s), ${registered} registered tasks`,
      `${inventory.privateDnsNamespaces} hosted zone(s) × $${zone} + ${registered} × $${instance}`,
      inventory.privateDnsNamespaces * zone + registered * instance,
    );
  }

  const totalUsd = Math.round(lines.reduce((sum, line) => sum + line.usd, 0) * 100) / 100;
  return {
    profile,
    platform,
    region: prices.region,
    lines,
    totalUsd,
    unpriced,
    usageOnly: inventory.usageOnly,
    oneOffTasks: inventory.oneOffTasks,
  };
}

/** The deployments estimated: each profile on each platform, as test/helpers/synth.ts's variants. */
export const COST_VARIANTS: ReadonlyArray<{
  readonly profile: Profile;
  readonly platform: Platform;
  readonly variant: string;
}> = [
  { profile: 'dev', platform: 'ecs', variant: 'dev' },
  { profile: 'dev', platform: 'eks', variant: 'eks-dev' },
  { profile: 'prod', platform: 'ecs', variant: 'prod' },
  { profile: 'prod', platform: 'eks', variant: 'eks-prod' },
];
