import type { App, Stack } from 'aws-cdk-lib';
import { KubectlV36Layer } from '@aws-cdk/lambda-layer-kubectl-v36';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as route53 from 'aws-cdk-lib/aws-route53';
import type { Construct } from 'constructs';
import { OUTPUTS } from '../contracts/stack-outputs';
import type { Config } from './config/schema';
import { type Sizing, sizingFor } from './config/sizing';
import { acknowledgeSynthWarnings, addSynthWarning } from './config/warning-catalog';
import { configWarnings } from './config/warnings';
import { AppSecrets } from './constructs/app-secrets';
import { Cache, CACHE_PORT } from './constructs/cache';
import type { CloudFrontOptions } from './constructs/cloudfront-front';
import { Database } from './constructs/database';
import { type DifyServiceName, flowsFor, SERVICE_ROWS } from './constructs/dify/catalog';
import { DifyServices, type DifyServicesProps } from './constructs/dify/dify-services';
import { SecurityGroupFlows } from './constructs/dify/security-group-flows';
import { DIFY_URL_SURFACE } from './constructs/dify/urls';
import { Edge, type EdgeDomain } from './constructs/edge';
import { Email } from './constructs/email';
import { egressOf } from './constructs/egress';
import { Keys } from './constructs/keys';
import { GATEWAY_ENDPOINT, LlmGateway } from './constructs/llm-gateway';
import type { LogSettings } from './constructs/log-group';
import { Network } from './constructs/network';
import { Observability } from './constructs/observability';
import { SecurityServices } from './constructs/security-services';
import { output } from './constructs/outputs';
import { EcsRuntime } from './constructs/runtime/ecs-runtime';
import { ClusterResponder } from './constructs/runtime/cluster-responder';
import { EksRuntime } from './constructs/runtime/eks-runtime';
import type { DifyRuntime, RunningService } from './constructs/runtime/runtime';
import { Storage } from './constructs/storage';
import { acknowledgeCdkProviders } from './nag/cdk-providers';
import { SecretRotation } from './constructs/secret-rotation';
import { DeploymentStack } from './stacks/deployment-stack';
import { GlobalAlarmsStack } from './stacks/global-alarms-stack';
import { GlobalStack } from './stacks/global-stack';

/**
 * Where each part of the deployment goes. Stacks deploy in this order, and every reference points
 * at a stack deployed earlier.
 */
export interface Placement {
  /** Keys, the VPC and its endpoints, the buckets, Dify's own secrets, the alarm topic. */
  readonly foundation: Stack;
  /** Aurora PostgreSQL and Valkey. */
  readonly data: Stack;
  /** The ECS cluster, and the chokepoints between Dify and the outside: SSRF proxy, sandbox, LLM gateway. */
  readonly runtime: Stack;
  /** The front door and the services it routes to, with those of their tier. */
  readonly main: Stack;
}

/** The services rendered in the runtime stack: chokepoints every other service calls, none of them routed. */
export const RUNTIME_SERVICES: readonly DifyServiceName[] = ['ssrf_proxy', 'sandbox'];

/** Every stack of the app, as `bin/` and the tests build them, and the components they hold. */
export interface DifyApp {
  readonly sizing: Sizing;
  readonly placement: Placement;
  /** The stack named after the deployment: the front door and the services behind it. */
  readonly main: Stack;
  /** The us-east-1 stack CloudFront needs; only with `edge=cloudfront`. */
  readonly global?: GlobalStack;
  /** CloudFront's own alarms, in us-east-1 after the main stack; only with `edge=cloudfront`. */
  readonly globalAlarms?: GlobalAlarmsStack;
  /** Every stack, in the order they deploy. */
  readonly stacks: readonly Stack[];
  readonly keys: Keys;
  readonly network: Network;
  readonly storage: Storage;
  readonly secrets: AppSecrets;
  readonly observability: Observability;
  readonly database: Database;
  readonly cache: Cache;
  readonly edge: Edge;
  readonly gateway: LlmGateway;
  /** Amazon SES for Dify's mail; only with `email=true`. */
  readonly email?: Email;
  /** The ECS runtime: Dify's services with platform=ecs, and the LLM gateway on either platform. */
  readonly platform: EcsRuntime;
  /** Dify's services with platform=eks. */
  readonly eks?: EksRuntime;
  /** Every Dify service, whichever stack renders it. */
  readonly services: Readonly<Record<DifyServiceName, RunningService>>;
}

