import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { ResponderRequest, ResponderResponse, ResponderResults } from '../../contracts/cluster-responder';
import { OUTPUTS } from '../../contracts/stack-outputs';
import type { Context } from './context';
import { awsError, CliError } from './errors';

/** `ecs` or `eks`: where the deployment runs Dify's services (a deployment without the output is ECS). */
export async function platformOf(ctx: Context): Promise<'ecs' | 'eks'> {
  const stack = await ctx.stack();
  return stack.has(OUTPUTS.platform) && stack.get(OUTPUTS.platform) === 'eks' ? 'eks' : 'ecs';
}

/**
 * Asks the deployment's cluster responder (the in-VPC function that reaches the private Kubernetes
 * API as the dify-responders group) to carry out one request, and returns its result. The caller
 * needs lambda:InvokeFunction on it: the incident-responder role (ResponderRoleArn) has it.
 */
export async function askCluster<A extends ResponderRequest['action']>(
  ctx: Context,
  request: Extract<ResponderRequest, { action: A }>,
): Promise<ResponderResults[A]> {
  const stack = await ctx.stack();
  const functionName = stack.get(OUTPUTS.clusterResponderFunctionName);
  let payload: Uint8Array | undefined;
  let functionError: string | undefined;
  try {
    const invoked = await ctx
      .lambda()
      .send(
        new InvokeCommand({ FunctionName: functionName, Payload: new TextEncoder().encode(JSON.stringify(request)) }),
      );
    payload = invoked.Payload;
    functionError = invoked.FunctionError;
  } catch (error) {
    throw awsError(
      `invoking the cluster responder ${functionName} (assume ${stack.has(OUTPUTS.responderRoleArn) ? stack.get(OUTPUTS.responderRoleArn) : 'the incident-responder role'})`,
      error,
    );
  }
  const text = payload === undefined ? '' : new TextDecoder().decode(payload);
  if (functionError !== undefined) {
    // Lambda's own error document: the type and message of what failed, never the request.
    let reason = functionError;
    try {
      const parsed = JSON.parse(text) as { errorType?: string; errorMessage?: string };
      reason = `${parsed.errorType ?? functionError}: ${parsed.errorMessage ?? 'no message'}`;
    } catch {
      // Not JSON: the function error's kind says enough.
    }
    throw new CliError(`the cluster responder ${functionName} failed (${reason}); see its log group`);
  }
  let answer: ResponderResponse<A>;
  try {
    answer = JSON.parse(text) as ResponderResponse<A>;
  } catch {
    throw new CliError(`the cluster responder ${functionName} answered something that is not JSON`);
  }
  if (!answer.ok) throw new CliError(`the cluster responder answered: ${answer.error}`);
  return answer.result;
}
