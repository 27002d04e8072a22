import { CustomResource, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge, nagResource } from '../../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../../nag/deploy-time-function';
import { repoPath } from '../../paths';
import { FunctionRole } from '../function-role';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import type { Network } from '../network';
import type { EcsRuntime } from '../runtime/ecs-runtime';
import type { DifyTask } from '../runtime/fargate-service';

export interface MigrationProps {
  readonly runtime: EcsRuntime;
  readonly network: Network;
  readonly logs: LogSettings;
  /** The `MODE=migration` task. */
  readonly task: DifyTask;
}

/**
 * Runs Dify's database migration as a one-off Fargate task inside the deploy, through a custom
 * resource (lambda/run-task) that succeeds only when the container exits 0.
 *
 * Its properties carry the task definition's ARN, which changes with every new revision (a new Dify
 * image or a changed environment), so CloudFormation runs the migration again exactly when the api,
 * worker and beat are about to roll onto new revisions; they depend on this resource, so they roll
 * only after it succeeded. A failed migration fails the deploy and nothing rolls.
 */
export class Migration extends Construct {
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: MigrationProps) {
    super(scope, id);
    const { network, task, runtime } = props;
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: 'Migration runner: HTTPS to the VPC endpoints (ECS, Lambda) and S3 only',
      allowAllOutbound: false,
    });
    // The ECS API (RunTask, DescribeTasks, StopTask) and Lambda through their interface endpoints,
    // and S3's gateway endpoint for the provider's response to CloudFormation: no internet route.
    network.allowAwsServices(securityGroup, 'Migration runner', ['Ecs', 'Lambda']);

    const functionLogGroup = encryptedLogGroup(this, 'FunctionLogGroup', props.logs, { suffix: 'migration-runner' });
    const providerLogGroup = encryptedLogGroup(this, 'ProviderLogGroup', props.logs, {
      suffix: 'migration-runner-provider',
    });
    const functionRole = new FunctionRole(this, 'FunctionRole', { logGroup: functionLogGroup, inVpc: true });
    const fn = new nodejs.NodejsFunction(this, 'Function', {
      entry: repoPath('lambda/run-task/src/index.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      role: functionRole.role,
      architecture: lambda.Architecture.ARM_64,
      // The handler waits up to 13 minutes for the task and stops it after that.
      timeout: Duration.minutes(14),
      memorySize: 256,
      description: 'Dify: runs the database migration task and waits for exit code 0',
      vpc: network.vpc,
      vpcSubnets: network.privateSubnets,
      securityGroups: [securityGroup],
      logGroup: functionLogGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      depsLockFilePath: repoPath('package-lock.json'),
      projectRoot: repoPath('.'),
      bundling: { minify: true, target: 'node24', externalModules: ['@aws-sdk/*'] },
    });
    const stack = Stack.of(this);
    const family = stack.formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${task.taskDefinition.family}:*`,
    });
    const tasks = stack.formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${runtime.cluster.clusterName}/*`,
    });
    functionRole.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RunTheMigrationTaskOnly',
        actions: ['ecs:RunTask'],
        resources: [family],
        conditions: { ArnEquals: { 'ecs:cluster': runtime.cluster.clusterArn } },
      }),
    );
    functionRole.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WatchAndStopTasksOfTheCluster',
        actions: ['ecs:DescribeTasks', 'ecs:StopTask'],
        resources: [tasks],
      }),
    );
    functionRole.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PassTheMigrationRolesOnly',
        actions: ['iam:PassRole'],
        resources: [task.taskRole.roleArn, task.taskDefinition.obtainExecutionRole().roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );

    const providerRole = new FunctionRole(this, 'ProviderRole', { logGroup: providerLogGroup, inVpc: true });
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: fn,
      logGroup: providerLogGroup,
      frameworkOnEventRole: providerRole.role,
      vpc: network.vpc,
      vpcSubnets: network.privateSubnets,
      securityGroups: [securityGroup],
    });
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::DifyMigration',
      properties: {
        Cluster: runtime.cluster.clusterArn,
        TaskDefinition: task.taskDefinition.taskDefinitionArn,
        Container: task.container.containerName,
        Subnets: network.vpc.selectSubnets(network.privateSubnets).subnetIds,
        SecurityGroups: [task.securityGroup.securityGroupId],
      },
    });

    for (const f of [
      fn,
      ...provider.node.findAll().filter((c): c is lambda.Function => c instanceof lambda.Function),
    ]) {
      acknowledgeDeployTimeFunction(f.node.defaultChild!);
    }
    const functionPolicy = functionRole.role.node.findChild('DefaultPolicy').node.defaultChild!;
    acknowledge(
      functionPolicy,
      {
        id: `AwsSolutions-IAM5[Resource::${nagResource(this, family)}]`,
        reason:
          'Every revision of the one migration task family (a deploy passes the newest); RunTask is further limited to this cluster by the ecs:cluster condition.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${nagResource(this, tasks)}]`,
        reason:
          'Task ids are assigned by ECS at run time, so DescribeTasks and StopTask name the tasks of this one cluster; nothing outside it can be read or stopped.',
      },
    );
    acknowledge(providerRole.role.node.findChild('DefaultPolicy').node.defaultChild!, {
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'lambda:InvokeFunction on the versions and aliases of the one migration runner (the `:*` suffix), granted by the provider framework; no other function can be invoked.',
    });
  }
}
