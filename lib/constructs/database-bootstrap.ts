import { CustomResource, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge } from '../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../nag/deploy-time-function';
import { repoPath } from '../paths';
import { rdsCaBundle } from '../rds-ca';
import { FunctionRole } from './function-role';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';

export interface DatabaseBootstrapProps {
  readonly cluster: rds.DatabaseCluster;
  /** The database's side of its security group: the bootstrap is allowed in on 5432 and nowhere else. */
  readonly database: ec2.IConnectable;
  readonly masterSecret: secretsmanager.ISecret;
  /** One login role per purpose, each owning its own database. */
  readonly roles: ReadonlyArray<{ readonly secret: secretsmanager.ISecret; readonly database: string }>;
  readonly extensions: ReadonlyArray<{ readonly database: string; readonly name: string }>;
  readonly network: Network;
  readonly logs: LogSettings;
}

/**
 * Runs `lambda/db-bootstrap` once per deploy through CloudFormation: it creates Dify's databases, its
 * login roles and the `vector` extension as the master user, over 5432 from inside the VPC with TLS
 * and the server certificate verified (the Data API is off). The operator CLI invokes the same
 * function to change a role's password (`secrets rotate app-db-password`).
 *
 * The resource's properties hold ARNs only. The function reads every password at run time, so none
 * reaches the template, the properties CloudFormation echoes in events, or a log line.
 */
export class DatabaseBootstrap extends Construct {
  public readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: DatabaseBootstrapProps) {
    super(scope, id);
    const { network } = props;
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: 'Database bootstrap: PostgreSQL to Aurora, HTTPS to the VPC endpoints and S3 only',
      allowAllOutbound: false,
    });
    props.database.connections.allowDefaultPortFrom(securityGroup, 'Database bootstrap (TLS, verify-full)');
    // Secrets Manager for the credentials, Lambda for the provider framework's invoke, and S3 (the
    // gateway endpoint) for the provider's response to CloudFormation's pre-signed URL.
    network.allowAwsServices(securityGroup, 'Database bootstrap', ['Lambda']);
    const functionLogGroup = encryptedLogGroup(this, 'FunctionLogGroup', props.logs, { suffix: 'db-bootstrap' });
    const providerLogGroup = encryptedLogGroup(this, 'ProviderLogGroup', props.logs, {
      suffix: 'db-bootstrap-provider',
    });
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: repoPath('lambda/db-bootstrap/src/index.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      role: new FunctionRole(this, 'FunctionRole', { logGroup: functionLogGroup, inVpc: true }).role,
      architecture: lambda.Architecture.ARM_64,
      timeout: Duration.minutes(5),
      memorySize: 256,
      description: 'Dify: creates databases, login roles and extensions (5432, TLS verified, idempotent)',
      vpc: network.vpc,
      vpcSubnets: network.privateSubnets,
      securityGroups: [securityGroup],
      logGroup: functionLogGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      depsLockFilePath: repoPath('package-lock.json'),
      projectRoot: repoPath('.'),
      bundling: {
        minify: true,
        target: 'node24',
        // The Node 24 runtime ships the AWS SDK v3; pg's optional native binding is never used.
        externalModules: ['@aws-sdk/*', 'pg-native'],
        // The committed RDS CA bundle is inlined as text (its SHA-256 is checked below).
        loader: { '.pem': 'text' },
      },
    });
    // Refuse to bundle a trust anchor whose SHA-256 is not the pinned one.
    rdsCaBundle();
    props.masterSecret.grantRead(this.function);
    for (const role of props.roles) role.secret.grantRead(this.function);

    const providerRole = new FunctionRole(this, 'ProviderRole', { logGroup: providerLogGroup, inVpc: true });
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: this.function,
      logGroup: providerLogGroup,
      frameworkOnEventRole: providerRole.role,
      vpc: network.vpc,
      vpcSubnets: network.privateSubnets,
      securityGroups: [securityGroup],
    });

    const resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::DifyDatabaseBootstrap',
      properties: {
        ClusterArn: props.cluster.clusterArn,
        MasterSecretArn: props.masterSecret.secretArn,
        Roles: props.roles.map((role) => ({ SecretArn: role.secret.secretArn, Database: role.database })),
        Extensions: props.extensions.map((extension) => ({ Database: extension.database, Name: extension.name })),
      },
    });
    // The connection needs the writer instance, not just the cluster, to be up. Only the resource
    // waits for it: making the function or its role wait would close a cycle through the secrets key.
    resource.node.addDependency(props.cluster);

    this.acknowledgeFindings(provider, providerRole);
  }

  private acknowledgeFindings(provider: cr.Provider, providerRole: FunctionRole): void {
    const functions = [
      this.function,
      ...provider.node.findAll().filter((c): c is lambda.Function => c instanceof lambda.Function),
    ];
    for (const fn of functions) acknowledgeDeployTimeFunction(fn.node.defaultChild!);
    acknowledge(providerRole.role.node.findChild('DefaultPolicy').node.defaultChild!, {
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'lambda:InvokeFunction on the versions and aliases of the one bootstrap function (the `:*` suffix), granted by the provider framework; no other function can be invoked.',
    });
  }
}
