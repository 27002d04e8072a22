import { spawnSync } from 'node:child_process';
import * as ipaddr from 'ipaddr.js';
import { parseConfig } from '../../../lib/config/load';
import { sizingFor } from '../../../lib/config/sizing';
import {
  DIFY_SERVICES,
  type DifyServiceName,
  environmentOf,
  FLOWS,
  SERVICE_ROWS,
} from '../../../lib/constructs/dify/catalog';
import { DEFAULT_CAPABILITIES } from '../../../lib/constructs/runtime/ecs-task';
import { admissionObjects, allowedCapabilities } from '../../../lib/constructs/runtime/kubernetes/admission';
import { networkPolicies, type NetworkPolicyProps } from '../../../lib/constructs/runtime/kubernetes/network-policies';
import type { KubernetesObject, PodTemplate } from '../../../lib/constructs/runtime/kubernetes/objects';
import {
  NAMESPACES,
  type NamespaceSpec,
  namespaceObjects,
  namespaceOf,
  PLACEMENT,
  POD_SECURITY_VERSION,
  QUARANTINE_LABEL,
  SERVICE_LABEL,
} from '../../../lib/constructs/runtime/kubernetes/placement';
import { GROUPS, OPERATOR_RULES, rbacObjects, RESPONDER_RULES } from '../../../lib/constructs/runtime/kubernetes/rbac';
import {
  podTemplate,
  SECRETS_MOUNT,
  workloadObjects,
  type WorkloadSpec,
} from '../../../lib/constructs/runtime/kubernetes/workloads';
import { repoPath } from '../../../lib/paths';
import { allowed, type Cluster, type Endpoint, matrix, type Pod } from '../../helpers/network-policy';
import { evaluatePod } from '../../helpers/pod-security';
import { renderMatrix } from '../../helpers/sg-matrix';
import { build, task, VARIANTS } from '../../helpers/synth';
import { logicalId } from '../../helpers/template';
import { placeholderWiring } from '../../helpers/wiring';

/**
 * Dify's services rendered for Kubernetes from the same catalogue rows and flow table as on ECS:
 * the pod templates pass their namespace's Pod Security level (and fail `restricted` only on the
 * documented checks), carry the same hardening as the ECS task definitions, and the NetworkPolicies
 * allow exactly what the ECS security groups allow between the services.
 */
const config = parseConfig(VARIANTS.prod);
const sizing = sizingFor(config);
const VPC_CIDR = config.vpcCidr;
const WIRING = placeholderWiring({ serviceDomain: 'svc.cluster.local', credentialsAddress: '169.254.170.23' });

/** The rows that start through a command of their own can read secrets from files today. */
const specOf = (service: DifyServiceName): WorkloadSpec => {
  const row = DIFY_SERVICES[service];
  const { environment, secrets } = environmentOf(service, WIRING);
  const start = row.start?.({ vpcCidr: VPC_CIDR }) ?? {};
  return {
    // One repository for every image, tagged per image, as CDK's asset repository is.
    image: `registry.example/assets:${row.image}`,
    start,
    environment,
    secrets: { providerClass: row.name, variables: Object.keys(secrets) },
    sizing: sizing.services[row.sizing],
  };
};
const TEMPLATES = Object.fromEntries(
  SERVICE_ROWS.map((row) => [row.service, podTemplate(row, specOf(row.service))]),
) as Record<DifyServiceName, PodTemplate>;

