import { DescribeTasksCommand, ECSClient, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { type Dependencies, parseProperties, runTask, RunTaskError } from '../src/index';

const PROPS = {
  ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
  Cluster: 'arn:aws:ecs:eu-west-1:123456789012:cluster/dify',
  TaskDefinition: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/dify-migration:7',
  Container: 'Main',
  Subnets: ['subnet-0a', 'subnet-0b'],
  SecurityGroups: ['sg-0migration'],
};
const TASK = 'arn:aws:ecs:eu-west-1:123456789012:task/dify/abc';

const event = (type: 'Create' | 'Update' | 'Delete', props: Record<string, unknown> = PROPS) =>
  ({
    RequestType: type,
    ResourceProperties: props,
    PhysicalResourceId: 'dify-run-task',
  }) as unknown as CloudFormationCustomResourceEvent;

describe('the deploy-time task runner (Dify migration)', () => {
  const ecs = mockClient(ECSClient);
  let clock: number;
  let sleeps: number[];
  let logs: string[];
  const deps = (): Dependencies => ({
    ecs: new ECSClient({ region: 'eu-west-1' }),
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    now: () => clock,
    log: (line) => logs.push(JSON.stringify(line)),
    timeoutMs: 60_000,
    pollMs: 10_000,
  });
  const stopped = (exitCode: number | undefined, reason?: string) => ({
    tasks: [
      {
        taskArn: TASK,
        lastStatus: 'STOPPED',
        stoppedReason: 'Essential container in task exited',
        containers: [{ name: 'Main', exitCode, reason }],
      },
    ],
  });

  beforeEach(() => {
    ecs.reset();
    clock = 0;
    sleeps = [];
    logs = [];
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK }], failures: [] });
  });

  it('runs the task on Fargate in the private subnets, without a public IP, and waits for exit code 0', async () => {
    ecs
      .on(DescribeTasksCommand)
      .resolvesOnce({ tasks: [{ taskArn: TASK, lastStatus: 'PROVISIONING' }] })
      .resolvesOnce({ tasks: [{ taskArn: TASK, lastStatus: 'RUNNING' }] })
      .resolves(stopped(0));
    const result = await runTask(event('Create'), deps());
    expect(result).toEqual({ PhysicalResourceId: 'dify-run-task', Data: { TaskArn: TASK, ExitCode: '0' } });
    const input = ecs.commandCalls(RunTaskCommand)[0].args[0].input;
    expect(input).toMatchObject({
      cluster: PROPS.Cluster,
      taskDefinition: PROPS.TaskDefinition,
      launchType: 'FARGATE',
      count: 1,
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: PROPS.Subnets,
          securityGroups: PROPS.SecurityGroups,
          assignPublicIp: 'DISABLED',
        },
      },
    });
    expect(sleeps).toEqual([10_000, 10_000]);
  });

  it('runs again on update, so a new release migrates before its services roll', async () => {
    ecs.on(DescribeTasksCommand).resolves(stopped(0));
    await runTask(event('Update'), deps());
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
  });

  it('fails the deploy with the exit code and reason when the migration fails', async () => {
    ecs.on(DescribeTasksCommand).resolves(stopped(1, 'Exit 1'));
    const error = (await runTask(event('Create'), deps()).catch((e: Error) => e)) as Error;
    expect(error).toBeInstanceOf(RunTaskError);
    expect(error.message).toBe(`task ${TASK} failed: container Main exited with 1 (Exit 1); see its log group`);
  });

  it('fails when the container never started (no exit code), naming ECS’s reason', async () => {
    ecs.on(DescribeTasksCommand).resolves({
      tasks: [
        {
          taskArn: TASK,
          lastStatus: 'STOPPED',
          stoppedReason: 'CannotPullContainerError: pull access denied',
          containers: [{ name: 'Main' }],
        },
      ],
    });
    await expect(runTask(event('Create'), deps())).rejects.toThrow(
      'container Main exited with no exit code (CannotPullContainerError: pull access denied)',
    );
  });

  it('fails when ECS cannot place the task', async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: 'RESOURCE:ENI', detail: 'no free addresses' }] });
    await expect(runTask(event('Create'), deps())).rejects.toThrow(
      'ECS could not start the task: RESOURCE:ENI (no free addresses)',
    );
    expect(ecs.commandCalls(DescribeTasksCommand)).toHaveLength(0);
  });

  it('stops the task and fails when it outlives the deadline, after a bounded number of polls', async () => {
    ecs.on(DescribeTasksCommand).resolves({ tasks: [{ taskArn: TASK, lastStatus: 'RUNNING' }] });
    ecs.on(StopTaskCommand).resolves({});
    await expect(runTask(event('Create'), deps())).rejects.toThrow(
      `task ${TASK} did not finish within 60 s and was stopped`,
    );
    expect(ecs.commandCalls(StopTaskCommand)[0].args[0].input).toMatchObject({ task: TASK });
    expect(sleeps).toHaveLength(6);
  });

  it('does nothing on delete', async () => {
    await expect(runTask(event('Delete'), deps())).resolves.toEqual({ PhysicalResourceId: 'dify-run-task' });
    expect(ecs.calls()).toHaveLength(0);
  });

  it.each([
    ['a cluster that is not an ECS cluster ARN', { Cluster: 'dify' }, 'property Cluster: expected an ECS cluster ARN'],
    [
      'a task definition family instead of an ARN',
      { TaskDefinition: 'dify-migration' },
      'property TaskDefinition: expected an ECS task-definition ARN',
    ],
    ['no subnets', { Subnets: [] }, 'property Subnets: expected a non-empty list of subnet-… ids'],
    [
      'a CIDR among the security groups',
      { SecurityGroups: ['10.0.0.0/16'] },
      'property SecurityGroups: expected a non-empty list of sg-… ids',
    ],
    ['no container name', { Container: '' }, 'property Container: expected the container name'],
  ])('refuses properties with %s', (_name, override, message) => {
    expect(() => parseProperties({ ...PROPS, ...override })).toThrow(message);
  });
});