export interface CreateAppOptions {
  /**
   * Everything in the one stack named after the deployment, as before the split. Only for the test
   * that proves the split moves resources and changes none (a prod deployment with every option on
   * exceeds CloudFormation's 500 resources in one stack).
   * @default false - four stacks: `<name>-Foundation`, `<name>-Data`, `<name>-Runtime` and `<name>`
   */
  readonly singleStack?: boolean;
}

/** Builds the whole app from a validated configuration. `bin/dify.ts` and every test call this. */
export function createApp(app: App, config: Config, options: CreateAppOptions = {}): DifyApp {
  const sizing = sizingFor(config);
  const description = `Dify ${config.difyVersion} on AWS, zero-trust by default (profile ${config.profile}, edge ${config.edge})`;
  const global =
    config.edge === 'cloudfront'
      ? new GlobalStack(app, `${config.stackName}-Global`, {
          config,
          sizing,
          env: { account: config.account, region: 'us-east-1' },
          crossRegionReferences: true,
          description: `${description}: CloudFront web ACL and certificate`,
        })
      : undefined;
  const stack = (suffix: string, part: string) =>
    new DeploymentStack(app, suffix === '' ? config.stackName : `${config.stackName}-${suffix}`, {
      deploymentName: config.stackName,
      azCount: sizing.network.azCount,
      env: { account: config.account, region: config.region },
      crossRegionReferences: global !== undefined && suffix === '',
      description: part === '' ? description : `${description}: ${part}`,
    });
  // Created in deploy order, so that the app lists them in it.
  const placement: Placement = options.singleStack
    ? (() => {
        const only = stack('', '');
        return { foundation: only, data: only, runtime: only, main: only };
      })()
    : {
        foundation: stack('Foundation', 'keys, network, buckets, secrets and the alarm topic'),
        data: stack('Data', 'Aurora PostgreSQL and Valkey'),
        runtime: stack('Runtime', 'the ECS cluster, the SSRF proxy, the sandbox and the LLM gateway'),
        main: stack('', ''),
      };
  const composed = compose(
    placement,
    config,
    sizing,
    global === undefined ? undefined : cloudFrontOptions(config, global),
  );
  if (global !== undefined) placement.main.addStackDependency(global);
  const globalAlarms =
    global === undefined
      ? undefined
      : new GlobalAlarmsStack(app, `${config.stackName}-GlobalAlarms`, {
          env: { account: config.account, region: 'us-east-1' },
          crossRegionReferences: true,
          description: `${description}: CloudFront's alarms`,
          distribution: composed.edge.cloudFront!.distribution,
          alarms: global.observability,
        });
  if (globalAlarms !== undefined) {
    globalAlarms.addStackDependency(placement.main);
    global!.observability.renderDashboards();
  }
  const stacks = [...new Set([placement.foundation, placement.data, placement.runtime, placement.main])];
  for (const each of stacks) acknowledgeCdkProviders(each);
  const all = [...(global ? [global] : []), ...stacks, ...(globalAlarms ? [globalAlarms] : [])];
  // Last, once every construct has added its warnings: those the user accepted on purpose go.
  acknowledgeSynthWarnings(all, config.acknowledgeWarnings);
  return {
    ...composed,
    sizing,
    placement,
    main: placement.main,
    global,
    globalAlarms,
    stacks: all,
  };
}

/**
 * The deployment, part by part, in the order of the architecture: keys, network, storage and secrets;
 * the data tier; the runtime and its chokepoints; the front door and the services behind it.
 */