/** Addresses the policies are evaluated against: data only, nothing is contacted. */
const [vpc] = ipaddr.parseCIDR(VPC_CIDR);
const vpcAddress = (third: number, fourth: number) => {
  const octets = (vpc as ipaddr.IPv4).octets;
  return `${octets[0]}.${octets[1]}.${third}.${fourth}`;
};
const PEERS: NetworkPolicyProps['peers'] = {
  database: { cidrs: [`${vpcAddress(200, 0)}/24`], ports: [5432] },
  cache: { cidrs: [`${vpcAddress(201, 0)}/24`], ports: [6379] },
  llm_gateway: { cidrs: [`${vpcAddress(202, 0)}/24`], ports: [8080] },
  edge: { cidrs: [`${vpcAddress(0, 0)}/24`], ports: [] },
  bedrock: { cidrs: [VPC_CIDR], ports: [443] },
};
const POLICIES = networkPolicies(
  FLOWS,
  SERVICE_ROWS.map((row) => row.service),
  { vpcCidr: VPC_CIDR, peers: PEERS },
);
const NAMESPACE_LABELS = Object.fromEntries(
  namespaceObjects().map((ns) => [ns.metadata.name, { ...(ns.metadata.labels ?? {}) }]),
);
const podOf = (service: DifyServiceName, index: number, extra: Record<string, string> = {}): Pod => ({
  kind: 'pod',
  name: service,
  namespace: namespaceOf(service),
  labels: { ...TEMPLATES[service].metadata.labels, ...extra },
  address: vpcAddress(100, index + 10),
});
const PODS = SERVICE_ROWS.map((row, i) => podOf(row.service, i));
const EXTERNALS: Endpoint[] = [
  { kind: 'external', name: 'database', address: vpcAddress(200, 10) },
  { kind: 'external', name: 'cache', address: vpcAddress(201, 10) },
  { kind: 'external', name: 'llm gateway', address: vpcAddress(202, 10) },
  { kind: 'external', name: 'load balancer', address: vpcAddress(0, 10) },
  // Reserved for documentation (RFC 5737): stands for any public address.
  { kind: 'external', name: 'internet', address: '192.0.2.1' },
  { kind: 'external', name: 'instance metadata', address: '169.254.169.254' },
];
const portsOf = (to: Endpoint): number[] => {
  if (to.kind === 'pod') {
    const port = DIFY_SERVICES[to.name as DifyServiceName].port;
    return port === undefined ? [] : [port];
  }
  return (
    (
      {
        database: [5432],
        cache: [6379],
        'llm gateway': [8080],
        internet: [80, 443],
        'instance metadata': [80],
      } as Record<string, number[]>
    )[to.name] ?? []
  );
};
const CLUSTER: Cluster = { namespaces: NAMESPACE_LABELS, policies: POLICIES };

