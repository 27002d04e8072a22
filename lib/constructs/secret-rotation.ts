import { ArnFormat, Aws, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { WORKLOADS } from '../../contracts/kubernetes';
import type { RotationConfig } from '../../contracts/rotation';
import { scheduled, type SecretId } from '../../contracts/secrets';
import { OUTPUTS, type ServiceId } from '../../contracts/stack-outputs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { BundledFunction } from './lambda-code';
import { FunctionRole } from './function-role';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';
import { output } from './outputs';

/** When the deployment's secrets rotate (configuration keys rotationSchedule and rotationWindowHours). */
export interface RotationSchedule {
  /** A Secrets Manager schedule expression: rate(N days) or cron(...), in UTC. */
  readonly expression: string;
  /** How long each window lasts from the scheduled time, in hours. */
  readonly windowHours: number;
}

export interface SecretRotationProps {
  readonly network: Network;
  readonly logs: LogSettings;
  readonly schedule: RotationSchedule;
  /** Every rotatable secret of the catalogue, by id. */
  readonly secrets: Readonly<Partial<Record<SecretId, secretsmanager.ISecret>>>;
  /** The ECS cluster and its services by id (Dify's on ECS, and the LLM gateway on either platform). */
  readonly ecs: { readonly cluster: ecs.ICluster; readonly services: ReadonlyMap<string, ecs.FargateService> };
  /** On EKS: the cluster responder, which restarts Deployments. */
  readonly responder?: lambda.IFunction;
  /** The cache: its endpoint, the security group to reach it, and each user secret's ElastiCache user id. */
  readonly cache: {
    readonly host: string;
    readonly port: number;
    readonly connectable: ec2.IConnectable;
    readonly userIds: Readonly<Partial<Record<SecretId, string>>>;
  };
  /** The database bootstrap function, which alone holds the master secret and reaches the database. */
  readonly database: { readonly bootstrap: lambda.IFunction; readonly masterSecret: secretsmanager.ISecret };
  /** The gateway's client records and rehashes: the pepper's rotation reads them, and refuses a lockout. */
  readonly gateway: { readonly clients: secretsmanager.ISecret; readonly rehash: secretsmanager.ISecret };
}

/**
 * Scheduled rotation of every secret the catalogue marks `by: 'schedule'` (contracts/secrets.ts): one
 * function in the private subnets (lambda/secret-rotation) runs the four steps for each, and a
 * rotation schedule per secret starts it in the deployment's window. What each kind does to running
 * services is in the function's description and the README's "Rotating secrets".
 *
 * Its network reaches the Secrets Manager, Lambda, ECS and ElastiCache endpoints and Valkey (to test
 * a new password), nothing outside the VPC. Its role may rotate
 * exactly these secrets, restart exactly their consumers, change exactly these cache users and
 * invoke the bootstrap (and, on EKS, the cluster responder).
 */
export class SecretRotation extends Construct {
  public readonly function: lambda.Function;
  public readonly schedules: Readonly<Partial<Record<SecretId, secretsmanager.CfnRotationSchedule>>>;

  constructor(scope: Construct, id: string, props: SecretRotationProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.network.vpc,
      description: 'Secret rotation: the Secrets Manager, Lambda, ECS and ElastiCache endpoints, and Valkey',
      allowAllOutbound: false,
    });
    props.network.allowEndpoints(securityGroup, 'Secret rotation', ['SecretsManager', 'Lambda', 'Ecs', 'ElastiCache']);
    securityGroup.connections.allowTo(
      props.cache.connectable,
      ec2.Port.tcp(props.cache.port),
      'Secret rotation to Valkey (testing a new password)',
    );

    const logGroup = encryptedLogGroup(this, 'LogGroup', props.logs, { suffix: 'secret-rotation' });
    const role = new FunctionRole(this, 'Role', { logGroup, inVpc: true }).role;

    // The function's configuration: names only; what each secret is and who reads it, the function
    // takes from the same catalogue (contracts/rotation.ts targetsOf).
    const rotated: Array<{ id: SecretId; secret: secretsmanager.ISecret }> = [];
    const secretsConfig: Record<string, [string, string?]> = {};
    const consumerIds = new Set<ServiceId>();
    for (const { id: secretId, entry, kind } of scheduled()) {
      const secret = props.secrets[secretId];
      if (secret === undefined) throw new Error(`SecretRotation: no secret given for ${secretId}`);
      for (const consumer of entry.consumers) consumerIds.add(consumer);
      if (kind === 'cache-user') {
        const userId = props.cache.userIds[secretId];
        if (userId === undefined) throw new Error(`SecretRotation: no cache user id for ${secretId}`);
        secretsConfig[secret.secretArn] = [secretId, userId];
      } else {
        secretsConfig[secret.secretArn] = [secretId];
      }
      rotated.push({ id: secretId, secret });
    }
    const services: Record<string, string> = {};
    const restartable: string[] = [];
    for (const id of consumerIds) {
      const service = props.ecs.services.get(id);
      if (service !== undefined) {
        services[id] = service.serviceName;
        restartable.push(service.serviceArn);
      } else if (props.responder === undefined || !(id in WORKLOADS)) {
        throw new Error(`SecretRotation: consumer ${id} runs neither as an ECS service nor as an EKS Deployment`);
      }
    }
    const config: RotationConfig = {
      cluster: props.ecs.cluster.clusterName,
      services,
      ...(props.responder !== undefined ? { responder: props.responder.functionName } : {}),
      bootstrapFunction: props.database.bootstrap.functionName,
      masterSecretArn: props.database.masterSecret.secretArn,
      cache: { host: props.cache.host, port: props.cache.port },
      gateway: { clients: props.gateway.clients.secretArn, rehash: props.gateway.rehash.secretArn },
      secrets: secretsConfig,
    };
    const userIds = Object.values(secretsConfig).flatMap(([, userId]) => (userId === undefined ? [] : [userId]));

    this.grant(role, props, rotated, userIds, restartable);

    this.function = new BundledFunction(this, 'Function', {
      bundle: 'secret-rotation',
      role,
      // The finish step waits up to 12 minutes for restarted consumers before it removes an old
      // cache password.
      timeout: Duration.minutes(15),
      // One rotation per secret at a time is all Secrets Manager starts; a bound on a stolen invoke right.
      reservedConcurrentExecutions: 4,
      description:
        'Rotates the deployment’s secrets in four steps: shared keys (both sides restart together), Valkey users (two passwords during the switch), database roles (alternating logins), the gateway pepper (two versions held)',
      vpc: props.network.vpc,
      vpcSubnets: props.network.privateSubnets,
      securityGroups: [securityGroup],
      logGroup,
      environment: { ROTATION: stack.toJsonString(config) },
    });
    acknowledge(
      this.function.node.defaultChild!,
      ...nistAndHipaa(
        'LambdaDLQ',
        'Secrets Manager invokes it synchronously for each rotation step and records a failed step as a failed rotation (doctor reports it); there is no asynchronous event to keep.',
      ),
    );

    const schedules: Partial<Record<SecretId, secretsmanager.CfnRotationSchedule>> = {};
    for (const { id: secretId, secret } of rotated) {
      const permission = new lambda.CfnPermission(this, `${pascal(secretId)}Invoke`, {
        action: 'lambda:InvokeFunction',
        functionName: this.function.functionArn,
        principal: 'secretsmanager.amazonaws.com',
        sourceAccount: Aws.ACCOUNT_ID,
        sourceArn: secret.secretArn,
      });
      const schedule = new secretsmanager.CfnRotationSchedule(this, `${pascal(secretId)}Schedule`, {
        secretId: secret.secretArn,
        rotationLambdaArn: this.function.functionArn,
        rotationRules: {
          scheduleExpression: props.schedule.expression,
          duration: `${props.schedule.windowHours}h`,
        },
        // The first rotation comes in the first window, never in the middle of a deploy.
        rotateImmediatelyOnUpdate: false,
      });
      // Secrets Manager checks that it may invoke the function when the schedule is created.
      schedule.node.addDependency(permission, this.function);
      schedules[secretId] = schedule;
    }
    this.schedules = schedules;
    output(this, OUTPUTS.secretRotationFunctionName, this.function.functionName);
  }

  private grant(
    role: iam.Role,
    props: SecretRotationProps,
    rotated: ReadonlyArray<{ secret: secretsmanager.ISecret }>,
    userIds: readonly string[],
    restartable: readonly string[],
  ): void {
    const stack = Stack.of(this);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RotateTheseSecrets',
        actions: [
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetSecretValue',
          'secretsmanager:PutSecretValue',
          'secretsmanager:UpdateSecretVersionStage',
        ],
        resources: rotated.map(({ secret }) => secret.secretArn),
      }),
    );
    const gatewayDocuments = [props.gateway.clients, props.gateway.rehash];
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadGatewayClientsBeforeAPepperRotation',
        actions: ['secretsmanager:GetSecretValue'],
        resources: gatewayDocuments.map((secret) => secret.secretArn),
      }),
    );
    const keys = [
      ...new Set(
        [...rotated.map(({ secret }) => secret), ...gatewayDocuments].flatMap((secret) =>
          secret.encryptionKey ? [secret.encryptionKey.keyArn] : [],
        ),
      ),
    ];
    if (keys.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'TheirKeysThroughSecretsManager',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: keys,
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }
    if (restartable.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'RestartTheirConsumers',
          actions: ['ecs:UpdateService', 'ecs:DescribeServices'],
          resources: [...restartable],
        }),
      );
    }
    if (userIds.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ChangeTheseCacheUsers',
          actions: ['elasticache:ModifyUser', 'elasticache:DescribeUsers'],
          resources: userIds.map((userId) =>
            stack.formatArn({
              service: 'elasticache',
              resource: 'user',
              resourceName: userId,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ),
        }),
      );
    }
    const functions = [
      props.database.bootstrap.functionArn,
      ...(props.responder !== undefined ? [props.responder.functionArn] : []),
    ];
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SetAndTestRolePasswordsAndRestartDeployments',
        actions: ['lambda:InvokeFunction'],
        resources: functions,
      }),
    );
  }
}

function pascal(id: string): string {
  return id.charAt(0).toUpperCase() + id.slice(1);
}