function compose(
  placement: Placement,
  config: Config,
  sizing: Sizing,
  cloudFront: CloudFrontOptions | undefined,
): Omit<DifyApp, 'sizing' | 'placement' | 'main' | 'global' | 'stacks'> {
  const { foundation, data, runtime, main } = placement;
  const removalPolicy = sizing.retention.removalPolicy;
  const logPrefix = `/dify/${config.stackName}/`;
  const clusterIdentifier = `${config.stackName.toLowerCase()}-aurora`;
  const egress = egressOf(config);

  const keys = new Keys(foundation, 'Keys', {
    logGroupPrefix: logPrefix,
    extraLogGroupPrefixes: [
      `/aws/rds/cluster/${clusterIdentifier}/`,
      `aws-waf-logs-${config.stackName}.`,
      // EKS writes its control-plane logs here (platform=eks), into the group the cluster pre-creates.
      // ... and Container Insights its containers' logs and pod metrics (the groups are created first).
      ...(config.platform === 'eks'
        ? [`/aws/eks/${config.stackName}/`, `/aws/containerinsights/${config.stackName}/`]
        : []),
    ],
    removalPolicy,
  });
  const logs: LogSettings = {
    prefix: logPrefix,
    key: keys.logs,
    retention: sizing.retention.logRetention,
    removalPolicy,
  };
  const network = new Network(foundation, 'Network', {
    cidr: config.vpcCidr,
    sizing: sizing.network,
    logs,
    bedrock: config.bedrockModels.length > 0,
    exec: config.enableExec,
    eks: config.platform === 'eks',
    runtimeMonitoring: config.guardDuty,
  });
  const secrets = new AppSecrets(foundation, 'AppSecrets', { key: keys.secretsKeyFor(foundation), removalPolicy });
  const storage = new Storage(foundation, 'Storage', {
    sizing: sizing.storage,
    dataKey: keys.data,
    cloudFrontLogs: config.edge === 'cloudfront',
  });
  // Through the S3 gateway endpoint, only the deployment's own buckets (and the platform's needs).
  network.restrictS3Endpoint([storage.bucket, storage.pluginBucket]);
  const observability = new Observability(foundation, 'Observability', {
    key: keys.logs,
    alarmEmail: config.alarmEmail,
  });
  network.watchEgress(observability);
  new SecurityServices(foundation, 'SecurityServices', {
    dataEvents:
      (config.s3DataEvents ?? config.profile === 'prod')
        ? { buckets: [storage.bucket, storage.pluginBucket], trailBucket: storage.logBucket }
        : undefined,
    guardDuty: config.guardDuty,
    securityHub: config.securityHub,
    key: keys.logs,
    logs,
  });

  const database = new Database(data, 'Database', {
    network,
    sizing: sizing.database,
    dataKey: keys.data,
    secretsKey: keys.secretsKeyFor(data),
    logs,
    clusterIdentifier,
    alarms: observability,
  });
  const cache = new Cache(data, 'Cache', {
    network,
    sizing: sizing.cache,
    dataKey: keys.data,
    secretsKey: keys.secretsKeyFor(data),
    logs,
    alarms: observability,
  });
  const email =
    config.email && config.domainName !== undefined && config.hostedZoneId !== undefined
      ? new Email(foundation, 'Email', {
          domainName: config.domainName,
          hostedZone: { id: config.hostedZoneId, name: config.hostedZoneName! },
          from: config.emailFrom ?? `no-reply@${config.domainName}`,
          credentialsGeneration: config.emailCredentialsGeneration,
          network,
          secretsKey: keys.secretsKeyFor(foundation),
          logs,
        })
      : undefined;
  const flows = new SecurityGroupFlows(flowsFor(egress), network, [foundation, data, runtime, main]);
  flows.add('database', database);
  flows.add('cache', cache);

  const dify: Omit<DifyServicesProps, 'runtime' | 'services' | 'rendered'> = {
    flows,
    database,
    cache,
    storage,
    secrets,
    sizing: sizing.services,
    versions: { dify: config.difyVersion, pluginDaemon: config.pluginDaemonVersion, sandbox: config.sandboxVersion },
    vpcCidr: config.vpcCidr,
    uploadFileSizeLimitMb: config.uploadFileSizeLimitMb,
    pipMirrorUrl: config.pipMirrorUrl,
    bedrockModels: config.bedrockModels,
    email,
    egress,
  };
  // The front door comes first when everything shares one stack: the services read its URL.
  const edge = (): Edge => {
    const created = new Edge(main, 'Edge', {
      mode: config.edge,
      network,
      logBucket: storage.logBucket,
      domain: domain(main, config),
      rules: {
        allowedIpv4Cidrs: config.allowedIpv4Cidrs,
        allowedIpv6Cidrs: config.allowedIpv6Cidrs,
        rateLimit: config.wafRateLimit,
        loginRateLimit: config.wafLoginRateLimit,
        anonymousIpList: config.wafAnonymousIpList,
      },
      deletionProtection: sizing.edge.deletionProtection,
      logs,
      cloudFront,
      surface: DIFY_URL_SURFACE,
      alarms: observability,
    });
    flows.add('edge', created.loadBalancer);
    return created;
  };
  const ecsRuntime = (scope: Construct) =>
    new EcsRuntime(scope, 'Runtime', {
      network,
      logs,
      execKey: config.enableExec ? keys.logs : undefined,
      alarms: observability,
    });
  // The one place the platform is chosen. The LLM gateway runs on Fargate beside either.
  const platform: DifyServicesProps['runtime'] =
    config.platform === 'eks'
      ? (scope: Construct) =>
          new EksRuntime(scope, 'Eks', {
            clusterName: config.stackName,
            network,
            vpcCidr: config.vpcCidr,
            logs,
            kubectlLayer: new KubectlV36Layer(scope, 'KubectlLayer'),
            removalPolicy,
            alarms: observability,
            edgeSubnets: config.edge === 'alb' ? network.vpc.publicSubnets : network.vpc.privateSubnets,
            gateway: { subnets: network.vpc.privateSubnets, port: GATEWAY_ENDPOINT.port },
            isolatedSandbox: config.eksIsolatedSandbox,
            smtpPort: email?.smtp.port,
          })
      : ecsRuntime;
  const gatewayRuntime = (rendered: DifyRuntime): EcsRuntime =>
    rendered instanceof EcsRuntime ? rendered : ecsRuntime(runtime);
  const gateway = (ecs: EcsRuntime): LlmGateway => {
    const created = new LlmGateway(runtime, 'LlmGateway', {
      runtime: ecs,
      network,
      logs,
      cache,
      secretsKey: keys.secretsKeyFor(runtime),
      sizing: sizing.services.gateway,
      removalPolicy,
      alarms: observability,
      providerPrivateCidrs: config.gatewayProviderPrivateCidrs,
      internet: egress.internet,
    });
    flows.add('llm_gateway', created.service);
    ecs.watchService(created.service, 'llm-gateway', created.service.service);
    return created;
  };

  let services: Record<string, RunningService>;
  let front: Edge;
  let llm: LlmGateway;
  let ecs: EcsRuntime;
  let difyRuntime: DifyRuntime;
  if (runtime === main) {
    front = edge();
    const all = new DifyServices(main, 'Dify', {
      ...dify,
      runtime: platform,
      services: SERVICE_ROWS.map((row) => row.service),
      edge: front,
      publicUrl: front.url,
    });
    difyRuntime = all.runtime;
    ecs = gatewayRuntime(all.runtime);
    llm = gateway(ecs);
    services = all.services;
  } else {
    const chokepoints = new DifyServices(runtime, 'Dify', { ...dify, runtime: platform, services: RUNTIME_SERVICES });
    difyRuntime = chokepoints.runtime;
    ecs = gatewayRuntime(chokepoints.runtime);
    llm = gateway(ecs);
    front = edge();
    const behindTheFrontDoor = new DifyServices(main, 'Dify', {
      ...dify,
      runtime: chokepoints.runtime,
      services: SERVICE_ROWS.map((row) => row.service).filter((service) => !RUNTIME_SERVICES.includes(service)),
      edge: front,
      publicUrl: front.url,
      rendered: chokepoints.services,
    });
    services = { ...chokepoints.services, ...behindTheFrontDoor.services };
  }
  // The services that send mail (environment.ts gives them the SMTP settings) reach SES's endpoint.
  if (email !== undefined) {
    for (const sender of ['api', 'worker'] as const) email.allowSmtpFrom(services[sender], `Dify ${sender}`);
  }
  let responder: ClusterResponder | undefined;
  if (difyRuntime instanceof EksRuntime) {
    responder = new ClusterResponder(difyRuntime, 'Responder', {
      eks: difyRuntime.eks,
      network,
      logs,
      deploymentName: config.stackName,
      cache: { host: cache.host, port: CACHE_PORT, secret: cache.users.dify.secret, connectable: cache },
    });
  }
  new SecretRotation(main, 'SecretRotation', {
    network,
    logs,
    schedule: { expression: config.rotationSchedule, windowHours: config.rotationWindowHours },
    secrets: {
      sandboxApiKey: secrets.sandboxApiKey,
      pluginDaemonKey: secrets.pluginDaemonKey,
      pluginInnerApiKey: secrets.pluginInnerApiKey,
      cacheDify: cache.users.dify.secret,
      cachePluginDaemon: cache.users.pluginDaemon.secret,
      cacheGateway: cache.users.gateway.secret,
      appDatabase: database.appSecret,
      pluginDatabase: database.pluginSecret,
      gatewayPepper: llm.pepper,
    },
    ecs: { cluster: ecs.cluster, services: new Map([...ecs.services, ['Gateway', llm.service.service]]) },
    responder: responder?.function,
    cache: {
      host: cache.host,
      port: CACHE_PORT,
      connectable: cache,
      userIds: {
        cacheDify: cache.users.dify.user.ref,
        cachePluginDaemon: cache.users.pluginDaemon.user.ref,
        cacheGateway: cache.users.gateway.user.ref,
      },
    },
    database: { bootstrap: database.bootstrap.function, masterSecret: database.cluster.secret! },
    gateway: { clients: llm.clients, rehash: llm.rehash },
  });
  // Last: every component has declared what it watches.
  observability.renderDashboards();
  observability.renderIncidents(main);
  if (flows.pending.length > 0) {
    throw new Error(`flows never rendered: ${flows.pending.map((f) => `${f.from} -> ${f.to}`).join(', ')}`);
  }
  // The deployment's profile, which the CLI reports and some of its defaults follow.
  output(main, OUTPUTS.profile, sizing.edge.deletionProtection ? 'prod' : 'dev');
  output(main, OUTPUTS.platform, config.platform);
  for (const warning of configWarnings(config)) addSynthWarning(main, warning.id, warning.message);

  return {
    keys,
    network,
    storage,
    secrets,
    observability,
    database,
    cache,
    edge: front,
    gateway: llm,
    email,
    platform: ecs,
    eks: difyRuntime instanceof EksRuntime ? difyRuntime : undefined,
    services: services as Record<DifyServiceName, RunningService>,
  };
}

function domain(scope: Stack, config: Config): EdgeDomain | undefined {
  if (config.domainName === undefined) return undefined;
  const zone =
    config.hostedZoneId !== undefined && config.hostedZoneName !== undefined
      ? route53.HostedZone.fromHostedZoneAttributes(scope, 'HostedZone', {
          hostedZoneId: config.hostedZoneId,
          zoneName: config.hostedZoneName,
        })
      : undefined;
  return { name: config.domainName, zone, certificateArn: config.certificateArn };
}

function cloudFrontOptions(config: Config, global: GlobalStack): CloudFrontOptions {
  return {
    webAclArn: global.webAcl.arn,
    certificate: global.certificate,
    priceClass:
      cloudfront.PriceClass[
        (
          {
            PriceClass_100: 'PRICE_CLASS_100',
            PriceClass_200: 'PRICE_CLASS_200',
            PriceClass_All: 'PRICE_CLASS_ALL',
          } as const
        )[config.cloudFrontPriceClass ?? 'PriceClass_100']
      ],
    geoAllowlist: config.cloudFrontGeoAllowlist,
  };
}
