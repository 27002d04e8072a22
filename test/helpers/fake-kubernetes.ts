import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  containersPolicy,
  DEFAULT_DENY_POLICY,
  NAMESPACES,
  podSecurityLabels,
  SERVICE_LABEL,
  TRUSTED_IMAGES_POLICY,
  WORKLOADS,
} from '../../contracts/kubernetes';
import {
  type PolicyRule,
  RESPONDER_CLUSTER_RULES,
  RESPONDER_RULES,
} from '../../lib/constructs/runtime/kubernetes/rbac';

/**
 * A Kubernetes API on 127.0.0.1 that holds a Dify deployment's objects and answers as the real one
 * does for the calls the cluster responder makes, enforcing the responders' RBAC: every request is
 * authorized against RESPONDER_RULES in Dify's namespaces and RESPONDER_CLUSTER_RULES outside them,
 * and refused with 403 as Kubernetes words it. Bearer tokens must be EKS tokens for `clusterName`.
 * A Deployment's rollout completes on the second read after its spec changes (the controller's
 * delay), so that a caller must wait for it.
 */

type Obj = Record<string, any>;

export interface Request {
  readonly method: string;
  readonly path: string;
  readonly verb: string;
  readonly status: number;
}

export interface FakeKubernetes {
  readonly url: string;
  /** Every request, in order, with the verb it was authorized as and the answer's status. */
  readonly requests: Request[];
  /** The object at an API path (a copy), or undefined. */
  object(path: string): Obj | undefined;
  put(path: string, object: Obj): void;
  remove(path: string): void;
  stop(): Promise<void>;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Obj = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** Checks an EKS token's shape: a pre-signed STS GetCallerIdentity URL bound to the cluster, valid 60 s. */
export function tokenProblem(header: string | undefined, clusterName: string, region: string): string | undefined {
  const match = /^Bearer k8s-aws-v1\.([A-Za-z0-9_-]+)$/.exec(header ?? '');
  if (match === null) return 'no EKS bearer token';
  const url = new URL(Buffer.from(match[1], 'base64url').toString('utf8'));
  const q = url.searchParams;
  if (url.protocol !== 'https:' || url.hostname !== `sts.${region}.amazonaws.com`) return `wrong host ${url.host}`;
  if (q.get('Action') !== 'GetCallerIdentity' || q.get('Version') !== '2011-06-15') return 'not GetCallerIdentity';
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !/^[0-9a-f]{64}$/.test(q.get('X-Amz-Signature') ?? ''))
    return 'not signed with SigV4';
  if (q.get('X-Amz-Expires') !== '60') return `lifetime ${q.get('X-Amz-Expires')}`;
  if (!(q.get('X-Amz-SignedHeaders') ?? '').split(';').includes('x-k8s-aws-id')) return 'cluster id not signed';
  if (!(q.get('X-Amz-Credential') ?? '').includes(`/${region}/sts/aws4_request`)) return 'wrong credential scope';
  // The cluster name travels as a signed header, not in the URL: EKS adds it when it calls STS.
  if (clusterName === '') return 'no cluster';
  return undefined;
}

interface Resolved {
  readonly group: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly collection: string;
}

/** /api/v1/namespaces/ns/pods/name, /apis/apps/v1/namespaces/ns/deployments/name, /apis/g/v/resource/name. */
function resolve(path: string): Resolved | undefined {
  const parts = path.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 3) [group, rest] = [parts[1], parts.slice(3)];
  else return undefined;
  const prefix = parts.slice(0, group === '' ? 2 : 3).join('/');
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    return {
      group,
      resource: rest[2],
      namespace: rest[1],
      name: rest[3],
      collection: `/${prefix}/namespaces/${rest[1]}/${rest[2]}`,
    };
  }
  return { group, resource: rest[0], name: rest[1], collection: `/${prefix}/${rest[0]}` };
}

