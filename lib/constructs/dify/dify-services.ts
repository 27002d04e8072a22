import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IDependable } from 'constructs';
import type { ServicesSizing } from '../../config/sizing';
import { acknowledge } from '../../nag/acknowledge';
import type { AppSecrets } from '../app-secrets';
import { type Cache, CACHE_PORT } from '../cache';
import { Database, DATABASE_PORT } from '../database';
import type { Edge } from '../edge';
import type { Email } from '../email';
import { type Egress, NAT_EGRESS } from '../egress';
import type { DifyRuntime, RunningService } from '../runtime/runtime';
import type { Storage } from '../storage';
import { DIFY_SERVICES, type DifyServiceName, wire } from './catalog';
import type { SecretName, Wiring } from './environment';
import { DifyImages, type DifyVersions } from './images';
import type { SecurityGroupFlows } from './security-group-flows';

export interface DifyServicesProps {
  /**
   * The platform, or how to make it under this construct (the first instance of an app makes it,
   * and the instances after it share it).
   */
  readonly runtime: DifyRuntime | ((scope: Construct) => DifyRuntime);
  /** The catalogue rows this instance renders, in order. */
  readonly services: readonly DifyServiceName[];
  /** The security-group flows of the whole app; this instance adds its services as ends. */
  readonly flows: SecurityGroupFlows;
  readonly database: Database;
  readonly cache: Cache;
  readonly storage: Storage;
  readonly secrets: AppSecrets;
  /** The front door; needed by an instance that renders a routed service. */
  readonly edge?: Edge;
  /**
   * Dify's public base URL; needed by an instance that renders a service that reads it.
   * @default - none
   */
  readonly publicUrl?: string;
  readonly sizing: ServicesSizing;
  readonly versions: DifyVersions;
  readonly vpcCidr: string;
  readonly uploadFileSizeLimitMb: number;
  /** @default - none: plugin and sandbox installs reach PyPI through the SSRF proxy */
  readonly pipMirrorUrl?: string;
  /** Bedrock model ids the plugin daemon may invoke. Empty: no Bedrock permission at all. */
  readonly bedrockModels: readonly string[];
  /**
   * Where the SSRF proxy may connect, and whether Dify may try the internet at all.
   * @default - egress=nat: public addresses through the NAT gateways, no private mirror
   */
  readonly egress?: Egress;
  /**
   * Amazon SES for Dify's mail: its SMTP settings and credentials go to the api and the worker.
   * @default - no e-mail
   */
  readonly email?: Email;
  /** Services rendered by an earlier instance that this one's rows depend on (the migration waits for the proxy). */
  readonly rendered?: Partial<Record<DifyServiceName, RunningService>>;
}

/** Stands in for a public URL this instance was not given; no environment may carry it. */
const NO_PUBLIC_URL = 'public-url-not-given.invalid';

/**
 * Renders rows of the Dify service catalogue on a runtime: each service's image, environment,
 * secrets and sizing, its flows, its grants, its routes through the front door, and the migration
 * that runs before the api image's services roll. Platform-neutral: the runtime decides how.
 */
export class DifyServices extends Construct {
  public readonly runtime: DifyRuntime;
  /** The services this instance rendered, by catalogue name. */
  public readonly services: Partial<Record<DifyServiceName, RunningService>> = {};
  /** Completes when the migration succeeded (when this instance renders it). */
  public readonly migration?: IDependable;