describe('Dify on Kubernetes: workloads from the catalogue', () => {
  it.each(SERVICE_ROWS.map((row) => [row.service]))('%s passes its namespace’s Pod Security level', (service) => {
    const namespace = NAMESPACES[PLACEMENT[service].namespace];
    expect(evaluatePod(TEMPLATES[service], namespace.enforce)).toEqual([]);
    const restricted = [...new Set(evaluatePod(TEMPLATES[service], 'restricted').map((f) => f.check))].sort();
    if (namespace.enforce === 'restricted') expect(restricted).toEqual([]);
    // A baseline namespace's pods fail restricted only on the checks its annotation documents.
    else expect(restricted).toEqual([...namespace.exception.fails].sort());
  });

  it('labels every namespace with all three Pod Security modes, pinned, and says why a baseline one is not restricted', () => {
    for (const ns of namespaceObjects()) {
      const labels = ns.metadata.labels!;
      expect(labels['pod-security.kubernetes.io/audit']).toBe('restricted');
      expect(labels['pod-security.kubernetes.io/warn']).toBe('restricted');
      for (const mode of ['enforce', 'audit', 'warn'])
        expect(labels[`pod-security.kubernetes.io/${mode}-version`]).toBe(POD_SECURITY_VERSION);
      if (labels['pod-security.kubernetes.io/enforce'] === 'baseline') {
        const spec: NamespaceSpec = Object.values(NAMESPACES).find((n) => n.name === ns.metadata.name)!;
        expect(spec.exception?.why).toMatch(/\(([A-Z_]+, )*[A-Z_]+\)/);
        expect(ns.metadata.annotations?.['dify.security/baseline-because']).toBe(spec.exception?.why);
        expect(ns.metadata.annotations?.['dify.security/fails-restricted']).toBe(spec.exception?.fails.join(','));
      } else {
        expect(labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
      }
    }
  });

  it('keeps the pods that run others’ code on the tainted pool and every other pod off it', () => {
    for (const row of SERVICE_ROWS) {
      const spec = TEMPLATES[row.service].spec;
      const untrusted = row.service === 'sandbox' || row.service === 'plugin_daemon';
      expect(spec.nodeSelector?.['dify.ai/pool']).toBe(untrusted ? 'untrusted' : 'apps');
      expect((spec.tolerations ?? []).some((t) => t.key === 'dify.ai/untrusted')).toBe(untrusted);
    }
    const isolated = podTemplate(DIFY_SERVICES.sandbox, {
      ...specOf('sandbox'),
      untrustedRuntimeClass: 'isolated-sandbox',
    });
    expect(isolated.spec.runtimeClassName).toBe('isolated-sandbox');
    const api = podTemplate(DIFY_SERVICES.api, { ...specOf('api'), untrustedRuntimeClass: 'isolated-sandbox' });
    expect(api.spec.runtimeClassName).toBeUndefined();
  });

  it('gives no pod a service-account token, service links, privilege escalation or an unconfined profile', () => {
    for (const template of Object.values(TEMPLATES)) {
      expect(template.spec.automountServiceAccountToken).toBe(false);
      expect(template.spec.enableServiceLinks).toBe(false);
      expect(template.spec.securityContext.seccompProfile?.type).toBe('RuntimeDefault');
      for (const c of template.spec.containers) {
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
        expect(c.securityContext.privileged).toBe(false);
        expect(c.securityContext.capabilities?.drop).toEqual(['ALL']);
        expect(c.resources.requests).toEqual(c.resources.limits);
      }
    }
  });

  it('exports each secret from its mounted file and runs the row’s own start after, never writing a value', () => {
    const api = TEMPLATES.api.spec;
    const script = api.containers[0].command![2];
    expect(api.containers[0].command!.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(script).toContain(`SECRET_KEY="$(cat ${SECRETS_MOUNT}/SECRET_KEY)"; export SECRET_KEY`);
    const run = script.indexOf("\nexec '/bin/bash' '-c' '");
    expect(run).toBeGreaterThan(script.lastIndexOf('; export '));
    expect(api.volumes).toContainEqual({
      name: 'secrets',
      csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true, volumeAttributes: { secretProviderClass: 'api' } },
    });
    expect(TEMPLATES.sandbox.spec.containers[0].command![2].split('\n').at(-1)).toBe("exec '/entrypoint.sh'");
    expect(() =>
      podTemplate(DIFY_SERVICES.web, { ...specOf('web'), secrets: { providerClass: 'web', variables: ['X'] } }),
    ).toThrow(/web: reads secrets, so its row must name what the image runs/);
    expect(() =>
      podTemplate(DIFY_SERVICES.api, {
        ...specOf('api'),
        secrets: { providerClass: 'api', variables: ['X; rm -rf /'] },
      }),
    ).toThrow(/is not a variable name/);
  });

  it('runs the migration as a Job, beat as exactly one replica that never overlaps, and scales what scales', () => {
    const objects = SERVICE_ROWS.flatMap((row) => workloadObjects(row, specOf(row.service)));
    const find = (kind: string, name: string) =>
      objects.find((o) => o.kind === kind && o.metadata.name === name) as any;
    expect(find('Job', 'migration').spec).toMatchObject({
      backoffLimit: 0,
      template: { spec: { restartPolicy: 'Never' } },
    });
    expect(find('Deployment', 'migration')).toBeUndefined();
    expect(find('Deployment', 'beat').spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
    expect(find('HorizontalPodAutoscaler', 'beat')).toBeUndefined();
    for (const service of ['api', 'worker', 'web'] as const) {
      const row = DIFY_SERVICES[service];
      const size = sizing.services[row.sizing];
      expect(find('HorizontalPodAutoscaler', row.name).spec).toMatchObject({
        minReplicas: size.minTasks,
        maxReplicas: size.maxTasks,
      });
      expect(find('PodDisruptionBudget', row.name).spec.minAvailable).toBe(size.minTasks - 1);
    }
    for (const service of objects.filter((o) => o.kind === 'Service') as any[])
      for (const port of service.spec.ports) expect(port.targetPort).toBe(port.port);
  });

  // Why: Deployments had no spread, so a prod api's, worker's or web's replicas could all sit in one
  // zone, or on one node, and go down together.
  it('spreads every replicated Deployment over zones, then nodes, as a preference that never blocks a pod', () => {
    const deployments = SERVICE_ROWS.flatMap((row) => workloadObjects(row, specOf(row.service))).filter(
      (o) => o.kind === 'Deployment',
    ) as any[];
    expect(deployments.length).toBeGreaterThan(4);
    for (const deployment of deployments) {
      const { selector, template, strategy } = deployment.spec;
      const constraints = template.spec.topologySpreadConstraints;
      if (strategy.type === 'Recreate') {
        // beat: one replica, nothing to spread.
        expect({ name: deployment.metadata.name, constraints }).toEqual({ name: 'beat', constraints: undefined });
        continue;
      }
      expect({ name: deployment.metadata.name, constraints }).toEqual({
        name: deployment.metadata.name,
        constraints: ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
          maxSkew: 1,
          topologyKey,
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: selector,
        })),
      });
      // The selector counts this Deployment's own pods, and only them.
      expect(template.metadata.labels).toMatchObject(selector.matchLabels);
      const others = deployments.filter((d) => d !== deployment);
      for (const other of others)
        expect(
          Object.entries(selector.matchLabels).every(([k, v]) => other.spec.template.metadata.labels[k] === v),
        ).toBe(false);
    }
  });
});

