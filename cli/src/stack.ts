import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { deploymentStacks, OUTPUTS } from '../../contracts/stack-outputs';
import { awsError, CliError } from './errors';

/** The deployed outputs: every ARN and name a command needs, never pasted by the user. */
export class StackOutputs {
  constructor(
    /** The deployment's name: its main stack's. */
    readonly stackName: string,
    private readonly values: Record<string, string>,
  ) {}

  get(key: string): string {
    const value = this.values[key];
    if (value === undefined && this.values[OUTPUTS.platform] === 'eks') {
      throw new CliError(
        `deployment ${this.stackName} runs Dify on EKS, and this step needs ${key}, which only an ECS deployment has`,
      );
    }
    if (value === undefined) {
      throw new CliError(
        `deployment ${this.stackName} has no output ${key}; is it a dify-aws deployment of this release?`,
      );
    }
    return value;
  }

  has(key: string): boolean {
    return key in this.values;
  }

  /** Every output whose name ends in SecretArn: the deployment's secrets. */
  secretArns(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.values).filter(([key]) => key.endsWith('SecretArn')));
  }
}

/** A stack's outputs, or undefined when no stack of that name exists in the region. */
async function outputsOf(
  client: CloudFormationClient,
  stackName: string,
  deployment: string,
): Promise<Record<string, string> | undefined> {
  let response;
  try {
    response = await client.send(new DescribeStacksCommand({ StackName: stackName }));
  } catch (error) {
    if (/does not exist/i.test(String((error as Error)?.message))) return undefined;
    // The deployment's name, not the stack's: the stacks are read at once, and any of them may fail first.
    throw awsError(`reading the stacks of deployment ${deployment}`, error);
  }
  const stack = response.Stacks?.[0];
  if (stack === undefined) return undefined;
  return Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
}

/**
 * The outputs of every stack of the deployment named `stackName`, merged (each name is unique across
 * them). The main stack must exist; a stack of the others that does not (a deployment made before the
 * split kept everything in the main stack) contributes nothing, and a command that needs one of its
 * outputs says which is missing.
 */
export async function loadDeployment(
  client: CloudFormationClient,
  stackName: string,
  /** The region the client calls, for the message when the stack is not there. */
  region: () => Promise<string | undefined> = async () => undefined,
): Promise<StackOutputs> {
  const names = deploymentStacks(stackName);
  const found = await Promise.all(names.map((name) => outputsOf(client, name, stackName)));
  if (found[names.length - 1] === undefined) {
    const where = await region();
    throw new CliError(
      `stack ${stackName} not found in ${where ?? 'this region'}; pass --stack NAME of a deployed stack (the name given to cdk deploy; Dify by default), and --region REGION if it is in another region`,
      1,
      'not-found',
    );
  }
  return new StackOutputs(stackName, Object.assign({}, ...found.filter((outputs) => outputs !== undefined)));
}
