import type { IConstruct } from 'constructs';
import { acknowledge, nistAndHipaa } from './acknowledge';

const DLQ =
  'Invoked only by CloudFormation during a deploy, synchronously; a failed run fails the deploy and CloudFormation rolls back, so a dead-letter queue would hold nothing actionable.';
const CONCURRENCY =
  'Invoked only by CloudFormation, once per deploy; reserving concurrency would take capacity from the account for a function that runs a few seconds a deploy.';

/**
 * The findings every deploy-time Lambda (a custom resource's handler) shares: no dead-letter queue
 * and no reserved concurrency, because CloudFormation invokes it synchronously once per deploy.
 */
export function acknowledgeDeployTimeFunction(cfnFunction: IConstruct): void {
  acknowledge(cfnFunction, ...nistAndHipaa('LambdaDLQ', DLQ), ...nistAndHipaa('LambdaConcurrency', CONCURRENCY));
}
