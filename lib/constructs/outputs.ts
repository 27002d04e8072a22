import { CfnOutput } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { OutputName } from '../../contracts/stack-outputs';

/**
 * A stack output named exactly `name` (contracts/stack-outputs.ts), written by the construct that owns
 * the value: the operator CLI reads it by that name, wherever in the tree the construct sits.
 */
export function output(
  scope: Construct,
  name: OutputName | `${string}ServiceName` | `${string}LogGroupName`,
  value: string,
): CfnOutput {
  const out = new CfnOutput(scope, name, { value });
  out.overrideLogicalId(name);
  return out;
}
