/**
 * The Kubernetes objects the EKS runtime renders, as plain JSON-ready values. Only the fields we
 * write are typed; the tests validate every rendered object against the Kubernetes schemas.
 */

export type Labels = Readonly<Record<string, string>>;

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Labels;
  readonly annotations?: Labels;
}

/** Any object the runtime applies to the cluster. */
export interface KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly [field: string]: unknown;
}

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Labels;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface Capabilities {
  readonly drop?: readonly string[];
  readonly add?: readonly string[];
}

export interface SecurityContext {
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  readonly runAsNonRoot?: boolean;
  readonly readOnlyRootFilesystem?: boolean;
  readonly allowPrivilegeEscalation?: boolean;
  readonly privileged?: boolean;
  readonly capabilities?: Capabilities;
  readonly seccompProfile?: { readonly type: 'RuntimeDefault' | 'Localhost' | 'Unconfined' };
  readonly procMount?: string;
  readonly seLinuxOptions?: Readonly<Record<string, string>>;
  readonly appArmorProfile?: { readonly type: string };
  readonly windowsOptions?: { readonly hostProcess?: boolean };
}

export interface PodSecurityContext {
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  readonly runAsNonRoot?: boolean;
  readonly fsGroup?: number;
  readonly seccompProfile?: { readonly type: 'RuntimeDefault' | 'Localhost' | 'Unconfined' };
  readonly seLinuxOptions?: Readonly<Record<string, string>>;
  readonly appArmorProfile?: { readonly type: string };
  readonly sysctls?: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  readonly windowsOptions?: { readonly hostProcess?: boolean };
}

export interface Probe {
  readonly exec: { readonly command: readonly string[] };
  readonly initialDelaySeconds?: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly failureThreshold: number;
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  readonly ports?: ReadonlyArray<{
    readonly name?: string;
    readonly containerPort: number;
    readonly hostPort?: number;
    readonly protocol: 'TCP';
  }>;
  readonly resources: {
    readonly requests: Readonly<Record<string, string>>;
    readonly limits: Readonly<Record<string, string>>;
  };
  readonly securityContext: SecurityContext;
  readonly volumeMounts?: ReadonlyArray<{
    readonly name: string;
    readonly mountPath: string;
    readonly readOnly?: boolean;
  }>;
  readonly startupProbe?: Probe;
  readonly livenessProbe?: Probe;
  readonly readinessProbe?: Probe;
}

export interface Volume {
  readonly name: string;
  readonly emptyDir?: { readonly sizeLimit?: string };
  readonly csi?: { readonly driver: string; readonly readOnly: boolean; readonly volumeAttributes: Labels };
  readonly hostPath?: { readonly path: string };
  readonly [source: string]: unknown;
}

export interface PodSpec {
  readonly serviceAccountName: string;
  readonly automountServiceAccountToken: boolean;
  readonly enableServiceLinks: boolean;
  readonly hostNetwork?: boolean;
  readonly hostPID?: boolean;
  readonly hostIPC?: boolean;
  readonly securityContext: PodSecurityContext;
  readonly containers: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly volumes?: readonly Volume[];
  readonly nodeSelector?: Labels;
  readonly tolerations?: ReadonlyArray<{
    readonly key: string;
    readonly operator: 'Equal' | 'Exists';
    readonly value?: string;
    readonly effect: 'NoSchedule' | 'NoExecute';
  }>;
  readonly runtimeClassName?: string;
  readonly topologySpreadConstraints?: ReadonlyArray<{
    readonly maxSkew: number;
    readonly topologyKey: string;
    readonly whenUnsatisfiable: 'DoNotSchedule' | 'ScheduleAnyway';
    readonly labelSelector: { readonly matchLabels: Labels };
  }>;
  readonly restartPolicy?: 'Always' | 'Never' | 'OnFailure';
  readonly terminationGracePeriodSeconds?: number;
  readonly shareProcessNamespace?: boolean;
}

export interface PodTemplate {
  readonly metadata: { readonly labels: Labels; readonly annotations?: Labels };
  readonly spec: PodSpec;
}