  constructor(scope: Construct, id: string, props: DifyServicesProps) {
    super(scope, id);
    this.runtime = typeof props.runtime === 'function' ? props.runtime(this) : props.runtime;
    const { database, cache, sizing } = props;
    const images = new DifyImages(this, 'Images', props.versions);
    const secretOf: Partial<Record<SecretName, secretsmanager.ISecret>> = {
      secretKey: props.secrets.secretKey,
      sandboxApiKey: props.secrets.sandboxApiKey,
      pluginDaemonKey: props.secrets.pluginDaemonKey,
      pluginInnerApiKey: props.secrets.pluginInnerApiKey,
      initPassword: props.secrets.initPassword,
      cacheDify: cache.users.dify.secret,
      cachePluginDaemon: cache.users.pluginDaemon.secret,
      appDatabase: database.appSecret,
      pluginDatabase: database.pluginSecret,
      smtp: props.email?.secret,
    };
    const runtime = this.runtime;
    const wiring: Wiring = wire(
      {
        publicUrl: props.publicUrl ?? NO_PUBLIC_URL,
        region: Stack.of(this).region,
        serviceDomain: runtime.serviceDomain,
        credentialsAddress: runtime.credentialsAddress,
        databaseHost: database.cluster.clusterEndpoint.hostname,
        databasePort: DATABASE_PORT,
        appDatabase: Database.APP_DATABASE,
        pluginDatabase: Database.PLUGIN_DATABASE,
        cacheHost: cache.host,
        cachePort: CACHE_PORT,
        bucketName: props.storage.bucket.bucketName,
        pluginBucketName: props.storage.pluginBucket.bucketName,
        uploadFileSizeLimitMb: props.uploadFileSizeLimitMb,
        pipMirrorUrl: props.pipMirrorUrl,
        email: props.email?.smtp,
        internet: (props.egress ?? NAT_EGRESS).internet,
        bedrockRuntime: props.bedrockModels.length > 0,
      },
      (row) => runtime.hostOf(row),
    );

    for (const name of props.services) {
      const row = DIFY_SERVICES[name];
      const { environment, secrets } = row.environment(wiring);
      if (Object.values(environment).some((value) => value.includes(NO_PUBLIC_URL))) {
        throw new Error(`${name} reads Dify's public URL; render it where the edge is known (props.publicUrl)`);
      }
      const service = this.runtime.run(this, row, {
        image: images.image(row.image),
        start: row.start?.({ vpcCidr: props.vpcCidr, egress: props.egress }) ?? {},
        environment,
        secrets: Object.fromEntries(
          Object.entries(secrets).map(([variable, ref]) => [
            variable,
            { secret: secretOf[ref.secret] ?? missingSecret(name, variable, ref.secret), field: ref.field },
          ]),
        ),
        sizing: sizing[row.sizing],
        interruptible: sizing.spotWorker,
      });
      this.services[name] = service;
      props.flows.add(name, service);
    }
    this.grantAccess(props);
    // In the order of the rows' ranks, which fixes the listener rules' priorities.
    const routed = Object.values(this.services)
      .filter((service) => service.row.edge !== undefined)
      .sort((a, b) => a.row.edge!.rank - b.row.edge!.rank);
    for (const service of routed) {
      if (props.edge === undefined)
        throw new Error(`${service.row.service} is routed by the front door; pass the edge`);
      this.runtime.route(props.edge, service, sizing[service.row.sizing]);
    }

    const migrationTask = this.services.migration;
    if (migrationTask !== undefined) {
      const proxy = this.services.ssrf_proxy ?? props.rendered?.ssrf_proxy;
      if (proxy === undefined) throw new Error('the migration fetches through the SSRF proxy; render it first');
      // The migration connects as the `dify` role to the `dify` database, which the bootstrap creates,
      // and fetches the RDS CA through the proxy; the api image's services roll only after it exits 0.
      this.migration = this.runtime.runAtDeploy(this, 'Migration', migrationTask, [database, cache, proxy]);
      for (const migrated of [this.services.api, this.services.worker, this.services.worker_beat]) {
        if (migrated !== undefined) this.runtime.startAfter(migrated, this.migration);
      }
    }
    if (this.services.plugin_daemon !== undefined) this.runtime.startAfter(this.services.plugin_daemon, database);
    this.runtime.seal(this);
  }

  private grantAccess(props: DifyServicesProps): void {
    const { api, worker, plugin_daemon: pluginDaemon } = this.services;
    // Only the services that read and write files: the api (uploads), the worker (indexing). The
    // plugin daemon, which runs third-party plugin code, gets its own bucket and never Dify's files
    // (the tenants' private keys live there). Beat, web, the sandbox and the proxy get nothing.
    for (const user of [api, worker]) if (user !== undefined) props.storage.grantReadWrite(user);
    if (pluginDaemon === undefined) return;
    props.storage.grantPluginStorage(pluginDaemon);
    if (props.bedrockModels.length > 0) {
      // Model plugins run inside the plugin daemon, so only its role may invoke, and only these models.
      const principal = pluginDaemon.grantPrincipal as iam.Role;
      principal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'InvokeListedBedrockModelsOnly',
          actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
          resources: props.bedrockModels.flatMap((model) => bedrockArns(Stack.of(this), model)),
        }),
      );
      const crossRegion = props.bedrockModels
        .flatMap((model) => bedrockArns(Stack.of(this), model))
        .filter((arn) => arn.includes(':bedrock:*::'));
      const policy = principal.node.findChild('DefaultPolicy').node.defaultChild!;
      for (const arn of crossRegion) {
        acknowledge(policy, {
          id: `AwsSolutions-IAM5[Resource::${arn}]`,
          reason:
            'A cross-region inference profile listed in bedrockModels routes each call to one of its regions, so the model is granted in every region but only through the named profile, itself limited to this account and region.',
        });
      }
    }
  }
}

function missingSecret(service: string, variable: string, secret: SecretName): never {
  throw new Error(`${service} reads ${variable} from the ${secret} secret, which this deployment does not have`);
}

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
