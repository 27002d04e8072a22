import { randomBytes, randomUUID } from 'node:crypto';
import { ECSClient } from '@aws-sdk/client-ecs';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { RotateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ROTATION_STEPS, type RotationTarget } from '../../../contracts/rotation';
import { type Ports, rotationStep } from '../../../lambda/secret-rotation/src/rotation';
import { REGION } from './deployment';

/**
 * Secrets Manager's side of a rotation, for the CLI's tests: moto_server keeps the versions but runs
 * no Lambda, so RotateSecret is answered here the way Secrets Manager does it, by running the stack's
 * own rotation code (lambda/secret-rotation) for the four steps with a new token, in the background
 * after the call returns. `stopAfter` stops it after that many steps, as a failed step would.
 */
export interface RotationDriver {
  /** The Secrets Manager client the CLI gets: moto's, with RotateSecret played here. */
  secrets: SecretsManagerClient;
  /** A Lambda client that runs the rotation function's steps when the CLI invokes it by name. */
  lambda: LambdaClient;
  /** Steps run so far, as `<step> <token>`. */
  readonly steps: string[];
  /** Set to stop rotations after this many steps (undefined: all four). */
  stopAfter: number | undefined;
  /** Set to make the next invoked step fail with this message. */
  failNext: string | undefined;
  /** The background rotation started by the last RotateSecret, if any. */
  running: Promise<void> | undefined;
}

export function rotationDriver(options: {
  moto: SecretsManagerClient;
  functionName: string;
  targets: Record<string, RotationTarget>;
  /** Where the function's restarts of EKS Deployments go (the cluster responder), if any. */
  responder?: LambdaClient;
}): RotationDriver {
  const ports = (): Ports => ({
    secrets: options.moto,
    ecs: new ECSClient({ region: REGION }),
    lambda: options.responder ?? new LambdaClient({ region: REGION }),
    cacheUsers: { setPasswords: async () => undefined },
    cacheSignIn: async () => undefined,
    randomBytes,
    sleep: async () => undefined,
    now: () => Date.UTC(2026, 11, 2, 10),
    log: () => undefined,
    settleBudgetMs: 60_000,
    pollMs: 15_000,
  });
  const driver: RotationDriver = {
    steps: [],
    stopAfter: undefined,
    failNext: undefined,
    running: undefined,
    secrets: undefined as unknown as SecretsManagerClient,
    lambda: undefined as unknown as LambdaClient,
  };
  const step = async (SecretId: string, ClientRequestToken: string, Step: string) => {
    driver.steps.push(`${Step} ${ClientRequestToken}`);
    if (driver.failNext !== undefined) {
      const message = driver.failNext;
      driver.failNext = undefined;
      throw new Error(message);
    }
    await rotationStep({ SecretId, ClientRequestToken, Step }, options.targets, ports());
  };
  driver.secrets = {
    send: async (command: object) => {
      if (!(command instanceof RotateSecretCommand)) return options.moto.send(command as never);
      const secretId = command.input.SecretId!;
      const token = randomUUID();
      const steps = ROTATION_STEPS.slice(0, driver.stopAfter ?? 4);
      driver.running = (async () => {
        for (const name of steps) await step(secretId, token, name);
      })().catch(() => undefined);
      return { ARN: secretId, VersionId: token };
    },
  } as unknown as SecretsManagerClient;
  driver.lambda = {
    send: async (command: object) => {
      if (!(command instanceof InvokeCommand) || command.input.FunctionName !== options.functionName) {
        if (options.responder !== undefined) return options.responder.send(command as never);
        throw new Error('unexpected Lambda call');
      }
      const event = JSON.parse(Buffer.from(command.input.Payload as Uint8Array).toString('utf8'));
      try {
        await step(event.SecretId, event.ClientRequestToken, event.Step);
        return { StatusCode: 200, Payload: Buffer.from('null') };
      } catch (error) {
        return {
          StatusCode: 200,
          FunctionError: 'Unhandled',
          Payload: Buffer.from(JSON.stringify({ errorMessage: (error as Error).message })),
        };
      }
    },
  } as unknown as LambdaClient;
  return driver;
}

/** Turns rotation on without running one (moto has no Lambda to run): the value is unchanged. */
export async function enableRotation(moto: SecretsManagerClient, arn: string): Promise<void> {
  await moto.send(
    new RotateSecretCommand({ SecretId: arn, RotationRules: { AutomaticallyAfterDays: 90 }, RotateImmediately: false }),
  );
}
