import { spawnSync } from 'node:child_process';
import { CONTROL_PLANE_LOG_TYPES, WORKLOADS } from '../../../contracts/kubernetes';
import { SECRETS, type SecretEntry } from '../../../contracts/secrets';
import { DIFY_SERVICES, type DifyServiceName, SERVICE_ROWS } from '../../../lib/constructs/dify/catalog';
import { DEFAULT_CAPABILITIES } from '../../../lib/constructs/runtime/ecs-task';
import { AUDIT_ALARMS, CONTROL_PLANE_LOGS } from '../../../lib/constructs/runtime/eks-cluster';
import { AWS_CALLERS } from '../../../lib/constructs/runtime/eks-runtime';
import { NAMESPACES, QUARANTINE_LABEL } from '../../../lib/constructs/runtime/kubernetes/placement';
import type { ClusterResponder } from '../../../lib/constructs/runtime/cluster-responder';
import {
  OPERATOR_RULES,
  RESPONDER_CLUSTER_RULES,
  RESPONDER_RULES,
} from '../../../lib/constructs/runtime/kubernetes/rbac';
import { repoPath } from '../../../lib/paths';
import { appliedManifests } from '../../helpers/kubernetes';
import { allowed, type Cluster, matrix, type Pod } from '../../helpers/network-policy';
import { evaluatePod } from '../../helpers/pod-security';
import { renderEgress, renderMatrix } from '../../helpers/sg-matrix';
import { build, task, VARIANTS } from '../../helpers/synth';
import { INSIGHTS_NAMESPACE } from '../../../lib/constructs/runtime/eks-insights';
import { logicalId, references, resources } from '../../helpers/template';

/**
 * Dify on EKS (platform=eks) as synthesized: the cluster, who may reach it, and every Kubernetes
 * object the template applies, read back from the manifests the kubectl function receives.
 */
const eks = build(VARIANTS['eks-prod']);
const ecs = build(VARIANTS.prod);
const template = eks.template;
const json = template.toJSON();
const manifests = appliedManifests(template);
const objects = manifests.flatMap((m) => m.objects);
const find = (kind: string, name: string) => objects.filter((o) => o.kind === kind && o.metadata.name === name);
const clusterResource = resources(template, 'AWS::EKS::Cluster')[0][1].Properties as Record<string, any>;
const runtime = eks.stacks.eks!;
const responder = runtime.node.findChild('Responder') as ClusterResponder;

