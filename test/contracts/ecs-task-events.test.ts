import { FAILED_TASK_PATTERNS } from '../../contracts/ecs-task-events';
import { matchesEventPattern } from '../helpers/event-pattern';

/**
 * The failed-task rules' patterns on `ECS Task State Change` events in the shape ECS sends them (the
 * documented event, trimmed to the fields that matter): which stops count as failures, and which do not.
 */
const CLUSTER = 'arn:aws:ecs:eu-west-1:123456789012:cluster/Dify-Runtime-Cluster';
const stopped = (detail: Record<string, unknown>, container: Record<string, unknown>) => ({
  version: '0',
  id: '3317b2af-7005-947d-b652-f55e762e571a',
  'detail-type': 'ECS Task State Change',
  source: 'aws.ecs',
  account: '123456789012',
  time: '2026-12-02T10:00:00Z',
  region: 'eu-west-1',
  resources: ['arn:aws:ecs:eu-west-1:123456789012:task/Dify-Runtime-Cluster/0b69d5c0d655450fb9ad2ed4d3c2e8a1'],
  detail: {
    clusterArn: CLUSTER,
    group: 'service:Dify-Api',
    lastStatus: 'STOPPED',
    desiredStatus: 'STOPPED',
    taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/Dify-Runtime-Cluster/0b69d5c0d655450fb9ad2ed4d3c2e8a1',
    containers: [{ name: 'api', lastStatus: 'STOPPED', ...container }],
    ...detail,
  },
});
const matchesAny = (event: object) =>
  Object.entries(FAILED_TASK_PATTERNS)
    .filter(([, detail]) =>
      matchesEventPattern(
        { source: ['aws.ecs'], 'detail-type': ['ECS Task State Change'], detail: { clusterArn: [CLUSTER], ...detail } },
        event as never,
      ),
    )
    .map(([kind]) => kind);

describe('failed ECS task events', () => {
  it.each([
    [
      'a crash',
      stopped(
        { stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited' },
        { exitCode: 1 },
      ),
      ['Crashed'],
    ],
    [
      'an OOM kill',
      stopped(
        { stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited' },
        { exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' },
      ),
      ['Crashed'],
    ],
    [
      'an image that cannot be pulled',
      stopped(
        {
          stopCode: 'TaskFailedToStart',
          stoppedReason: 'CannotPullContainerError: pull image manifest has been retried 5 time(s)',
        },
        {},
      ),
      ['FailedToStart'],
    ],
    [
      'a failed container health check',
      stopped(
        { stopCode: 'ServiceSchedulerInitiated', stoppedReason: 'Task failed container health checks' },
        { exitCode: 143 },
      ),
      ['Unhealthy'],
    ],
    [
      'a failed load balancer health check',
      stopped(
        {
          stopCode: 'ServiceSchedulerInitiated',
          stoppedReason:
            'Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/Api/abc)',
        },
        { exitCode: 143 },
      ),
      ['Unhealthy'],
    ],
    [
      'a deploy replacing a task',
      stopped(
        {
          stopCode: 'ServiceSchedulerInitiated',
          stoppedReason: 'Scaling activity initiated by (deployment ecs-svc/123)',
        },
        { exitCode: 143 },
      ),
      [],
    ],
    [
      'the migration task finishing',
      stopped(
        {
          stopCode: 'EssentialContainerExited',
          stoppedReason: 'Essential container in task exited',
          group: 'family:dify-migration',
        },
        { exitCode: 0 },
      ),
      [],
    ],
    [
      'a running task',
      { ...stopped({}, {}), detail: { ...stopped({}, {}).detail, lastStatus: 'RUNNING', desiredStatus: 'RUNNING' } },
      [],
    ],
    [
      'a crash in another cluster',
      stopped(
        { clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/other', stopCode: 'EssentialContainerExited' },
        { exitCode: 1 },
      ),
      [],
    ],
  ])('%s -> %j', (_what, event, expected) => {
    expect(matchesAny(event)).toEqual(expected);
  });
});
