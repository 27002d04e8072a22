/**
 * The Pod Security Standards checks, ported from kubernetes/pod-security-admission's `policy/check_*.go`
 * as they stand for v1.36 (the version the namespaces' labels pin). No API server runs offline, so
 * the tests evaluate every pod template with this port; test/helpers/pod-security.test.ts holds it
 * to known-good and known-bad pods taken from the checks' documentation.
 *
 * Only Linux pods are modelled (every pod here is Linux): the Windows-only exemptions are left out.
 */

export type Level = 'baseline' | 'restricted';

export type CheckId =
  | 'hostProcess'
  | 'hostNamespaces'
  | 'privileged'
  | 'capabilities_baseline'
  | 'hostPathVolumes'
  | 'hostPorts'
  | 'appArmorProfile'
  | 'seLinuxOptions'
  | 'procMount'
  | 'seccompProfile_baseline'
  | 'sysctls'
  | 'restrictedVolumes'
  | 'allowPrivilegeEscalation'
  | 'runAsNonRoot'
  | 'runAsUser'
  | 'seccompProfile_restricted'
  | 'capabilities_restricted';

export interface Finding {
  readonly check: CheckId;
  readonly detail: string;
}

type Pod = { metadata?: { annotations?: Record<string, string> }; spec: any };

const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const RESTRICTED_VOLUMES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

/** Every container of the pod: regular, init and ephemeral, each with its kind for messages. */
function containersOf(spec: any): Array<{ name: string; c: any }> {
  return ['containers', 'initContainers', 'ephemeralContainers'].flatMap((field) =>
    ((spec[field] as any[]) ?? []).map((c) => ({ name: c.name as string, c })),
  );
}

type Check = (pod: Pod) => string[];

