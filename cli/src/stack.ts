import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { awsError, CliError } from './errors';

/** The deployed stack's outputs: every ARN and name a command needs, never pasted by the user. */
export class StackOutputs {
  constructor(
    readonly stackName: string,
    private readonly values: Record<string, string>,
  ) {}

  get(key: string): string {
    const value = this.values[key];
    if (value === undefined) {
      throw new CliError(
        `stack ${this.stackName} has no output ${key}; is it a dify-aws stack deployed by this release?`,
      );
    }
    return value;
  }

  has(key: string): boolean {
    return key in this.values;
  }

  /** Every output whose name ends in SecretArn: the stack's secrets. */
  secretArns(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.values).filter(([key]) => key.endsWith('SecretArn')));
  }
}

export async function loadStack(client: CloudFormationClient, stackName: string): Promise<StackOutputs> {
  let response;
  try {
    response = await client.send(new DescribeStacksCommand({ StackName: stackName }));
  } catch (error) {
    if (/does not exist/i.test(String((error as Error)?.message))) {
      throw new CliError(
        `stack ${stackName} not found in this region; pass --stack NAME and --region REGION of a deployed stack`,
      );
    }
    throw awsError(`reading stack ${stackName}`, error);
  }
  const stack = response.Stacks?.[0];
  if (stack === undefined) throw new CliError(`stack ${stackName} not found in this region`);
  return new StackOutputs(
    stackName,
    Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!])),
  );
}
