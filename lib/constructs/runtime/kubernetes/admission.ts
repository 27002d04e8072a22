import { containersPolicy, TRUSTED_IMAGES_POLICY } from '../../../../contracts/kubernetes';
import { SERVICE_ROWS } from '../../dify/catalog';
import type { KubernetesObject } from './objects';
import { type NamespaceKey, NAMESPACES, PLACEMENT } from './placement';

/**
 * Admission rules the API server itself enforces (ValidatingAdmissionPolicy, CEL, no webhook), on
 * top of Pod Security: in Dify's namespaces a pod runs only images from the deployment's own
 * registry, and a container adds no capability beyond what its namespace's rows document, drops all
 * others and never escalates. Pods that run others' code must carry the untrusted pool's toleration
 * (and the VM-per-pod runtime class when it is on).
 */

export interface AdmissionProps {
  /** The registry every image must come from, e.g. `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`. */
  readonly registry: string;
  /** Required of the untrusted pool's pods. @default - none required */
  readonly untrustedRuntimeClass?: string;
}

/** The capabilities a namespace's containers may add: the union of its rows' documented ones. */
export function allowedCapabilities(namespace: NamespaceKey): string[] {
  return [
    ...new Set(
      SERVICE_ROWS.filter((row) => PLACEMENT[row.service].namespace === namespace).flatMap((row) =>
        row.hardening.keepCapabilities.map((kept) => kept.capability),
      ),
    ),
  ].sort();
}

/** Every container of the pod: regular, init and ephemeral. */
const CONTAINERS =
  '((has(object.spec.initContainers) ? object.spec.initContainers : []) + object.spec.containers + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : []))';

const onPods = {
  resourceRules: [
    {
      apiGroups: [''],
      apiVersions: ['v1'],
      operations: ['CREATE', 'UPDATE'],
      resources: ['pods', 'pods/ephemeralcontainers'],
    },
  ],
};

const binding = (name: string, namespaces: readonly string[]): KubernetesObject => ({
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'ValidatingAdmissionPolicyBinding',
  metadata: { name },
  spec: {
    policyName: name,
    validationActions: ['Deny', 'Audit'],
    matchResources: {
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [...namespaces] }],
      },
    },
  },
});

export function admissionObjects(props: AdmissionProps): KubernetesObject[] {
  const namespaces = Object.values(NAMESPACES).map((ns) => ns.name);
  const images: KubernetesObject = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: TRUSTED_IMAGES_POLICY },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: onPods,
      validations: [
        {
          expression: `${CONTAINERS}.all(c, c.image.startsWith('${props.registry}:') || c.image.startsWith('${props.registry}@'))`,
          message: `images in Dify's namespaces come only from ${props.registry}`,
          reason: 'Forbidden',
        },
      ],
    },
  };
  const perNamespace = (Object.keys(NAMESPACES) as NamespaceKey[]).flatMap((key) => {
    const ns = NAMESPACES[key];
    const allowed = allowedCapabilities(key);
    const untrusted = Object.values(PLACEMENT).some((p) => p.namespace === key && p.pool === 'untrusted');
    const name = containersPolicy(ns.name);
    const list = `[${allowed.map((c) => `'${c}'`).join(', ')}]`;
    const validations = [
      {
        expression: `${CONTAINERS}.all(c, has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && 'ALL' in c.securityContext.capabilities.drop && (!has(c.securityContext.capabilities.add) || c.securityContext.capabilities.add.all(x, x in ${list})))`,
        message: `containers in ${ns.name} drop ALL capabilities and add none but ${allowed.join(', ') || 'none'}`,
        reason: 'Forbidden',
      },
      {
        expression: `${CONTAINERS}.all(c, has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) && c.securityContext.allowPrivilegeEscalation == false && (!has(c.securityContext.privileged) || c.securityContext.privileged == false))`,
        message: `containers in ${ns.name} never escalate privileges and are never privileged`,
        reason: 'Forbidden',
      },
      ...(untrusted
        ? [
            {
              expression: `has(object.spec.tolerations) && object.spec.tolerations.exists(t, t.key == 'dify.ai/untrusted') && has(object.spec.nodeSelector) && object.spec.nodeSelector['dify.ai/pool'] == 'untrusted'`,
              message: `pods in ${ns.name} run on the untrusted pool only`,
              reason: 'Forbidden',
            },
            ...(props.untrustedRuntimeClass === undefined
              ? []
              : [
                  {
                    expression: `has(object.spec.runtimeClassName) && object.spec.runtimeClassName == '${props.untrustedRuntimeClass}'`,
                    message: `pods in ${ns.name} run in the ${props.untrustedRuntimeClass} runtime class (a VM per pod)`,
                    reason: 'Forbidden',
                  },
                ]),
          ]
        : []),
    ];
    return [
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name },
        spec: { failurePolicy: 'Fail', matchConstraints: onPods, validations },
      },
      binding(name, [ns.name]),
    ];
  });
  return [images, binding(TRUSTED_IMAGES_POLICY, namespaces), ...perNamespace];
}
