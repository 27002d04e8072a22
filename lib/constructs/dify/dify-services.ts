import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { ServicesSizing } from '../../config/sizing';
import type { AppSecrets } from '../app-secrets';
import { type Cache, CACHE_PORT } from '../cache';
import { Database, DATABASE_PORT } from '../database';
import type { Edge } from '../edge';
import type { LogSettings } from '../log-group';
import type { Network } from '../network';
import { EcsRuntime } from '../runtime/ecs-runtime';
import { DifyService, DifyTask } from '../runtime/fargate-service';
import type { Storage } from '../storage';
import { containerSpec, type ContainerContext } from './containers';
import { type DifyServiceName, ENDPOINTS, type SecretName } from './environment';
import { DifyImages, type DifyVersions } from './images';
import { Migration } from './migration';
import { acknowledge } from '../../nag/acknowledge';

/** Paths Dify's own nginx sends to the api; `/e/` goes to the plugin daemon, everything else to web. */
export const API_ROUTES = ['/console/api/*', '/api/*', '/v1/*', '/files/*', '/mcp/*', '/triggers/*'] as const;
export const PLUGIN_ROUTES = ['/e/*'] as const;

export interface DifyServicesProps {
  readonly network: Network;
  readonly logs: LogSettings;
  readonly database: Database;
  readonly cache: Cache;
  readonly storage: Storage;
  readonly secrets: AppSecrets;
  readonly edge: Edge;
  readonly sizing: ServicesSizing;
  readonly versions: DifyVersions;
  readonly vpcCidr: string;
  readonly uploadFileSizeLimitMb: number;
  /** @default - none: plugin and sandbox installs reach PyPI through the SSRF proxy */
  readonly pipMirrorUrl?: string;
  /** Bedrock model ids the plugin daemon may invoke. Empty: no Bedrock permission at all. */
  readonly bedrockModels: readonly string[];
  /** @default - no ECS Exec */
  readonly execKey?: kms.IKey;
}

/**
 * Dify on ECS Fargate: the SSRF proxy, sandbox, plugin daemon, api, worker, beat and web services and
 * the migration task, each with its own task role, security group and encrypted log group, wired to
 * the data tier and registered with the edge. Every flow between them is declared here, and
 * nowhere else, so the security-group matrix reads off this file.
 */
export class DifyServices extends Construct {
  public readonly runtime: EcsRuntime;
  public readonly ssrfProxy: DifyService;
  public readonly sandbox: DifyService;
  public readonly pluginDaemon: DifyService;
  public readonly api: DifyService;
  public readonly worker: DifyService;
  public readonly beat: DifyService;
  public readonly web: DifyService;
  public readonly migrationTask: DifyTask;
  public readonly migration: Migration;
  private readonly sizing: ServicesSizing;

