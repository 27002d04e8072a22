import { Fn, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { PartOfDeployment } from '../constructs/deployment-name';

export interface DeploymentStackProps extends StackProps {
  /** The deployment's name (configuration key stackName). */
  readonly deploymentName: string;
  /** Availability zones the VPC spans, should this stack hold it. */
  readonly azCount: number;
}

/**
 * One stack of a deployment. It holds whatever the composition (lib/app.ts) places in it and decides
 * nothing: physical names come from the deployment's name, not the stack's.
 */
export class DeploymentStack extends Stack implements PartOfDeployment {
  public readonly deploymentName: string;
  private readonly zones: string[];

  constructor(scope: Construct, id: string, props: DeploymentStackProps) {
    super(scope, id, props);
    this.deploymentName = props.deploymentName;
    // The region's first zones, resolved by CloudFormation at deploy time: never a context lookup, so
    // synth needs no credentials even with a concrete account and region, and never a hard-coded
    // zone name that does not exist in another account's mapping.
    this.zones = Array.from({ length: props.azCount }, (_, index) => Fn.select(index, Fn.getAzs()));
  }

  public override get availabilityZones(): string[] {
    return this.zones;
  }
}