describe('the EKS cluster', () => {
  it('has a private API endpoint only, in the private subnets', () => {
    expect(clusterResource.ResourcesVpcConfig).toMatchObject({
      EndpointPublicAccess: false,
      EndpointPrivateAccess: true,
    });
    const privateSubnets = eks.stacks.network.vpc.privateSubnets.map((s) => logicalId(s));
    const subnets = JSON.stringify(clusterResource.ResourcesVpcConfig.SubnetIds);
    for (const id of privateSubnets) expect(subnets).toContain(id);
    for (const subnet of [...eks.stacks.network.vpc.publicSubnets, ...eks.stacks.network.vpc.isolatedSubnets])
      expect(subnets).not.toContain(logicalId(subnet));
  });

  it('envelope-encrypts the Kubernetes API’s data with a rotating key of its own', () => {
    const [config] = clusterResource.EncryptionConfig;
    expect(config.Resources).toEqual(['secrets']);
    expect(JSON.stringify(config.Provider.KeyArn)).toContain(logicalId(runtime.eks.key));
    expect(
      resources(template, 'AWS::KMS::Key').find(([id]) => id === logicalId(runtime.eks.key))![1].Properties,
    ).toMatchObject({ EnableKeyRotation: true });
  });

  it('sends all five control-plane logs to a group it creates first, encrypted and with retention', () => {
    expect(clusterResource.Logging.ClusterLogging.EnabledTypes.map((t: { Type: string }) => t.Type).sort()).toEqual(
      CONTROL_PLANE_LOGS.map(String).sort(),
    );
    expect(CONTROL_PLANE_LOGS.map(String)).toEqual([...CONTROL_PLANE_LOG_TYPES]);
    const [[groupId, group]] = resources(template, 'AWS::Logs::LogGroup').filter(
      ([, g]) => g.Properties?.LogGroupName === '/aws/eks/Dify/cluster',
    );
    expect(group.Properties).toMatchObject({ RetentionInDays: 365 });
    expect(group.Properties?.KmsKeyId).toBeDefined();
    expect(JSON.stringify(resources(template, 'AWS::EKS::Cluster')[0][1].DependsOn)).toContain(groupId);
  });

  it('grants access through access entries only: no creator admin, one break-glass admin, two groups', () => {
    expect(clusterResource.AccessConfig).toMatchObject({
      AuthenticationMode: 'API',
      BootstrapClusterCreatorAdminPermissions: false,
    });
    const entries = resources(template, 'AWS::EKS::AccessEntry').map(([, e]) => e.Properties!);
    const admin = entries.filter((e) => JSON.stringify(e.AccessPolicies ?? []).includes('AmazonEKSClusterAdminPolicy'));
    // The break-glass role, and the role of the function that applies the manifests (CDK's kubectl
    // handler, which only Lambda can assume and only CloudFormation invokes).
    const handlerRole = runtime.eks.cluster.node
      .findChild('KubectlProvider')
      .node.findChild('Handler')
      .node.findChild('ServiceRole');
    expect(admin.map((e) => JSON.stringify(e.PrincipalArn)).sort()).toEqual(
      [logicalId(runtime.eks.breakGlassRole), logicalId(handlerRole)]
        .map((id) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }))
        .sort(),
    );
    const handlerTrust = json.Resources[logicalId(handlerRole)].Properties.AssumeRolePolicyDocument.Statement;
    expect(handlerTrust).toEqual([expect.objectContaining({ Principal: { Service: 'lambda.amazonaws.com' } })]);
    const groups = entries
      .filter((e) => e.KubernetesGroups !== undefined)
      .map((e) => e.KubernetesGroups)
      .sort();
    // The operators, the human responders, and the cluster responder function (as the responders).
    expect(groups).toEqual([['dify-operators'], ['dify-responders'], ['dify-responders']]);
    const grouped = entries.filter((e) => e.KubernetesGroups !== undefined).map((e) => JSON.stringify(e.PrincipalArn));
    expect(grouped.sort()).toEqual(
      [runtime.eks.operatorRole, runtime.eks.responderRole, responder.function.role!]
        .map((role) => JSON.stringify({ 'Fn::GetAtt': [logicalId(role), 'Arn'] }))
        .sort(),
    );
    for (const role of [runtime.eks.breakGlassRole, runtime.eks.operatorRole, runtime.eks.responderRole]) {
      const trust = json.Resources[logicalId(role)].Properties.AssumeRolePolicyDocument.Statement;
      expect(trust).toEqual([
        expect.objectContaining({ Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } }),
      ]);
    }
  });

  it('runs Auto Mode nodes with their own minimal role, and reaches AWS through the endpoints', () => {
    expect(clusterResource.ComputeConfig).toMatchObject({ Enabled: true, NodePools: ['system'] });
    expect(JSON.stringify(clusterResource.ComputeConfig.NodeRoleArn)).toContain(logicalId(runtime.eks.nodeRole));
    const endpoints = resources(template, 'AWS::EC2::VPCEndpoint').map(([, e]) =>
      JSON.stringify(e.Properties?.ServiceName),
    );
    for (const service of ['.eks"', '.eks-auth"', '.sts"'])
      expect(endpoints.some((e) => e.includes(service))).toBe(true);
  });

  it('keeps the kubectl function’s logs in encrypted groups of ours', () => {
    const groups = resources(template, 'AWS::Logs::LogGroup')
      .map(([, g]) => g.Properties!)
      .filter((g) => String(g.LogGroupName).startsWith('/dify/Dify/eks/'));
    expect(groups.map((g) => g.LogGroupName).sort()).toEqual([
      '/dify/Dify/eks/cluster-responder',
      '/dify/Dify/eks/kubectl',
      '/dify/Dify/eks/kubectl-provider',
    ]);
    for (const g of groups) expect(g.KmsKeyId).toBeDefined();
  });
});

