import { DescribeTasksCommand, ECSClient, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

/**
 * Runs a one-off ECS Fargate task during a deploy and succeeds only if its container exits 0. Dify's
 * database migration (`MODE=migration`) runs this way before the api, worker and beat roll, so no
 * replica ever migrates (two replicas racing `flask upgrade-db` corrupt it).
 *
 * It waits inside one invocation, bounded below Lambda's 15 minutes, and stops the task if the
 * deadline passes. A delete does nothing. Errors name the task, its exit code and ECS's stop reason,
 * never the task's environment.
 */

export interface RunTaskProperties {
  readonly Cluster: string;
  readonly TaskDefinition: string;
  readonly Container: string;
  readonly Subnets: readonly string[];
  readonly SecurityGroups: readonly string[];
}

export interface Dependencies {
  readonly ecs: ECSClient;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly log: (line: Record<string, unknown>) => void;
  /** How long to wait for the task to stop. */
  readonly timeoutMs: number;
  readonly pollMs: number;
}

export class RunTaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunTaskError';
  }
}

const PHYSICAL_ID = 'dify-run-task';

export async function handler(event: CloudFormationCustomResourceEvent) {
  return runTask(event, {
    ecs: new ECSClient({}),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => Date.now(),
    log: (line) => console.log(JSON.stringify(line)),
    timeoutMs: 13 * 60 * 1000,
    pollMs: 10_000,
  });
}

export async function runTask(event: CloudFormationCustomResourceEvent, deps: Dependencies) {
  if (event.RequestType === 'Delete') {
    deps.log({ step: 'delete', action: 'none' });
    return { PhysicalResourceId: event.PhysicalResourceId };
  }
  const props = parseProperties(event.ResourceProperties);
  const started = await deps.ecs.send(
    new RunTaskCommand({
      cluster: props.Cluster,
      taskDefinition: props.TaskDefinition,
      launchType: 'FARGATE',
      count: 1,
      startedBy: 'cloudformation',
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: [...props.Subnets],
          securityGroups: [...props.SecurityGroups],
          assignPublicIp: 'DISABLED',
        },
      },
    }),
  );
  const failure = started.failures?.[0];
  const taskArn = started.tasks?.[0]?.taskArn;
  if (failure !== undefined || taskArn === undefined) {
    throw new RunTaskError(
      `ECS could not start the task: ${failure?.reason ?? 'no task returned'}${failure?.detail ? ` (${failure.detail})` : ''}`,
    );
  }
  deps.log({ step: 'started', taskArn });

  const deadline = deps.now() + deps.timeoutMs;
  for (;;) {
    const described = await deps.ecs.send(new DescribeTasksCommand({ cluster: props.Cluster, tasks: [taskArn] }));
    const task = described.tasks?.[0];
    if (task?.lastStatus === 'STOPPED') {
      const container = task.containers?.find((c) => c.name === props.Container);
      const exitCode = container?.exitCode;
      deps.log({ step: 'stopped', taskArn, exitCode, stoppedReason: task.stoppedReason });
      if (exitCode !== 0) {
        throw new RunTaskError(
          `task ${taskArn} failed: container ${props.Container} exited with ${exitCode ?? 'no exit code'}` +
            ` (${container?.reason ?? task.stoppedReason ?? 'no reason given'}); see its log group`,
        );
      }
      return { PhysicalResourceId: PHYSICAL_ID, Data: { TaskArn: taskArn, ExitCode: '0' } };
    }
    if (deps.now() >= deadline) {
      await deps.ecs.send(
        new StopTaskCommand({ cluster: props.Cluster, task: taskArn, reason: 'Deploy-time deadline passed' }),
      );
      throw new RunTaskError(
        `task ${taskArn} did not finish within ${Math.round(deps.timeoutMs / 1000)} s and was stopped`,
      );
    }
    deps.log({ step: 'waiting', taskArn, lastStatus: task?.lastStatus });
    await deps.sleep(deps.pollMs);
  }
}

export function parseProperties(raw: Record<string, unknown>): RunTaskProperties {
  const arn = (key: string, kind: string) => {
    const value = raw[key];
    if (typeof value !== 'string' || !/^arn:aws[a-z-]*:ecs:/.test(value) || !value.includes(`:${kind}/`)) {
      throw new RunTaskError(`property ${key}: expected an ECS ${kind} ARN`);
    }
    return value;
  };
  const ids = (key: string, prefix: string) => {
    const value = raw[key];
    if (
      !Array.isArray(value) ||
      value.length === 0 ||
      !value.every((v) => typeof v === 'string' && v.startsWith(prefix))
    ) {
      throw new RunTaskError(`property ${key}: expected a non-empty list of ${prefix}… ids`);
    }
    return value as string[];
  };
  const container = raw.Container;
  if (typeof container !== 'string' || container === '')
    throw new RunTaskError('property Container: expected the container name');
  return {
    Cluster: arn('Cluster', 'cluster'),
    TaskDefinition: arn('TaskDefinition', 'task-definition'),
    Container: container,
    Subnets: ids('Subnets', 'subnet-'),
    SecurityGroups: ids('SecurityGroups', 'sg-'),
  };
}
