/**
 * The ECS task state changes that mean a Dify task failed, as EventBridge patterns on the `detail`
 * of an `ECS Task State Change` event (the event's documented shape: lastStatus, stopCode,
 * stoppedReason, containers[].exitCode and .reason). A deploy or a scale-in stops tasks too, with
 * stopCode `ServiceSchedulerInitiated` and whatever exit code SIGTERM leaves: those are not failures.
 * Tested by sending real-format events through EventBridge on moto_server
 * (test/contracts/ecs-task-events.test.ts).
 */
export const FAILED_TASK_PATTERNS = {
  /** An essential container exited by itself with a non-zero code: a crash, or OOM (exit 137). */
  Crashed: {
    lastStatus: ['STOPPED'],
    stopCode: ['EssentialContainerExited'],
    containers: { exitCode: [{ 'anything-but': 0 }] },
  },
  /** The task never ran: an image that cannot be pulled, a secret that cannot be read, no capacity. */
  FailedToStart: { lastStatus: ['STOPPED'], stopCode: ['TaskFailedToStart'] },
  /** ECS stopped it for failing its container or load-balancer health checks. */
  Unhealthy: { lastStatus: ['STOPPED'], stoppedReason: [{ prefix: 'Task failed' }] },
} as const;
