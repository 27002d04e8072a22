import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** A stack that is one of several making up a deployment, all named after it. */
export interface PartOfDeployment {
  /** The deployment's name (configuration key stackName): the prefix of every physical name. */
  readonly deploymentName: string;
}

/**
 * The name physical resources are prefixed with: the deployment's, whichever of its stacks the
 * construct lives in, so that moving a construct between stacks renames nothing. A stack that is not
 * part of a deployment (the us-east-1 one) uses its own name.
 */
export function deploymentName(scope: IConstruct): string {
  const stack = Stack.of(scope) as Stack & Partial<PartOfDeployment>;
  return stack.deploymentName ?? stack.stackName;
}