  constructor(scope: Construct, id: string, props: DifyServicesProps) {
    super(scope, id);
    this.sizing = props.sizing;
    const { network, logs, database, cache, storage, sizing } = props;
    this.runtime = new EcsRuntime(this, 'Runtime', { network, logs, execKey: props.execKey });
    const images = new DifyImages(this, 'Images', props.versions);
    const secretOf: Record<SecretName, secretsmanager.ISecret> = {
      secretKey: props.secrets.secretKey,
      sandboxApiKey: props.secrets.sandboxApiKey,
      pluginDaemonKey: props.secrets.pluginDaemonKey,
      pluginInnerApiKey: props.secrets.pluginInnerApiKey,
      initPassword: props.secrets.initPassword,
      cacheDify: cache.users.dify.secret,
      cachePluginDaemon: cache.users.pluginDaemon.secret,
      appDatabase: database.appSecret,
      pluginDatabase: database.pluginSecret,
    };
    const context: ContainerContext = {
      images,
      vpcCidr: props.vpcCidr,
      secret: (ref) => ecs.Secret.fromSecretsManager(secretOf[ref.secret], ref.field),
      wiring: {
        publicUrl: props.edge.url,
        region: Stack.of(this).region,
        databaseHost: database.cluster.clusterEndpoint.hostname,
        databasePort: DATABASE_PORT,
        appDatabase: Database.APP_DATABASE,
        pluginDatabase: Database.PLUGIN_DATABASE,
        cacheHost: cache.host,
        cachePort: CACHE_PORT,
        bucketName: storage.bucket.bucketName,
        pluginBucketName: storage.pluginBucket.bucketName,
        uploadFileSizeLimitMb: props.uploadFileSizeLimitMb,
        pipMirrorUrl: props.pipMirrorUrl,
      },
    };
    const common = { runtime: this.runtime, network, logs };
    const service = (
      construct: string,
      name: string,
      dify: DifyServiceName,
      description: string,
      options: { discoverable?: boolean; singleton?: boolean; spot?: boolean; storageGiB?: number } = {},
    ) =>
      new DifyService(this, construct, {
        ...common,
        name,
        description,
        sizing: sizing[sizingKey(dify)],
        container: containerSpec(dify, context),
        discoverable: options.discoverable,
        deployment: options.singleton === true ? 'singleton' : 'rolling',
        spot: options.spot,
        ephemeralStorageGiB: options.storageGiB,
      });

    this.ssrfProxy = service(
      'SsrfProxy',
      ENDPOINTS.ssrfProxy.name,
      'ssrf_proxy',
      'Dify SSRF proxy: HTTP and HTTPS out',
      {
        discoverable: true,
      },
    );
    this.sandbox = service('Sandbox', ENDPOINTS.sandbox.name, 'sandbox', 'Dify sandbox: no egress but the SSRF proxy', {
      discoverable: true,
    });
    this.pluginDaemon = service('PluginDaemon', ENDPOINTS.pluginDaemon.name, 'plugin_daemon', 'Dify plugin daemon', {
      discoverable: true,
      // Plugins and their Python environments are unpacked on local disk.
      storageGiB: 50,
    });
    this.api = service('Api', ENDPOINTS.api.name, 'api', 'Dify api', { discoverable: true });
    this.worker = service('Worker', 'worker', 'worker', 'Dify Celery worker', { spot: sizing.spotWorker });
    this.beat = service('Beat', 'beat', 'worker_beat', 'Dify Celery beat: exactly one', { singleton: true });
    this.web = service('Web', ENDPOINTS.web.name, 'web', 'Dify web front end');
    this.migrationTask = new DifyTask(this, 'MigrationTask', {
      ...common,
      name: 'migration',
      description: 'Dify database migration task',
      sizing: sizing.migration,
      container: containerSpec('migration', context),
    });

    this.wireSecurityGroups(props);
    this.grantAccess(props);
    this.registerWithEdge(props.edge);

    this.migration = new Migration(this, 'Migration', { ...common, task: this.migrationTask });
    // The migration connects as the `dify` role to the `dify` database, which the bootstrap creates,
    // and fetches the RDS CA through the proxy; api, worker and beat roll only after it exits 0.
    this.migration.resource.node.addDependency(database, cache, this.ssrfProxy.service);
    for (const migrated of [this.api, this.worker, this.beat]) migrated.service.node.addDependency(this.migration);
    this.pluginDaemon.service.node.addDependency(database);
    for (const task of this.tasks) task.acknowledgeRolePolicies();
  }

  /** Every task definition: the seven services and the migration task. */
  public get tasks(): DifyTask[] {
    return [
      this.api,
      this.worker,
      this.beat,
      this.web,
      this.sandbox,
      this.pluginDaemon,
      this.ssrfProxy,
      this.migrationTask,
    ];
  }

  /** Every flow between services and to the data tier, in the order of the reviewed matrix. */
  private wireSecurityGroups(props: DifyServicesProps): void {
    const { database, cache } = props;
    const apiImage = [this.api, this.worker, this.beat];
    for (const client of [...apiImage, this.pluginDaemon, this.migrationTask]) {
      database.connections.allowDefaultPortFrom(client, `Dify ${nameOf(client)} to Aurora`);
      cache.connections.allowDefaultPortFrom(client, `Dify ${nameOf(client)} to Valkey`);
      client.connections.allowTo(this.ssrfProxy, port(this.ssrfProxy), `Dify ${nameOf(client)} to the SSRF proxy`);
    }
    // Beat only publishes scheduled tasks to the broker: it never calls the sandbox or the plugin daemon.
    for (const client of [this.api, this.worker]) {
      client.connections.allowTo(this.sandbox, port(this.sandbox), `Dify ${nameOf(client)} to the sandbox`);
      client.connections.allowTo(
        this.pluginDaemon,
        port(this.pluginDaemon),
        `Dify ${nameOf(client)} to the plugin daemon`,
      );
    }
    this.pluginDaemon.connections.allowTo(this.api, port(this.api), 'Dify plugin daemon to the api inner API');
    // Model plugins call Bedrock from the plugin daemon; no other task reaches its endpoint.
    props.network.allowEndpoints(this.pluginDaemon, 'Dify plugin-daemon', ['BedrockRuntime']);
    // Code in the sandbox reaches nothing but the proxy: no data tier, no other service, no internet.
    this.sandbox.connections.allowTo(this.ssrfProxy, port(this.ssrfProxy), 'Dify sandbox to the SSRF proxy');
    for (const web of [80, 443]) {
      this.ssrfProxy.connections.allowTo(ec2.Peer.anyIpv4(), ec2.Port.tcp(web), `SSRF proxy to the internet on ${web}`);
    }
  }