describe('Dify on Kubernetes: the same hardening as the ECS task definitions', () => {
  const built = build(VARIANTS.prod);
  const resources = built.template.toJSON().Resources as Record<string, any>;
  it.each(SERVICE_ROWS.map((row) => [row.service]))(
    '%s: user, read-only root, writable paths and capabilities',
    (service) => {
      const definition = resources[logicalId(task(built, service).taskDefinition)].Properties.ContainerDefinitions[0];
      const container = TEMPLATES[service].spec.containers[0];
      const context = container.securityContext;
      expect(context.runAsUser === undefined ? undefined : String(context.runAsUser)).toEqual(definition.User);
      expect(context.readOnlyRootFilesystem).toBe(definition.ReadonlyRootFilesystem);
      const dropped: string[] = definition.LinuxParameters.Capabilities.Drop;
      const ecsEffective = dropped.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !dropped.includes(c));
      expect([...(context.capabilities?.add ?? [])].sort()).toEqual([...ecsEffective].sort());
      const writable = (container.volumeMounts ?? [])
        .filter((m) => m.mountPath !== SECRETS_MOUNT)
        .map((m) => m.mountPath);
      expect(writable.sort()).toEqual(((definition.MountPoints ?? []) as any[]).map((m) => m.ContainerPath).sort());
    },
  );
});

describe('Dify on Kubernetes: NetworkPolicies from the flow table', () => {
  it('allow between the services exactly what the ECS security groups allow', () => {
    const built = build(VARIANTS.prod);
    const names = Object.fromEntries(
      SERVICE_ROWS.map((row) => [logicalId(task(built, row.service).securityGroup), row.service]),
    );
    const ecs = renderMatrix(built.template, names)
      .filter((f) => f.from in DIFY_SERVICES && f.to in DIFY_SERVICES)
      .map((f) => `${f.from} -> ${f.to} : ${f.port}`)
      .sort();
    expect(matrix(CLUSTER, PODS, portsOf)).toEqual(ecs);
    expect(ecs.length).toBeGreaterThan(10);
  });

  it('lets the sandbox reach the SSRF proxy and DNS, and nothing else', () => {
    const sandbox = PODS.find((p) => p.name === 'sandbox')!;
    const reach = matrix(CLUSTER, [sandbox, ...PODS.filter((p) => p !== sandbox), ...EXTERNALS], portsOf).filter((e) =>
      e.startsWith('sandbox ->'),
    );
    expect(reach).toEqual(['sandbox -> ssrf_proxy : 3128']);
    expect(
      allowed(
        CLUSTER,
        sandbox,
        EXTERNALS.find((e) => e.name === 'internet')!,
        53,
        'UDP',
      ),
    ).toBe(true);
  });

  it('lets only the SSRF proxy reach the internet, on 80 and 443, and nobody the instance metadata', () => {
    const edges = matrix(CLUSTER, [...PODS, ...EXTERNALS], portsOf).filter((e) =>
      / -> (internet|instance metadata) /.test(e),
    );
    expect(edges).toEqual(['ssrf_proxy -> internet : 443', 'ssrf_proxy -> internet : 80']);
  });

  it('reaches the data tier, the gateway and the load balancer only as the flow table says', () => {
    const edges = matrix(CLUSTER, [...PODS, ...EXTERNALS], portsOf).filter((e) =>
      / -> (database|cache|llm gateway) |load balancer -> /.test(e),
    );
    const expected = FLOWS.filter((f) =>
      ['database', 'cache', 'llm_gateway', 'edge'].includes(f.from === 'edge' ? 'edge' : f.to),
    )
      .map((f) => {
        const name = (end: string) => ({ llm_gateway: 'llm gateway', edge: 'load balancer' })[end] ?? end;
        const to = f.to as string;
        const port = f.ports?.[0] ?? DIFY_SERVICES[to as DifyServiceName]?.port ?? PEERS[to as 'database'].ports[0];
        return `${name(f.from)} -> ${name(to)} : ${port}`;
      })
      .sort();
    expect(edges).toEqual(expected);
  });

  it('cuts every flow of a quarantined pod, DNS included, and every flow into a quarantined namespace', () => {
    const api = podOf('api', 0, { [QUARANTINE_LABEL]: 'true' });
    const others = PODS.filter((p) => p.name !== 'api');
    const edges = matrix(CLUSTER, [api, ...others, ...EXTERNALS], portsOf).filter((e) => /(^api | api :)/.test(e));
    expect(edges).toEqual([]);
    expect(
      allowed(
        CLUSTER,
        api,
        EXTERNALS.find((e) => e.name === 'internet')!,
        53,
        'UDP',
      ),
    ).toBe(false);
    const quarantined: Cluster = {
      ...CLUSTER,
      namespaces: {
        ...NAMESPACE_LABELS,
        'dify-sandbox': { ...NAMESPACE_LABELS['dify-sandbox'], [QUARANTINE_LABEL]: 'true' },
      },
    };
    const sandbox = PODS.find((p) => p.name === 'sandbox')!;
    expect(matrix(quarantined, PODS, portsOf).filter((e) => e.includes('sandbox'))).toEqual([]);
    expect(PODS.some((p) => p !== sandbox && allowed(CLUSTER, p, sandbox, 8194))).toBe(true);
  });
});

