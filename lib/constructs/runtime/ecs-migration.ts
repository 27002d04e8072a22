import { type CustomResource, Duration, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledgeGrantedResource } from '../../nag/acknowledge';
import { inVpcCustomResource } from '../in-vpc-custom-resource';
import type { LogSettings } from '../log-group';
import type { Network } from '../network';
import type { DifyTask } from './ecs-task';

export interface MigrationProps {
  /** The cluster the task runs in. */
  readonly cluster: ecs.ICluster;
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
    const { network, task, cluster } = props;
    const runner = inVpcCustomResource(this, {
      network,
      logs: props.logs,
      what: 'Migration runner',
      securityGroupDescription: 'Migration runner: HTTPS to the VPC endpoints (ECS, Lambda) and S3 only',
      // The ECS API (RunTask, DescribeTasks, StopTask) and Lambda through their interface endpoints.
      endpoints: ['Ecs', 'Lambda'],
      bundle: 'run-task',
      description: 'Dify: runs the database migration task and waits for exit code 0',
      // The handler waits up to 13 minutes for the task and stops it after that.
      timeout: Duration.minutes(14),
      logGroupSuffix: 'migration-runner',
      resourceType: 'Custom::DifyMigration',
      properties: {
        Cluster: cluster.clusterArn,
        TaskDefinition: task.taskDefinition.taskDefinitionArn,
        Container: task.container.containerName,
        Subnets: network.vpc.selectSubnets(network.privateSubnets).subnetIds,
        SecurityGroups: [task.securityGroup.securityGroupId],
      },
      name: 'migration runner',
    });
    this.resource = runner.resource;
    const stack = Stack.of(this);
    const family = stack.formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${task.taskDefinition.family}:*`,
    });
    const tasks = stack.formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${cluster.clusterName}/*`,
    });
    const role = runner.functionRole.role;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RunTheMigrationTaskOnly',
        actions: ['ecs:RunTask'],
        resources: [family],
        conditions: { ArnEquals: { 'ecs:cluster': cluster.clusterArn } },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WatchAndStopTasksOfTheCluster',
        actions: ['ecs:DescribeTasks', 'ecs:StopTask'],
        resources: [tasks],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PassTheMigrationRolesOnly',
        actions: ['iam:PassRole'],
        resources: [task.taskRole.roleArn, task.taskDefinition.obtainExecutionRole().roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
    const functionPolicy = role.node.findChild('DefaultPolicy').node.defaultChild!;
    acknowledgeGrantedResource(
      functionPolicy,
      family,
      'Every revision of the one migration task family (a deploy passes the newest); RunTask is further limited to this cluster by the ecs:cluster condition.',
    );
    acknowledgeGrantedResource(
      functionPolicy,
      tasks,
      'Task ids are assigned by ECS at run time, so DescribeTasks and StopTask name the tasks of this one cluster; nothing outside it can be read or stopped.',
    );
  }
}
