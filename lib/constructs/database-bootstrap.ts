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
import { FunctionRole } from './function-role';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';

export interface DatabaseBootstrapProps {
  readonly cluster: rds.DatabaseCluster;
  readonly masterSecret: secretsmanager.ISecret;
  /** One login role per purpose, each owning its own database. */
  readonly roles: ReadonlyArray<{ readonly secret: secretsmanager.ISecret; readonly database: string }>;
  readonly extensions: ReadonlyArray<{ readonly database: string; readonly name: string }>;
  readonly network: Network;
  readonly logs: LogSettings;
}

/**
 * Runs `lambda/db-bootstrap` once per deploy through CloudFormation: it creates Dify's databases, its
 * login roles and the `vector` extension as the master user over the RDS Data API.
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
      description: 'Database bootstrap: HTTPS to the RDS Data API and Secrets Manager only',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'AWS APIs (RDS Data API, Secrets Manager, Lambda)',
    );
    network.allowAppAccess(securityGroup, 'Database bootstrap');

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
      description: 'Dify: creates databases, login roles and extensions (Data API, idempotent)',
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
        // The Node 24 runtime ships the AWS SDK v3.
        externalModules: ['@aws-sdk/*'],
      },
    });
    props.cluster.grantDataApiAccess(this.function);
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
    // The Data API needs the writer instance, not just the cluster, to be up. Only the resource
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