describe('Dify on Kubernetes: RBAC and objects', () => {
  const objects: KubernetesObject[] = [
    ...namespaceObjects(),
    ...SERVICE_ROWS.flatMap((row) => workloadObjects(row, specOf(row.service))),
    ...POLICIES,
    ...rbacObjects(),
  ];

  it('has the guide’s dify-operator Role verbatim and a responder Role with exactly the incident steps’ verbs, bound to groups only', () => {
    expect(OPERATOR_RULES).toEqual([
      { apiGroups: [''], resources: ['pods', 'services', 'configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch', 'update'] },
    ]);
    const verbs = RESPONDER_RULES.flatMap((r) =>
      r.resources.flatMap((res) => r.verbs.map((v) => `${res}:${v}`)),
    ).sort();
    expect(verbs).toEqual(
      [
        'deployments:get',
        'deployments:list',
        'deployments:patch',
        'deployments/scale:get',
        'deployments/scale:patch',
        'deployments/scale:update',
        'networkpolicies:get',
        'networkpolicies:list',
        'pods/log:get',
        'pods:delete',
        'pods:get',
        'pods:list',
        'pods:patch',
      ].sort(),
    );
    // One binding is cluster-wide: the responders' get-by-name ClusterRole (RESPONDER_CLUSTER_RULES),
    // bound to their group like every other, never to a service account.
    const clusterBindings = objects.filter((o) => o.kind === 'ClusterRoleBinding') as any[];
    expect(clusterBindings.map((b) => [b.roleRef, b.subjects])).toEqual([
      [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'dify-incident-responder-posture' },
        [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: GROUPS.responders }],
      ],
    ]);
    const bindings = objects.filter((o) => o.kind === 'RoleBinding') as any[];
    for (const b of bindings)
      expect(b.subjects).toEqual([
        {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Group',
          name: b.roleRef.name === 'dify-operator' ? GROUPS.operators : GROUPS.responders,
        },
      ]);
    expect(new Set(bindings.map((b) => b.metadata.namespace))).toEqual(
      new Set(Object.values(NAMESPACES).map((n) => n.name)),
    );
  });

  it('has no Secret object and no secret value', () => {
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(JSON.stringify(objects)).not.toMatch(/"kind":"Secret"|secretKeyRef/);
  });

  it('validates every object against the Kubernetes schemas, each far below the custom resource’s 256 KB', () => {
    const run = spawnSync(process.execPath, [repoPath('scripts/validate-manifests.mjs')], {
      input: JSON.stringify(objects),
      encoding: 'utf8',
      cwd: repoPath('.'),
    });
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as { valid: string[]; invalid: unknown[]; unknown: string[] };
    expect(report.invalid).toEqual([]);
    expect(report.unknown).toEqual([]);
    expect(report.valid).toHaveLength(objects.length);
    for (const object of objects) expect(JSON.stringify(object).length).toBeLessThan(200 * 1024);
  });

  it('fails validation on a malformed object, so the check can fail', () => {
    const bad = { ...POLICIES[0], spec: { podSelector: {}, policyTypes: ['Sideways'] } };
    const run = spawnSync(process.execPath, [repoPath('scripts/validate-manifests.mjs')], {
      input: JSON.stringify([bad, { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } }]),
      encoding: 'utf8',
      cwd: repoPath('.'),
    });
    const report = JSON.parse(run.stdout);
    expect(report.invalid).toHaveLength(1);
    expect(report.unknown).toEqual(['Thing//x']);
  });
});