  private grantAccess(props: DifyServicesProps): void {
    // Only the services that read and write files: the api (uploads), the worker (indexing). The
    // plugin daemon, which runs third-party plugin code, gets its own bucket and never Dify's files
    // (the tenants' private keys live there). Beat, web, the sandbox and the proxy get nothing.
    for (const user of [this.api, this.worker]) props.storage.grantReadWrite(user);
    props.storage.grantPluginStorage(this.pluginDaemon);
    if (props.bedrockModels.length > 0) {
      // Model plugins run inside the plugin daemon, so only its role may invoke, and only these models.
      this.pluginDaemon.taskRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'InvokeListedBedrockModelsOnly',
          actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
          resources: props.bedrockModels.flatMap((model) => bedrockArns(Stack.of(this), model)),
        }),
      );
      const crossRegion = props.bedrockModels
        .flatMap((model) => bedrockArns(Stack.of(this), model))
        .filter((arn) => arn.includes(':bedrock:*::'));
      const policy = this.pluginDaemon.taskRole.node.findChild('DefaultPolicy').node.defaultChild!;
      for (const arn of crossRegion) {
        acknowledge(policy, {
          id: `AwsSolutions-IAM5[Resource::${arn}]`,
          reason:
            'A cross-region inference profile listed in bedrockModels routes each call to one of its regions, so the model is granted in every region but only through the named profile, itself limited to this account and region.',
        });
      }
    }
  }

  private registerWithEdge(edge: Edge): void {
    const api = edge.addTarget('Api', {
      port: ENDPOINTS.api.port,
      healthCheckPath: '/health',
      pathPatterns: API_ROUTES,
      targets: [this.api.service],
      connectable: this.api,
    });
    edge.addTarget('PluginDaemon', {
      port: ENDPOINTS.pluginDaemon.port,
      healthCheckPath: '/health/check',
      pathPatterns: PLUGIN_ROUTES,
      targets: [this.pluginDaemon.service],
      connectable: this.pluginDaemon,
    });
    const web = edge.addTarget('Web', {
      port: ENDPOINTS.web.port,
      healthCheckPath: '/apps',
      targets: [this.web.service],
      connectable: this.web,
    });
    const { api: apiSize, web: webSize, worker: workerSize } = this.sizing;
    const scaling = (svc: DifyService, size: { minTasks: number; maxTasks: number }) => {
      const target = svc.service.autoScaleTaskCount({ minCapacity: size.minTasks, maxCapacity: size.maxTasks });
      target.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
      return target;
    };
    scaling(this.api, apiSize).scaleOnRequestCount('Requests', { requestsPerTarget: 200, targetGroup: api });
    scaling(this.web, webSize).scaleOnRequestCount('Requests', { requestsPerTarget: 500, targetGroup: web });
    scaling(this.worker, workerSize);
  }

  /** Names of the services' log groups, for the stack's outputs. */
  public get logGroups(): Record<string, string> {
    return Object.fromEntries(
      [
        this.api,
        this.worker,
        this.beat,
        this.web,
        this.sandbox,
        this.pluginDaemon,
        this.ssrfProxy,
        this.migrationTask,
      ].map((task) => [task.node.id, task.logGroup.logGroupName]),
    );
  }
}

const sizingKey = (service: DifyServiceName): keyof Omit<ServicesSizing, 'spotWorker'> =>
  (
    ({
      api: 'api',
      worker: 'worker',
      worker_beat: 'beat',
      migration: 'migration',
      web: 'web',
      sandbox: 'sandbox',
      plugin_daemon: 'pluginDaemon',
      ssrf_proxy: 'ssrfProxy',
    }) as const
  )[service];

const nameOf = (task: DifyTask) => task.container.containerName;
const port = (task: DifyTask) => ec2.Port.tcp(task.port!);

/** Prefixes of Bedrock's cross-region inference profile ids, e.g. `us.anthropic.claude-…`. */
const INFERENCE_PROFILE_PREFIXES = ['us', 'us-gov', 'eu', 'apac', 'jp', 'au', 'ca', 'global'];

/**
 * ARNs that let a role invoke one model: the foundation model in this region, or, for a cross-region
 * inference profile id, the profile in this account and region plus the model in the regions the
 * profile routes to (Bedrock checks both).
 */
export function bedrockArns(stack: Stack, model: string): string[] {
  const dot = model.indexOf('.');
  const prefix = model.slice(0, dot);
  if (INFERENCE_PROFILE_PREFIXES.includes(prefix)) {
    return [
      stack.formatArn({ service: 'bedrock', resource: 'inference-profile', resourceName: model }),
      `arn:${stack.partition}:bedrock:*::foundation-model/${model.slice(dot + 1)}`,
    ];
  }
  return [stack.formatArn({ service: 'bedrock', account: '', resource: 'foundation-model', resourceName: model })];
}