const CHECKS: Record<CheckId, { level: Level; check: Check }> = {
  hostProcess: {
    level: 'baseline',
    check: ({ spec }) => [
      ...(spec.securityContext?.windowsOptions?.hostProcess === true ? ['pod hostProcess=true'] : []),
      ...containersOf(spec)
        .filter(({ c }) => c.securityContext?.windowsOptions?.hostProcess === true)
        .map(({ name }) => `container ${name} hostProcess=true`),
    ],
  },
  hostNamespaces: {
    level: 'baseline',
    check: ({ spec }) =>
      (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((f) => spec[f] === true).map((f) => `${f}=true`),
  },
  privileged: {
    level: 'baseline',
    check: ({ spec }) =>
      containersOf(spec)
        .filter(({ c }) => c.securityContext?.privileged === true)
        .map(({ name }) => `container ${name} privileged=true`),
  },
  capabilities_baseline: {
    level: 'baseline',
    check: ({ spec }) =>
      containersOf(spec).flatMap(({ name, c }) =>
        ((c.securityContext?.capabilities?.add as string[]) ?? [])
          .filter((cap) => !BASELINE_CAPABILITIES.has(cap))
          .map((cap) => `container ${name} adds ${cap}`),
      ),
  },
  hostPathVolumes: {
    level: 'baseline',
    check: ({ spec }) =>
      ((spec.volumes as any[]) ?? []).filter((v) => v.hostPath !== undefined).map((v) => `volume ${v.name} hostPath`),
  },
  hostPorts: {
    level: 'baseline',
    check: ({ spec }) =>
      containersOf(spec).flatMap(({ name, c }) =>
        ((c.ports as any[]) ?? [])
          .filter((p) => (p.hostPort ?? 0) !== 0)
          .map((p) => `container ${name} hostPort ${p.hostPort}`),
      ),
  },
  appArmorProfile: {
    level: 'baseline',
    check: ({ metadata, spec }) => {
      const allowed = (type: string | undefined) =>
        type === undefined || type === 'RuntimeDefault' || type === 'Localhost';
      const annotationAllowed = (value: string) => value === 'runtime/default' || value.startsWith('localhost/');
      return [
        ...(allowed(spec.securityContext?.appArmorProfile?.type) ? [] : ['pod appArmorProfile Unconfined']),
        ...containersOf(spec)
          .filter(({ c }) => !allowed(c.securityContext?.appArmorProfile?.type))
          .map(({ name }) => `container ${name} appArmorProfile Unconfined`),
        ...Object.entries(metadata?.annotations ?? {})
          .filter(
            ([key, value]) =>
              key.startsWith('container.apparmor.security.beta.kubernetes.io/') && !annotationAllowed(value),
          )
          .map(([key]) => `annotation ${key}`),
      ];
    },
  },
  seLinuxOptions: {
    level: 'baseline',
    check: ({ spec }) => {
      const bad = (o: any) =>
        o !== undefined && (!SELINUX_TYPES.has(o.type ?? '') || (o.user ?? '') !== '' || (o.role ?? '') !== '');
      return [
        ...(bad(spec.securityContext?.seLinuxOptions) ? ['pod seLinuxOptions'] : []),
        ...containersOf(spec)
          .filter(({ c }) => bad(c.securityContext?.seLinuxOptions))
          .map(({ name }) => `container ${name} seLinuxOptions`),
      ];
    },
  },
  procMount: {
    level: 'baseline',
    check: ({ spec }) =>
      containersOf(spec)
        .filter(({ c }) => c.securityContext?.procMount !== undefined && c.securityContext.procMount !== 'Default')
        .map(({ name }) => `container ${name} procMount ${name}`),
  },
  seccompProfile_baseline: {
    level: 'baseline',
    check: ({ spec }) => [
      ...(spec.securityContext?.seccompProfile?.type === 'Unconfined' ? ['pod seccompProfile Unconfined'] : []),
      ...containersOf(spec)
        .filter(({ c }) => c.securityContext?.seccompProfile?.type === 'Unconfined')
        .map(({ name }) => `container ${name} seccompProfile Unconfined`),
    ],
  },
  sysctls: {
    level: 'baseline',
    check: ({ spec }) =>
      ((spec.securityContext?.sysctls as any[]) ?? [])
        .filter((s) => !SAFE_SYSCTLS.has(s.name))
        .map((s) => `sysctl ${s.name}`),
  },
  restrictedVolumes: {
    level: 'restricted',
    check: ({ spec }) =>
      ((spec.volumes as any[]) ?? []).flatMap((v) => {
        const sources = Object.keys(v).filter((k) => k !== 'name');
        return sources.filter((s) => !RESTRICTED_VOLUMES.has(s)).map((s) => `volume ${v.name} uses ${s}`);
      }),
  },
  allowPrivilegeEscalation: {
    level: 'restricted',
    check: ({ spec }) =>
      containersOf(spec)
        .filter(({ c }) => c.securityContext?.allowPrivilegeEscalation !== false)
        .map(({ name }) => `container ${name} must set allowPrivilegeEscalation=false`),
  },
  runAsNonRoot: {
    level: 'restricted',
    check: ({ spec }) => {
      const pod = spec.securityContext?.runAsNonRoot;
      const findings = pod === false ? ['pod runAsNonRoot=false'] : [];
      for (const { name, c } of containersOf(spec)) {
        const own = c.securityContext?.runAsNonRoot;
        if (own === false) findings.push(`container ${name} runAsNonRoot=false`);
        else if (own === undefined && pod !== true) findings.push(`container ${name} must set runAsNonRoot=true`);
      }
      return findings;
    },
  },
  runAsUser: {
    level: 'restricted',
    check: ({ spec }) => [
      ...(spec.securityContext?.runAsUser === 0 ? ['pod runAsUser=0'] : []),
      ...containersOf(spec)
        .filter(({ c }) => c.securityContext?.runAsUser === 0)
        .map(({ name }) => `container ${name} runAsUser=0`),
    ],
  },
  seccompProfile_restricted: {
    level: 'restricted',
    check: ({ spec }) => {
      const ok = (type: string | undefined) => type === 'RuntimeDefault' || type === 'Localhost';
      const pod = spec.securityContext?.seccompProfile?.type;
      if (pod !== undefined && !ok(pod)) return [`pod seccompProfile ${pod}`];
      return containersOf(spec)
        .filter(({ c }) => {
          const own = c.securityContext?.seccompProfile?.type;
          return own === undefined ? !ok(pod) : !ok(own);
        })
        .map(({ name }) => `container ${name} must set seccompProfile RuntimeDefault or Localhost`);
    },
  },
  capabilities_restricted: {
    level: 'restricted',
    check: ({ spec }) =>
      containersOf(spec).flatMap(({ name, c }) => {
        const caps = c.securityContext?.capabilities ?? {};
        return [
          ...(((caps.drop as string[]) ?? []).includes('ALL') ? [] : [`container ${name} must drop ALL`]),
          ...((caps.add as string[]) ?? [])
            .filter((cap) => cap !== 'NET_BIND_SERVICE')
            .map((cap) => `container ${name} adds ${cap}`),
        ];
      }),
  },
};

/** The checks of a level: baseline's, and for `restricted` baseline's and its own. */
export const checksOf = (level: Level): CheckId[] =>
  (Object.keys(CHECKS) as CheckId[]).filter((id) => level === 'restricted' || CHECKS[id].level === 'baseline');

/** Every finding of `level` on a pod (metadata and spec, as in a pod template). */
export function evaluatePod(pod: Pod, level: Level): Finding[] {
  return checksOf(level).flatMap((check) => CHECKS[check].check(pod).map((detail) => ({ check, detail })));
}
