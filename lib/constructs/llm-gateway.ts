import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { IgnoreMode } from 'aws-cdk-lib';
import { UNINITIALIZED_TEMPLATE } from '../../contracts/gateway-documents';
import type { TaskSizing } from '../config/sizing';
import { acknowledge } from '../nag/acknowledge';
import { repoPath } from '../paths';
import { noAutomaticRotation, rotatedOnSchedule } from './app-secrets';
import { type Cache, CACHE_PORT } from './cache';
import type { LogSettings } from './log-group';
import type { Network } from './network';
import { SERVICE_NAMESPACE } from './runtime/ecs-runtime';
import { DifyService, type TaskPlatform } from './runtime/ecs-task';
import { OUTPUTS } from '../../contracts/stack-outputs';
import {
  GATEWAY_NAMESPACE,
  GATEWAY_SIGNALS,
  type GatewaySignal,
  refusedKeysBySourceRule,
} from '../../contracts/gateway-signals';
import type { Observability } from './observability';
import { deploymentName } from './deployment-name';
import { output } from './outputs';
import { grantSecretRead, grantSecretWrite } from './secret-access';

/** The gateway's name in `dify.internal` and its port. */
export const GATEWAY_ENDPOINT = { name: 'llm-gateway', port: 8080 } as const;

/** The empty documents the gateway starts from; the operator CLI adds keys and clients (contracts/gateway-documents.ts). */

export interface LlmGatewayProps {
  readonly runtime: TaskPlatform;
  readonly network: Network;
  readonly logs: LogSettings;
  readonly cache: Cache;
  readonly secretsKey: kms.IKey;
  readonly sizing: TaskSizing;
  readonly removalPolicy: RemovalPolicy;
  /** Where its alarms go: the gateway's own signals (contracts/gateway-signals.ts). */
  readonly alarms: Observability;
  /**
   * Private IPv4 networks a provider base URL may resolve to (an in-VPC model server).
   * @default none: the gateway sends provider keys to public addresses only
   */
  readonly providerPrivateCidrs?: readonly string[];
  /**
   * Public provider addresses are reachable (egress=nat). False with egress=none: the gateway may
   * open connections to `providerPrivateCidrs` on 443 and nowhere else, over the route the operator
   * adds to the private subnets.
   * @default true
   */
  readonly internet?: boolean;
}

/**
 * The zero-trust LLM gateway (gateway/) on ECS: private subnets only, reachable on 8080 from Dify's
 * api, worker and plugin daemon and from nothing else, with its own task role that can read only its
 * own documents and pepper. Provider keys live in one secret and reach the gateway's memory only; clients
 * authenticate with keys of their own, of which only a keyed hash (under the pepper secret) is stored.
 */