function allowed(rules: readonly PolicyRule[], group: string, resource: string, verb: string, name?: string) {
  return rules.some(
    (r) =>
      r.apiGroups.includes(group) &&
      r.resources.includes(resource) &&
      r.verbs.includes(verb) &&
      (r.resourceNames === undefined || (name !== undefined && r.resourceNames.includes(name))),
  );
}

const difyNamespaces = new Set<string>(Object.values(NAMESPACES).map((ns) => ns.name));

/** A Deployment as the cluster holds it after the manifests applied and the rollout settled. */
function deployment(namespace: string, name: string, replicas: number): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, generation: 1 },
    spec: {
      replicas,
      selector: { matchLabels: { [SERVICE_LABEL]: name } },
      template: { metadata: { labels: { [SERVICE_LABEL]: name } } },
    },
    status: {
      observedGeneration: 1,
      replicas,
      updatedReplicas: replicas,
      availableReplicas: replicas,
      readyReplicas: replicas,
    },
  };
}

/**
 * Dify as the EKS manifests leave it: its namespaces with their Pod Security labels, each with its
 * default-deny policy, its admission policies and bindings, each Deployment (two replicas, one for
 * beat) and its pods, and a pod of some other application in `default`, which no call may touch.
 */
export function difyObjects(): Record<string, Obj> {
  const objects: Record<string, Obj> = {};
  for (const ns of Object.values(NAMESPACES)) {
    objects[`/api/v1/namespaces/${ns.name}`] = {
      kind: 'Namespace',
      metadata: { name: ns.name, labels: { 'kubernetes.io/metadata.name': ns.name, ...podSecurityLabels(ns) } },
    };
    objects[`/apis/networking.k8s.io/v1/namespaces/${ns.name}/networkpolicies/${DEFAULT_DENY_POLICY}`] = {
      kind: 'NetworkPolicy',
      metadata: { name: DEFAULT_DENY_POLICY, namespace: ns.name },
    };
    for (const kind of ['validatingadmissionpolicies', 'validatingadmissionpolicybindings']) {
      objects[`/apis/admissionregistration.k8s.io/v1/${kind}/${containersPolicy(ns.name)}`] = {
        metadata: { name: containersPolicy(ns.name) },
      };
    }
  }
  for (const kind of ['validatingadmissionpolicies', 'validatingadmissionpolicybindings']) {
    objects[`/apis/admissionregistration.k8s.io/v1/${kind}/${TRUSTED_IMAGES_POLICY}`] = {
      metadata: { name: TRUSTED_IMAGES_POLICY },
    };
  }
  for (const [id, { namespace, name }] of Object.entries(WORKLOADS)) {
    const replicas = id === 'Beat' ? 1 : 2;
    objects[`/apis/apps/v1/namespaces/${namespace}/deployments/${name}`] = deployment(namespace, name, replicas);
    for (let i = 0; i < replicas; i++) {
      const pod = `${name}-7d9f8b6c5-${'abcde'[i]}x${i}zq`;
      objects[`/api/v1/namespaces/${namespace}/pods/${pod}`] = {
        kind: 'Pod',
        metadata: { name: pod, namespace, labels: { [SERVICE_LABEL]: name, 'app.kubernetes.io/part-of': 'dify' } },
      };
    }
  }
  objects['/api/v1/namespaces/default/pods/other-app-0'] = {
    kind: 'Pod',
    metadata: { name: 'other-app-0', namespace: 'default', labels: { [SERVICE_LABEL]: 'api' } },
  };
  return objects;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolveBody, reject) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => resolveBody(body));
    req.on('error', reject);
  });

function matches(selector: string | null, labels: Record<string, string> = {}): boolean {
  if (selector === null) return true;
  return selector.split(',').every((term) => {
    const [key, value] = term.split('=');
    return labels[key] === value;
  });
}

