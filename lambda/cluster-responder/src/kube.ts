import { type Dispatcher, request } from 'undici';

/** A Kubernetes API error: the status and the API's own message, which names the object and the verb. */
export class KubeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export interface KubeObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly generation?: number;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly spec?: Record<string, unknown>;
  readonly status?: Record<string, unknown>;
}

export interface KubeClientOptions {
  /** `https://…` for a cluster; a test's fake API on 127.0.0.1 may be plain HTTP. */
  readonly baseUrl: string;
  /** A fresh bearer token for each call (EKS tokens live a minute). */
  readonly token: () => Promise<string>;
  /** Carries the cluster's certificate authority. */
  readonly dispatcher?: Dispatcher;
  /** Per call. */
  readonly timeoutMs: number;
}

/**
 * The few calls of the Kubernetes REST API the responder makes: get, list and JSON merge patch.
 * Errors carry Kubernetes' own reason (`deployments.apps "api" is forbidden: …`), never the token.
 */
export class KubeClient {
  constructor(private readonly options: KubeClientOptions) {}

  async get(path: string): Promise<KubeObject> {
    return (await this.call('GET', path)) as KubeObject;
  }

  async list(path: string, labelSelector?: string): Promise<KubeObject[]> {
    const query = labelSelector === undefined ? '' : `?labelSelector=${encodeURIComponent(labelSelector)}`;
    return ((await this.call('GET', `${path}${query}`)) as { items?: KubeObject[] }).items ?? [];
  }

  /** RFC 7386 merge patch: `null` removes a key. */
  async mergePatch(path: string, patch: unknown): Promise<KubeObject> {
    return (await this.call('PATCH', path, patch)) as KubeObject;
  }

  private async call(method: 'GET' | 'PATCH', path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${await this.options.token()}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/merge-patch+json';
    const response = await request(`${this.options.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: this.options.dispatcher,
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) {
      let reason = text.slice(0, 300);
      try {
        reason = (JSON.parse(text) as { message?: string }).message ?? reason;
      } catch {
        // Not a Kubernetes Status object: its first characters say enough.
      }
      throw new KubeError(response.statusCode, `${method} ${path.split('?')[0]}: ${response.statusCode} ${reason}`);
    }
    return JSON.parse(text);
  }
}

export const paths = {
  deployment: (namespace: string, name: string) => `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
  pods: (namespace: string) => `/api/v1/namespaces/${namespace}/pods`,
  pod: (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/pods/${name}`,
  namespace: (name: string) => `/api/v1/namespaces/${name}`,
  networkPolicies: (namespace: string) => `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`,
  admissionPolicies: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies',
  admissionBindings: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings',
};