export class LlmGateway extends Construct {
  public readonly service: DifyService;
  /** Provider key pool: `{version, providers: {openai: {baseUrl, models, keys: [...]}}}`. */
  public readonly providerKeys: secretsmanager.Secret;
  /** Client records: ids, keyed hashes, allowed networks and models, limits, guardrail policies. */
  public readonly clients: secretsmanager.Secret;
  /** The HMAC key under which client keys are hashed; rotated on the deployment's schedule. */
  public readonly pepper: secretsmanager.Secret;
  /** Client key hashes made again under a newer pepper, written by the gateway itself (gateway/src/rehash.ts). */
  public readonly rehash: secretsmanager.Secret;
  /** `http://llm-gateway.dify.internal:8080/v1`: what Dify's OpenAI-compatible provider points at. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: LlmGatewayProps) {
    super(scope, id);
    const document = (name: string, description: string) =>
      new secretsmanager.Secret(this, name, {
        description,
        encryptionKey: props.secretsKey,
        // Created once with a generated placeholder, which the gateway and the CLI read as the empty
        // document (contracts/gateway-documents.ts storedDocument); the CLI writes the real one. The template
        // holds no document, so no template change can overwrite a live key pool or client records.
        generateSecretString: {
          secretStringTemplate: UNINITIALIZED_TEMPLATE,
          generateStringKey: 'placeholder',
          passwordLength: 16,
          excludePunctuation: true,
          includeSpace: false,
        },
        removalPolicy: props.removalPolicy,
      });
    this.providerKeys = document(
      'ProviderKeys',
      'LLM gateway provider key pool (written by dify-aws keys; read by the gateway only)',
    );
    this.clients = document(
      'Clients',
      'LLM gateway client records: keyed hashes, never keys (written by dify-aws clients)',
    );
    this.rehash = document(
      'Rehash',
      'LLM gateway client key rehashes: keyed hashes under the newest pepper, never keys (written by the gateway)',
    );
    this.pepper = new secretsmanager.Secret(this, 'Pepper', {
      description: 'LLM gateway client key hashing key (HMAC-SHA256)',
      encryptionKey: props.secretsKey,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: props.removalPolicy,
    });
    acknowledge(
      this.pepper.node.defaultChild!,
      ...rotatedOnSchedule(
        'The gateway checks a client key under the current and the previous pepper and stores its hash under the current one at its first use after a rotation, so no client key is re-issued; the rotation refuses while an enabled client has not signed in since the last one (dify-aws doctor names them).',
      ),
    );
    for (const secret of [this.providerKeys, this.clients, this.rehash]) {
      acknowledge(
        secret.node.defaultChild!,
        ...noAutomaticRotation(
          secret === this.rehash
            ? 'This document holds keyed hashes of client keys, which the gateway writes as keys are first used after a pepper rotation; it holds no credential of its own to rotate, and a hash in it is only accepted while it matches a record of the client records secret.'
            : 'This document holds the provider keys or client records, which change when an operator adds, replaces or removes an entry (dify-aws keys / clients); the gateway re-reads each new version without a restart, so rotation is that operator step, not a schedule.',
        ),
      );
    }

    this.service = new DifyService(this, 'Service', {
      runtime: props.runtime,
      network: props.network,
      logs: props.logs,
      name: GATEWAY_ENDPOINT.name,
      description: 'LLM gateway: from Dify api, worker and plugin daemon only',
      sizing: props.sizing,
      discoverable: true,
      deployment: 'rolling',
      container: {
        image: ecs.ContainerImage.fromAsset(repoPath('.'), {
          file: 'gateway/Dockerfile',
          platform: Platform.LINUX_ARM64,
          ignoreMode: IgnoreMode.DOCKER,
          displayName: 'llm-gateway',
        }),
        port: GATEWAY_ENDPOINT.port,
        environment: {
          PORT: String(GATEWAY_ENDPOINT.port),
          PROVIDER_KEYS_SECRET_ID: this.providerKeys.secretArn,
          CLIENTS_SECRET_ID: this.clients.secretArn,
          PEPPER_SECRET_ID: this.pepper.secretArn,
          REHASH_SECRET_ID: this.rehash.secretArn,
          SECRETS_POLL_INTERVAL_SECONDS: '30',
          REDIS_HOST: props.cache.host,
          REDIS_PORT: String(CACHE_PORT),
          REDIS_TLS: 'true',
          SHUTDOWN_DRAIN_SECONDS: '25',
          // Loopback, link-local (the metadata endpoints) and other private addresses are refused
          // unless a network is named here (gateway/src/provider-address.ts).
          ...(props.providerPrivateCidrs?.length
            ? { PROVIDER_ALLOWED_PRIVATE_CIDRS: props.providerPrivateCidrs.join(',') }
            : {}),
          // With no internet (egress=none) a public provider is refused at once, naming its host,
          // instead of each attempt waiting for a connection that can never open.
          ...(props.internet === false ? { PROVIDER_PUBLIC_ADDRESSES: 'refuse' } : {}),
        },
        secrets: {
          // Its own ElastiCache user, which sees only the gateway's rate-limit keys (gw:rl:*).
          REDIS_USERNAME: { secret: props.cache.users.gateway.secret, field: 'username' },
          REDIS_PASSWORD: { secret: props.cache.users.gateway.secret, field: 'password' },
        },
        healthCheck: {
          command: [
            'CMD',
            'node',
            '-e',
            `fetch('http://127.0.0.1:${GATEWAY_ENDPOINT.port}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
          ],
          startPeriod: Duration.seconds(20),
        },
        hardening: {
          user: '1000',
          readonlyRootFilesystem: true,
          writablePaths: [],
          keepCapabilities: [],
        },
      },
    });
    // It reads its documents and the pepper's current and previous versions itself (and again on
    // every new version), and writes its rehashes; the Valkey token is injected by ECS at start,
    // through the execution role.
    grantSecretRead(this.providerKeys, this.service.taskRole);
    grantSecretRead(this.clients, this.service.taskRole);
    grantSecretRead(this.pepper, this.service.taskRole);
    grantSecretRead(this.rehash, this.service.taskRole);
    grantSecretWrite(this.rehash, this.service.taskRole);

    // Its callers (Dify's api, worker and plugin daemon, never the load balancer) are flows of the
    // service catalogue (dify/catalog.ts), rendered with theirs.
    this.service.connections.allowToDefaultPort(props.cache, 'LLM gateway to Valkey (shared rate limits)');
    if (props.internet === false) {
      for (const network of props.providerPrivateCidrs ?? []) {
        this.service.connections.allowTo(
          ec2.Peer.ipv4(network),
          ec2.Port.tcp(443),
          'LLM gateway to the LLM providers on a private network',
        );
      }
    } else {
      this.service.connections.allowTo(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'LLM gateway to the LLM providers');
    }

    const scaling = this.service.service.autoScaleTaskCount({
      minCapacity: props.sizing.minTasks,
      maxCapacity: props.sizing.maxTasks,
    });
    scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
    this.service.acknowledgeRolePolicies();
    this.url = `http://${GATEWAY_ENDPOINT.name}.${SERVICE_NAMESPACE}:${GATEWAY_ENDPOINT.port}/v1`;
    this.watchSignals(props.alarms);
    output(this, OUTPUTS.gatewayUrl, this.url);
    output(this, OUTPUTS.gatewayServiceName, this.service.service.serviceName);
    output(this, OUTPUTS.gatewayLogGroupName, this.service.logGroup.logGroupName);
    output(this, OUTPUTS.gatewayProviderKeysSecretArn, this.providerKeys.secretArn);
    output(this, OUTPUTS.gatewayClientsSecretArn, this.clients.secretArn);
    output(this, OUTPUTS.gatewayPepperSecretArn, this.pepper.secretArn);
    output(this, OUTPUTS.gatewayRehashSecretArn, this.rehash.secretArn);
  }

  /**
   * An alarm per signal of contracts/gateway-signals.ts, on the metrics the gateway writes (the
   * gateway's tests check it writes each one), and refused client keys per source address, from the
   * audit lines (a Contributor Insights rule: the metrics carry no address).
   */
  private watchSignals(alarms: Observability): void {
    const period = Duration.minutes(5);
    for (const [id, signal] of Object.entries(GATEWAY_SIGNALS) as Array<[string, GatewaySignal]>) {
      const metrics = signal.metrics.map(
        (m) =>
          new cloudwatch.Metric({
            namespace: GATEWAY_NAMESPACE,
            metricName: m.metricName,
            dimensionsMap: { ...m.dimensions },
            statistic: signal.statistic,
            period,
          }),
      );
      const metric =
        metrics.length === 1
          ? metrics[0]
          : new cloudwatch.MathExpression({
              expression: `SUM([${metrics.map((_, i) => `m${i}`).join(',')}])`,
              usingMetrics: Object.fromEntries(metrics.map((m, i) => [`m${i}`, m])),
              label: signal.title,
              period,
            });
      alarms.watch(this, `${id.charAt(0).toUpperCase()}${id.slice(1)}Alarm`, {
        signal: signal.signal,
        title: signal.title,
        metric,
        threshold: signal.threshold,
        periods: 1,
        description: signal.description,
      });
    }
    const rule = new cloudwatch.CfnInsightRule(this, 'RefusedKeysBySource', {
      ruleName: `${deploymentName(this)}-gateway-refused-keys-by-source`,
      ruleState: 'ENABLED',
      ruleBody: Stack.of(this).toJsonString(refusedKeysBySourceRule(this.service.logGroup.logGroupName)),
    });
    const bySource = alarms.watch(this, 'RefusedKeysBySourceAlarm', {
      signal: 'gateway.client-key-failures-by-source',
      title: 'Gateway: refused client keys, top source address',
      metric: new cloudwatch.MathExpression({
        expression: `INSIGHT_RULE_METRIC('${rule.ruleName}', 'MaxContributorValue')`,
        usingMetrics: {},
        label: 'refused keys from the busiest source address',
        period,
      }),
      threshold: 10,
      periods: 1,
      description:
        'Ten or more requests with a wrong, revoked or missing client key from one source address in five minutes: a scan or credential stuffing from inside the VPC. Check first: the rule RefusedKeysBySource in Contributor Insights (which address), then what runs there.',
    });
    // The alarm names the rule in its expression only: create the rule first.
    bySource.node.addDependency(rule);
  }
}