export async function startFakeKubernetes(options: {
  readonly clusterName: string;
  readonly region: string;
  readonly objects?: Record<string, Obj>;
}): Promise<FakeKubernetes> {
  const store = new Map<string, Obj>(Object.entries(options.objects ?? difyObjects()));
  /** Reads left before a Deployment's rollout settles. */
  const pending = new Map<string, number>();
  const requests: Request[] = [];

  const handle = async (req: IncomingMessage): Promise<[number, Obj]> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const target = resolve(path);
    const collection = target !== undefined && target.name === undefined;
    const verb =
      req.method === 'GET' ? (collection ? 'list' : 'get') : req.method === 'PATCH' ? 'patch' : String(req.method);
    const status = (code: number, message: string): [number, Obj] => [
      code,
      { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code },
    ];
    const problem = tokenProblem(req.headers.authorization, options.clusterName, options.region);
    if (problem !== undefined) return status(401, `Unauthorized: ${problem}`);
    if (target === undefined) return status(404, `the server could not find the requested resource (${path})`);
    const namespaced = target.namespace !== undefined;
    const permitted = namespaced
      ? difyNamespaces.has(target.namespace!) && allowed(RESPONDER_RULES, target.group, target.resource, verb)
      : allowed(RESPONDER_CLUSTER_RULES, target.group, target.resource, verb, target.name);
    if (!permitted) {
      const where = namespaced ? `in the namespace "${target.namespace}"` : 'at the cluster scope';
      return status(
        403,
        `${target.resource}${target.group ? `.${target.group}` : ''}${target.name ? ` "${target.name}"` : ''} is forbidden: User "arn:aws:sts::123456789012:assumed-role/responder/fn" cannot ${verb} resource "${target.resource}" in API group "${target.group}" ${where}`,
      );
    }
    if (verb === 'list') {
      const items = [...store.entries()]
        .filter(
          ([p, o]) =>
            p.startsWith(`${target.collection}/`) && matches(url.searchParams.get('labelSelector'), o.metadata?.labels),
        )
        .map(([, o]) => o);
      return [200, { kind: 'List', items }];
    }
    const current = store.get(path);
    if (current === undefined) return status(404, `${target.resource} "${target.name}" not found`);
    if (verb === 'get') {
      if (target.resource === 'deployments') {
        const left = pending.get(path) ?? 0;
        if (left > 0) pending.set(path, left - 1);
        else {
          const replicas = current.spec.replicas;
          current.status = {
            observedGeneration: current.metadata.generation,
            replicas,
            updatedReplicas: replicas,
            availableReplicas: replicas,
            readyReplicas: replicas,
          };
        }
      }
      return [200, current];
    }
    if (verb === 'patch') {
      if (req.headers['content-type'] !== 'application/merge-patch+json')
        return status(415, `the body of the request was in an unknown format: ${req.headers['content-type']}`);
      const patched = mergePatch(current, JSON.parse(await readBody(req))) as Obj;
      if (target.resource === 'deployments' && JSON.stringify(patched.spec) !== JSON.stringify(current.spec)) {
        patched.metadata = { ...patched.metadata, generation: (current.metadata.generation ?? 1) + 1 };
        patched.status = { ...current.status, updatedReplicas: 0 };
        pending.set(path, 1);
      }
      store.set(path, patched);
      return [200, patched];
    }
    return status(405, `the server does not allow this method on the requested resource`);
  };

  const server: Server = createServer((req, res) => {
    handle(req).then(
      ([code, body]) => {
        const target = resolve(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
        requests.push({
          method: String(req.method),
          path: String(req.url),
          verb: req.method === 'GET' ? (target?.name === undefined ? 'list' : 'get') : String(req.method).toLowerCase(),
          status: code,
        });
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      },
      (error: Error) => {
        res.writeHead(500);
        res.end(JSON.stringify({ message: error.message }));
      },
    );
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    object: (path) => (store.has(path) ? structuredClone(store.get(path)) : undefined),
    put: (path, object) => store.set(path, object),
    remove: (path) => store.delete(path),
    stop: () => new Promise((done) => server.close(() => done())),
  };
}