describe('Dify on EKS: the objects the template applies', () => {
  it('has no Kubernetes Secret, no secret reference, and one ClusterRole: get by name, for the responders group', () => {
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const clusterRoles = objects.filter((o) => o.kind === 'ClusterRole');
    expect(clusterRoles.map((r) => [r.metadata.name, r.rules])).toEqual([
      ['dify-incident-responder-posture', RESPONDER_CLUSTER_RULES],
    ]);
    for (const rule of RESPONDER_CLUSTER_RULES) {
      expect(rule.verbs).toEqual(['get']);
      expect(rule.resourceNames!.length).toBeGreaterThan(0);
    }
    // Exactly the namespaces and admission policies the template applies, by name.
    const named = (kind: string) =>
      objects
        .filter((o) => o.kind === kind)
        .map((o) => o.metadata.name)
        .sort();
    expect([...RESPONDER_CLUSTER_RULES[0].resourceNames!].sort()).toEqual(
      named('Namespace').filter((n) => n.startsWith('dify')),
    );
    expect([...RESPONDER_CLUSTER_RULES[1].resourceNames!].sort()).toEqual(named('ValidatingAdmissionPolicy'));
    expect(named('ValidatingAdmissionPolicyBinding')).toEqual(named('ValidatingAdmissionPolicy'));
    const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding');
    expect(bindings.map((b) => [b.roleRef.name, b.subjects])).toEqual([
      [
        'dify-incident-responder-posture',
        [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dify-responders' }],
      ],
    ]);
    expect(JSON.stringify(objects)).not.toMatch(/secretKeyRef|"kind":"Secret"/);
  });

  it('keeps every manifest far below the kubectl function’s 256 KB payload', () => {
    for (const m of manifests)
      expect({ id: m.id, small: m.text.length < 200 * 1024 }).toEqual({ id: m.id, small: true });
  });

  it('validates every built-in object against the Kubernetes schemas; the rest are the add-ons’ and Auto Mode’s kinds', () => {
    const run = spawnSync(process.execPath, [repoPath('scripts/validate-manifests.mjs')], {
      input: JSON.stringify(objects),
      encoding: 'utf8',
      cwd: repoPath('.'),
    });
    const report = JSON.parse(run.stdout) as { valid: string[]; invalid: unknown[]; unknown: string[] };
    expect(report.invalid).toEqual([]);
    expect(new Set(report.unknown.map((id) => id.split('/')[0]))).toEqual(
      new Set(['SecretProviderClass', 'TargetGroupBinding', 'NodeClass', 'NodePool', 'ApplicationNetworkPolicy']),
    );
    expect(report.valid.length).toBeGreaterThan(50);
  });

  it('runs every pod under its namespace’s Pod Security level, with the labels the namespace declares', () => {
    const namespaces = Object.fromEntries(
      find('Namespace', '').length
        ? []
        : objects.filter((o) => o.kind === 'Namespace').map((n) => [n.metadata.name, n.metadata.labels]),
    );
    expect(Object.keys(namespaces).sort()).toEqual(
      Object.values(NAMESPACES)
        .map((n) => n.name)
        .sort(),
    );
    const pods = objects.filter((o) => ['Deployment', 'Job'].includes(o.kind));
    expect(pods.map((p) => p.metadata.name.replace(/-[0-9a-f]{10}$/, '')).sort()).toEqual(
      SERVICE_ROWS.map((r) => r.name).sort(),
    );
    for (const workload of pods) {
      const level = namespaces[workload.metadata.namespace]['pod-security.kubernetes.io/enforce'];
      expect({ pod: workload.metadata.name, findings: evaluatePod(workload.spec.template, level) }).toEqual({
        pod: workload.metadata.name,
        findings: [],
      });
    }
  });

  it('gives each pod the same user, read-only root, writable paths and capabilities as its ECS task definition', () => {
    for (const row of SERVICE_ROWS) {
      const workload = objects.find(
        (o) =>
          ['Deployment', 'Job'].includes(o.kind) &&
          o.metadata.name.startsWith(row.name) &&
          o.metadata.labels?.['app.kubernetes.io/name'] === row.name,
      )!;
      const container = workload.spec.template.spec.containers[0];
      const definition =
        ecs.template.toJSON().Resources[logicalId(task(ecs, row.service).taskDefinition)].Properties
          .ContainerDefinitions[0];
      const dropped: string[] = definition.LinuxParameters.Capabilities.Drop;
      const effective = dropped.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !dropped.includes(c));
      expect({
        service: row.service,
        user:
          container.securityContext.runAsUser === undefined ? undefined : String(container.securityContext.runAsUser),
        readonlyRoot: container.securityContext.readOnlyRootFilesystem,
        capabilities: [...(container.securityContext.capabilities.add ?? [])].sort(),
        writable: container.volumeMounts
          .filter((m: { readOnly?: boolean }) => !m.readOnly)
          .map((m: { mountPath: string }) => m.mountPath)
          .sort(),
      }).toEqual({
        service: row.service,
        user: definition.User,
        readonlyRoot: definition.ReadonlyRootFilesystem,
        capabilities: [...effective].sort(),
        writable: (definition.MountPoints ?? []).map((m: { ContainerPath: string }) => m.ContainerPath).sort(),
      });
    }
  });

  it('binds each service account to its own role through Pod Identity, and no pod mounts a token', () => {
    const associations = resources(template, 'AWS::EKS::PodIdentityAssociation').map(([, a]) => a.Properties!);
    expect(associations.map((a) => `${a.Namespace}/${a.ServiceAccount}`).sort()).toEqual(
      [
        ...SERVICE_ROWS.map(
          (r) =>
            `${objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === r.name)!.metadata.namespace}/${r.name}`,
        ),
        // The Container Insights add-on's agents (CloudWatch agent and Fluent Bit share it).
        `${INSIGHTS_NAMESPACE}/cloudwatch-agent`,
      ].sort(),
    );
    expect(new Set(associations.map((a) => JSON.stringify(a.RoleArn))).size).toBe(associations.length);
    for (const sa of objects.filter((o) => o.kind === 'ServiceAccount'))
      expect(sa.automountServiceAccountToken).toBe(false);
  });

  it('lets each secret be read by exactly its catalogued consumers’ pod roles (the gateway’s stay on Fargate)', () => {
    const ids = Object.fromEntries(SERVICE_ROWS.map((r) => [r.id, r.service])) as Record<string, DifyServiceName>;
    for (const [name, entry] of Object.entries(SECRETS) as Array<[string, SecretEntry]>) {
      const secret = (json.Outputs[entry.output]?.Value as { Ref?: string })?.Ref;
      // A secret only an option creates (email's SMTP credentials) must be absent while it is off.
      const present = entry.onlyWith === undefined || VARIANTS['eks-prod'][entry.onlyWith] === 'true';
      expect({ name, secret: typeof secret }).toEqual({ name, secret: present ? 'string' : 'undefined' });
      if (!present) continue;
      const readers = SERVICE_ROWS.filter((row) => {
        const role = logicalId(runtime.roleOf(eks.stacks.services[row.service]));
        return resources(template, 'AWS::IAM::Policy').some(
          ([, p]) =>
            JSON.stringify(p.Properties?.Roles).includes(role) &&
            (
              p.Properties?.PolicyDocument as { Statement: Array<{ Action: unknown; Resource: unknown }> }
            ).Statement.some(
              (s) =>
                JSON.stringify(s.Action).includes('secretsmanager:GetSecretValue') &&
                JSON.stringify(s.Resource).includes(`"${secret}"`),
            ),
        );
      }).map((row) => row.service);
      const expected = [...entry.consumers, ...entry.tasks, ...(entry.readers ?? [])]
        .filter((id) => id in ids)
        .map((id) => ids[id]);
      expect({ name, readers: readers.sort() }).toEqual({ name, readers: [...new Set(expected)].sort() });
    }
  });

  it('runs the migration as a Job that must succeed before api, worker and beat roll', () => {
    const [[valueId, value]] = resources(template, 'Custom::AWSCDK-EKS-KubernetesObjectValue');
    expect(value.Properties).toMatchObject({
      ObjectType: 'job',
      JsonPath: '.status.succeeded',
      ObjectNamespace: 'dify',
    });
    const job = objects.find((o) => o.kind === 'Job')!;
    expect(value.Properties?.ObjectName).toBe(job.metadata.name);
    expect(job.metadata.name).toMatch(/^migration-[0-9a-f]{10}$/);
    for (const service of ['api', 'worker', 'worker_beat'] as const) {
      const manifest = manifests.find((m) =>
        m.objects.some((o) => o.kind === 'Deployment' && o.metadata.name === DIFY_SERVICES[service].name),
      )!;
      expect(JSON.stringify(json.Resources[manifest.id].DependsOn)).toContain(valueId);
    }
  });

  it('binds the edge’s target groups to the routed Services, tagged for Auto Mode to register pods', () => {
    const bindings = objects.filter((o) => o.kind === 'TargetGroupBinding');
    expect(bindings.map((b) => b.spec.serviceRef.name).sort()).toEqual(['api', 'plugin-daemon', 'web']);
    for (const b of bindings) expect(b.spec.targetType).toBe('ip');
    const groups = resources(template, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    expect(groups).toHaveLength(3);
    for (const [, group] of groups) {
      expect(group.Properties?.TargetType).toBe('ip');
      expect(JSON.stringify(group.Properties?.Tags)).toContain('eks:eks-cluster-name');
    }
  });

  it('admits every pod it applies under its admission policies, evaluated as CEL, and binds a policy to every namespace', () => {
    const pods = objects
      .filter((o) => ['Deployment', 'Job'].includes(o.kind))
      .map((w) => ({
        namespace: w.metadata.namespace,
        metadata: w.spec.template.metadata,
        spec: w.spec.template.spec,
      }));
    const run = spawnSync(process.execPath, [repoPath('scripts/evaluate-admission.mjs')], {
      input: JSON.stringify({ objects, pods }),
      encoding: 'utf8',
      cwd: repoPath('.'),
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual(pods.map(() => []));
    const bound = objects
      .filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding')
      .flatMap((b) => b.spec.matchResources.namespaceSelector.matchExpressions[0].values as string[]);
    for (const ns of Object.values(NAMESPACES)) expect(bound.filter((n) => n === ns.name)).toHaveLength(2);
    // The images the pods run are the ones the policy trusts: the deployment's asset repository.
    const images = pods.flatMap((p) => p.spec.containers.map((c: { image: string }) => c.image));
    expect(new Set(images.map((i) => i.split(':')[0])).size).toBe(1);
  });

  it('applies the guide’s operator Role and the responder Role in every namespace, bound to groups', () => {
    for (const ns of Object.values(NAMESPACES)) {
      const roles = objects.filter((o) => o.kind === 'Role' && o.metadata.namespace === ns.name);
      expect(Object.fromEntries(roles.map((r) => [r.metadata.name, r.rules]))).toEqual({
        'dify-operator': OPERATOR_RULES,
        'dify-incident-responder': RESPONDER_RULES,
      });
    }
  });
});

describe('Dify on EKS: the NetworkPolicies the template applies', () => {
  const namespaces = Object.fromEntries(
    objects.filter((o) => o.kind === 'Namespace').map((n) => [n.metadata.name, n.metadata.labels]),
  );
  const cluster: Cluster = { namespaces, policies: objects.filter((o) => o.kind === 'NetworkPolicy') };
  const pods: Pod[] = SERVICE_ROWS.map((row, i) => {
    const workload = objects.find(
      (o) =>
        ['Deployment', 'Job'].includes(o.kind) &&
        o.spec.template.metadata.labels['app.kubernetes.io/name'] === row.name,
    )!;
    // A pod address in the private subnets (data only; nothing is contacted).
    return {
      kind: 'pod',
      name: row.service,
      namespace: workload.metadata.namespace,
      labels: workload.spec.template.metadata.labels,
      address: `10.0.${100 + i}.10`,
    };
  });
  const portsOf = (to: { kind: string; name: string }) => {
    const port = to.kind === 'pod' ? DIFY_SERVICES[to.name as DifyServiceName].port : undefined;
    return port === undefined ? [] : [port];
  };

  it('allows between the services exactly what the ECS security groups allow', () => {
    const names = Object.fromEntries(
      SERVICE_ROWS.map((row) => [logicalId(task(ecs, row.service).securityGroup), row.service]),
    );
    const sg = renderMatrix(ecs.template, names)
      .filter((f) => f.from in DIFY_SERVICES && f.to in DIFY_SERVICES)
      .map((f) => `${f.from} -> ${f.to} : ${f.port}`)
      .sort();
    expect(matrix(cluster, pods, portsOf)).toEqual(sg);
  });

  it('lets the sandbox reach the SSRF proxy only, the proxy the internet only on 80 and 443, and nobody the metadata', () => {
    const internet = { kind: 'external' as const, name: 'internet', address: '192.0.2.1' };
    const metadata = { kind: 'external' as const, name: 'metadata', address: '169.254.169.254' };
    const sandbox = pods.find((p) => p.name === 'sandbox')!;
    expect(
      pods
        .filter(
          (p) => p !== sandbox && [3128, 8194, 5001, 5002, 3000].some((port) => allowed(cluster, sandbox, p, port)),
        )
        .map((p) => p.name),
    ).toEqual(['ssrf_proxy']);
    for (const pod of pods) {
      expect({ pod: pod.name, metadata: allowed(cluster, pod, metadata, 80) }).toEqual({
        pod: pod.name,
        metadata: false,
      });
      expect({ pod: pod.name, web: allowed(cluster, pod, internet, 443) }).toEqual({
        pod: pod.name,
        web: pod.name === 'ssrf_proxy',
      });
    }
  });

  it('cuts a quarantined pod off entirely', () => {
    const api = { ...pods[0], labels: { ...pods[0].labels, [QUARANTINE_LABEL]: 'true' } };
    expect(matrix(cluster, [api, ...pods.slice(1)], portsOf).filter((e) => e.includes(`${api.name} `))).toEqual([]);
  });
});

describe('Dify on EKS: audit-log alarms', () => {
  it('watches the control-plane log group for Secret reads, shells into pods and refusal bursts, each alarm on the topic', () => {
    const filters = resources(template, 'AWS::Logs::MetricFilter').filter(([, f]) =>
      JSON.stringify(f.Properties?.MetricTransformations).includes('Dify/EKS/'),
    );
    expect(filters.map(([, f]) => f.Properties!.FilterPattern).sort()).toEqual(
      Object.values(AUDIT_ALARMS)
        .map((a) => a.pattern)
        .sort(),
    );
    const [[groupId]] = resources(template, 'AWS::Logs::LogGroup').filter(
      ([, g]) => g.Properties?.LogGroupName === '/aws/eks/Dify/cluster',
    );
    for (const [, f] of filters) expect(f.Properties!.LogGroupName).toEqual({ Ref: groupId });
    const topic = logicalId(eks.stacks.observability.topic);
    for (const [name, alarm] of Object.entries(AUDIT_ALARMS)) {
      const [[, resource]] = resources(template, 'AWS::CloudWatch::Alarm').filter(
        ([, a]) => a.Properties?.MetricName === `Audit${name}`,
      );
      expect(resource.Properties).toMatchObject({
        Namespace: 'Dify/EKS/Dify',
        Statistic: 'Sum',
        Period: 300,
        Threshold: alarm.threshold,
        EvaluationPeriods: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      expect(JSON.stringify(resource.Properties!.AlarmActions)).toContain(topic);
    }
    // Any single Secret read or shell pages someone; refusals only in a burst.
    expect(AUDIT_ALARMS.SecretRead.threshold).toBe(1);
    expect(AUDIT_ALARMS.PodShell.threshold).toBe(1);
  });
});

describe('Dify on EKS: who calls AWS', () => {
  it('lets exactly the pods whose role is granted an AWS API beyond their secrets reach the Pod Identity agent and S3', () => {
    const callers = SERVICE_ROWS.filter((row) => {
      const role = logicalId(runtime.roleOf(eks.stacks.services[row.service]));
      const actions = resources(template, 'AWS::IAM::Policy')
        .filter(([, p]) => JSON.stringify(p.Properties?.Roles).includes(role))
        .flatMap(([, p]) => (p.Properties!.PolicyDocument as any).Statement as Array<{ Action: string | string[] }>)
        .flatMap((statement) => [statement.Action].flat());
      return actions.some((action) => !/^(secretsmanager|kms):/.test(action));
    }).map((row) => row.service);
    expect(callers.sort()).toEqual([...AWS_CALLERS].sort());
  });
});

describe('Dify on EKS: the cluster responder, the CLI’s way to the private API', () => {
  it('knows each Deployment where the template applies it (contracts/kubernetes.ts WORKLOADS)', () => {
    const deployments = objects
      .filter((o) => o.kind === 'Deployment')
      .map((d) => `${d.metadata.namespace}/${d.metadata.name}`)
      .sort();
    expect(
      Object.values(WORKLOADS)
        .map((w) => `${w.namespace}/${w.name}`)
        .sort(),
    ).toEqual(deployments);
    // Each is the ServiceId the secret catalogue and the ECS outputs use for the same row.
    for (const [id, w] of Object.entries(WORKLOADS)) expect(SERVICE_ROWS.find((r) => r.id === id)!.name).toBe(w.name);
  });

  const fn = json.Resources[logicalId(responder.function)].Properties;
  const roleId = logicalId(responder.function.role!);

  it('runs in the private subnets and reaches only the Kubernetes API, Valkey and the Secrets Manager endpoint', () => {
    const subnets = JSON.stringify(fn.VpcConfig.SubnetIds);
    for (const subnet of eks.stacks.network.vpc.privateSubnets) expect(subnets).toContain(logicalId(subnet));
    const names: Record<string, string> = {
      [logicalId(responder.securityGroup)]: 'responder',
      [logicalId(runtime.eks.cluster.node.findChild('ControlPlaneSecurityGroup'))]: 'cluster',
      [logicalId(eks.stacks.cache.connections.securityGroups[0])]: 'cache',
      [logicalId(eks.stacks.network.interfaceEndpoints.SecretsManager.connections.securityGroups[0])]:
        'secrets-manager-endpoint',
    };
    const flows = renderMatrix(template, names).filter((f) => f.from === 'responder');
    expect(flows).toEqual([
      { from: 'responder', to: 'cache', port: '6379' },
      { from: 'responder', to: 'cluster', port: '443' },
      { from: 'responder', to: 'secrets-manager-endpoint', port: '443' },
    ]);
    expect(renderEgress(template, names).filter((f) => f.from === 'responder')).toEqual([]);
    expect(fn.ReservedConcurrentExecutions).toBe(2);
  });

  it('reads one secret, Dify’s Valkey user, and its environment holds ARNs and addresses, no value', () => {
    const statements = resources(template, 'AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties?.Roles).includes(roleId))
      .flatMap(([, p]) => (p.Properties!.PolicyDocument as any).Statement as Array<Record<string, any>>);
    const secretReads = statements.filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(secretReads).toHaveLength(1);
    expect(JSON.stringify(secretReads[0].Resource)).toContain(logicalId(eks.stacks.cache.users.dify.secret));
    expect(Object.keys(fn.Environment.Variables).sort()).toEqual([
      'CACHE_HOST',
      'CACHE_PORT',
      'CACHE_SECRET_ARN',
      'CLUSTER_CA',
      'CLUSTER_ENDPOINT',
      'CLUSTER_NAME',
    ]);
    expect(JSON.stringify(fn.Environment.Variables)).not.toMatch(/resolve:secretsmanager|SecretString/);
  });

  it('may be invoked by the incident-responder role and the secret rotation alone; the former may also read the deployment’s outputs', () => {
    const invokers = resources(template, 'AWS::IAM::Policy').filter(([, p]) =>
      ((p.Properties!.PolicyDocument as any).Statement as Array<Record<string, any>>).some(
        (s) =>
          [s.Action].flat().includes('lambda:InvokeFunction') &&
          JSON.stringify(s.Resource).includes(logicalId(responder.function)),
      ),
    );
    // The secret rotation restarts a rotated secret's Deployments through it (lib/constructs/secret-rotation.ts).
    const rotation = eks.stacks.main.node.findChild('SecretRotation').node.findChild('Role').node.findChild('Resource');
    expect(invokers.map(([, p]) => p.Properties!.Roles)).toEqual([
      [{ Ref: logicalId(runtime.eks.responderRole) }],
      [{ Ref: logicalId(rotation) }],
    ]);
    expect(
      resources(template, 'AWS::Lambda::Permission').filter(([, p]) =>
        references(p.Properties, logicalId(responder.function)),
      ),
    ).toEqual([]);
    const outputs = Object.keys(json.Outputs ?? {});
    for (const name of [
      'EksClusterName',
      'ClusterResponderFunctionName',
      'BreakGlassRoleArn',
      'OperatorRoleArn',
      'ResponderRoleArn',
    ])
      expect(outputs).toContain(name);
  });
});
