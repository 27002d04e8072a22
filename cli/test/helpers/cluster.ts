import type { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { respond } from '../../../lambda/cluster-responder/src/index';
import { KubeClient } from '../../../lambda/cluster-responder/src/kube';
import { eksToken } from '../../../lambda/cluster-responder/src/token';
import { type FakeKubernetes, startFakeKubernetes } from '../../../test/helpers/fake-kubernetes';

/**
 * An EKS deployment's cluster as the CLI reaches it: the cluster responder's own handler, invoked in
 * process where Lambda would invoke it, against a Kubernetes API on 127.0.0.1 that enforces the
 * responders' RBAC (test/helpers/fake-kubernetes.ts). `lambda` stands in for the CLI's Lambda client:
 * it answers InvokeCommand as Lambda does (the handler's JSON as the payload) and records each request.
 */
export interface Cluster {
  readonly kube: FakeKubernetes;
  readonly lambda: LambdaClient;
  /** Each request the CLI sent, and the function it named. */
  readonly invocations: Array<{ functionName: string; request: Record<string, unknown> }>;
  /** The next invocation fails as a crashed function does (FunctionError: Unhandled). */
  crashNext(): void;
  stop(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'AKIAEXAMPLEEXAMPLE00', secretAccessKey: 'responderSecretAccessKeyExample0123' };

export async function startCluster(options: { revoked?: () => Promise<number> } = {}): Promise<Cluster> {
  const kube = await startFakeKubernetes({ clusterName: 'Dify', region: 'us-east-1' });
  const deps = {
    kube: new KubeClient({
      baseUrl: kube.url,
      token: () => eksToken('Dify', 'us-east-1', CREDENTIALS, new Date('2026-12-02T09:00:00Z')),
      timeoutMs: 5000,
    }),
    log: () => undefined,
    revokeSessions: options.revoked ?? (async () => 0),
  };
  const invocations: Cluster['invocations'] = [];
  let crash = false;
  const lambda = {
    send: async (command: InvokeCommand) => {
      const { FunctionName, Payload } = command.input;
      const request = JSON.parse(new TextDecoder().decode(Payload as Uint8Array));
      invocations.push({ functionName: String(FunctionName), request });
      if (crash) {
        crash = false;
        const error = { errorType: 'Runtime.ExitError', errorMessage: 'RequestId: 1 Error: Runtime exited' };
        return {
          StatusCode: 200,
          FunctionError: 'Unhandled',
          Payload: new TextEncoder().encode(JSON.stringify(error)),
        };
      }
      const answer = await respond(request, deps);
      return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(answer)) };
    },
    destroy: () => undefined,
  } as unknown as LambdaClient;
  return {
    kube,
    lambda,
    invocations,
    crashNext: () => (crash = true),
    stop: () => kube.stop(),
  };
}