// The service label is what both the Services and the policies select on.
test('every workload selects its pods by the service label the policies use', () => {
  for (const row of SERVICE_ROWS) expect(TEMPLATES[row.service].metadata.labels[SERVICE_LABEL]).toBe(row.name);
});

describe('Dify on Kubernetes: admission policies', () => {
  const REGISTRY = 'registry.example/assets';
  const policies = admissionObjects({ registry: REGISTRY, untrustedRuntimeClass: 'isolated-sandbox' });
  /** The messages of the validations each pod fails, evaluated by a CEL implementation. */
  const admit = (pods: Array<{ namespace: string; spec: unknown }>): string[][] => {
    const run = spawnSync(process.execPath, [repoPath('scripts/evaluate-admission.mjs')], {
      input: JSON.stringify({ objects: policies, pods }),
      encoding: 'utf8',
      cwd: repoPath('.'),
    });
    expect(run.stderr).toBe('');
    return JSON.parse(run.stdout);
  };
  const podOfRow = (service: DifyServiceName) => {
    const row = DIFY_SERVICES[service];
    const template = podTemplate(row, { ...specOf(service), untrustedRuntimeClass: 'isolated-sandbox' });
    return { namespace: namespaceOf(service), spec: template.spec };
  };

  it('lets each namespace add only the capabilities its rows document', () => {
    expect(allowedCapabilities('dify')).toEqual([]);
    expect(allowedCapabilities('sandbox')).toEqual(
      [...DIFY_SERVICES.sandbox.hardening.keepCapabilities.map((k) => k.capability)].sort(),
    );
    expect(allowedCapabilities('egress')).toEqual(['CHOWN', 'SETGID', 'SETUID']);
  });

  it('admits every pod of the catalogue as rendered', () => {
    const results = admit(SERVICE_ROWS.map((row) => podOfRow(row.service)));
    expect(Object.fromEntries(SERVICE_ROWS.map((row, i) => [row.service, results[i]]))).toEqual(
      Object.fromEntries(SERVICE_ROWS.map((row) => [row.service, []])),
    );
  });

  it('refuses a foreign image, an undocumented capability, escalation, privilege, and an untrusted pod off its pool or VM', () => {
    const api = podOfRow('api');
    const sandbox = podOfRow('sandbox');
    const withContainer = (pod: { namespace: string; spec: any }, change: (c: any) => void) => {
      const copy = structuredClone(pod);
      change(copy.spec.containers[0]);
      return copy;
    };
    const hostile = [
      withContainer(api, (c) => (c.image = 'docker.io/library/busybox:latest')),
      withContainer(api, (c) => (c.image = `${REGISTRY}.evil.example/x:1`)),
      withContainer(api, (c) => (c.securityContext.capabilities.add = ['NET_RAW'])),
      withContainer(sandbox, (c) => c.securityContext.capabilities.add.push('SYS_ADMIN')),
      withContainer(api, (c) => (c.securityContext.allowPrivilegeEscalation = true)),
      withContainer(api, (c) => (c.securityContext.privileged = true)),
      withContainer(api, (c) => (c.securityContext.capabilities.drop = [])),
      { ...sandbox, spec: { ...(sandbox.spec as object), tolerations: [] } },
      { ...sandbox, spec: { ...(sandbox.spec as object), runtimeClassName: undefined } },
      {
        ...api,
        spec: {
          ...(api.spec as object),
          initContainers: [
            { name: 'i', image: 'docker.io/x:1', securityContext: (api.spec as any).containers[0].securityContext },
          ],
        },
      },
    ];
    const results = admit(hostile);
    expect(results.map((r) => r.length > 0)).toEqual(hostile.map(() => true));
    expect(results[0]).toEqual([`dify-trusted-images: images in Dify's namespaces come only from ${REGISTRY}`]);
    expect(results[2]).toEqual([
      'dify-containers-dify: containers in dify drop ALL capabilities and add none but none',
    ]);
  });

  it('validates against the Kubernetes schemas', () => {
    const run = spawnSync(process.execPath, [repoPath('scripts/validate-manifests.mjs')], {
      input: JSON.stringify(policies),
      encoding: 'utf8',
      cwd: repoPath('.'),
    });
    const report = JSON.parse(run.stdout);
    expect([report.invalid, report.unknown, report.valid.length]).toEqual([[], [], policies.length]);
  });
});
