import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct, IDependable } from 'constructs';
import type { TaskSizing } from '../../config/sizing';
import type { DifyServiceRow, StartCommand } from '../dify/catalog';
import type { Edge } from '../edge';

/**
 * What Dify's services need of a platform, and nothing of how it provides it. The catalogue
 * (dify/catalog.ts) says what each service is; a runtime turns a row into running containers. ECS
 * Fargate implements it in ecs-runtime.ts; the services never ask which platform they are on.
 */

/** A secret, or one JSON field of it, handed to a container as an environment variable at start. */
export interface SecretSource {
  readonly secret: secretsmanager.ISecret;
  readonly field?: string;
}

/** Everything the platform needs to run one row, resolved for this deployment. */
export interface RunSpec {
  /** The image, mirrored into the deployment's own registry. */
  readonly image: ecrAssets.DockerImageAsset;
  readonly start: StartCommand;
  /** Non-secret settings only. */
  readonly environment: Record<string, string>;
  /** Injected by the platform at start; never in a template's text. */
  readonly secrets: Record<string, SecretSource>;
  readonly sizing: TaskSizing;
  /** Whether interruptible capacity is allowed for rows that may use it. */
  readonly interruptible: boolean;
}

/** A rendered row: what other components connect to and grant to. */
export interface RunningService extends ec2.IConnectable, iam.IGrantable {
  readonly row: DifyServiceRow;
}

export interface DifyRuntime {
  /** The private DNS domain services are registered under. */
  readonly serviceDomain: string;
  /** Where a container gets its IAM credentials from the platform (kept off the proxy). */
  readonly credentialsAddress: string;
  /** The name other services reach a discoverable row by. */
  hostOf(row: DifyServiceRow): string;
  /** Renders one row under `scope`: a long-running service, or a one-off task for `runAtDeploy`. */
  run(scope: Construct, row: DifyServiceRow, spec: RunSpec): RunningService;
  /** Routes the front door to a service (the row's `edge`), health-checked on its HTTP health path. */
  route(edge: Edge, service: RunningService, sizing: TaskSizing): void;
  /**
   * Runs a one-off service to completion during each deploy that changes it, after `after`; the
   * returned dependable completes when it exited successfully.
   */
  runAtDeploy(
    scope: Construct,
    id: string,
    task: RunningService,
    after: ReadonlyArray<IDependable | RunningService>,
  ): IDependable;
  /** `service` starts (and rolls) only after `dependencies`. */
  startAfter(service: RunningService, ...dependencies: Array<IDependable | RunningService>): void;
  /** Called once every grant of the services under `scope` has been made. */
  seal(scope: Construct): void;
}
