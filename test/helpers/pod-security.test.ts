import { type CheckId, checksOf, evaluatePod } from './pod-security';

/**
 * The Pod Security port against pods the upstream documentation names as allowed or refused, one
 * check at a time: a checker that passes everything, or refuses everything, fails here.
 */
const container = (securityContext: object = {}, extra: object = {}) => ({
  name: 'c',
  image: 'i',
  securityContext,
  ...extra,
});
const RESTRICTED_OK = {
  spec: {
    securityContext: { seccompProfile: { type: 'RuntimeDefault' }, runAsNonRoot: true },
    containers: [container({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsUser: 1001 })],
    volumes: [
      { name: 'tmp', emptyDir: {} },
      { name: 's', csi: { driver: 'd' } },
    ],
  },
};
const checks = (pod: object, level: 'baseline' | 'restricted') =>
  [...new Set(evaluatePod(pod as never, level).map((f) => f.check))].sort();

describe('the Pod Security Standards port (v1.36)', () => {
  it('passes a pod that meets restricted, and a default root pod under baseline only', () => {
    expect(checks(RESTRICTED_OK, 'restricted')).toEqual([]);
    const plain = { spec: { containers: [container()] } };
    expect(checks(plain, 'baseline')).toEqual([]);
    expect(checks(plain, 'restricted')).toEqual(
      ['allowPrivilegeEscalation', 'capabilities_restricted', 'runAsNonRoot', 'seccompProfile_restricted'].sort(),
    );
  });

  const refused: Array<[CheckId, object]> = [
    ['hostNamespaces', { hostNetwork: true, containers: [container()] }],
    ['privileged', { containers: [container({ privileged: true })] }],
    ['capabilities_baseline', { containers: [container({ capabilities: { add: ['SYS_ADMIN'] } })] }],
    ['hostPathVolumes', { containers: [container()], volumes: [{ name: 'h', hostPath: { path: '/' } }] }],
    ['hostPorts', { containers: [container({}, { ports: [{ containerPort: 80, hostPort: 80 }] })] }],
    ['appArmorProfile', { containers: [container({ appArmorProfile: { type: 'Unconfined' } })] }],
    ['seLinuxOptions', { containers: [container({ seLinuxOptions: { type: 'spc_t' } })] }],
    ['procMount', { containers: [container({ procMount: 'Unmasked' })] }],
    [
      'seccompProfile_baseline',
      { securityContext: { seccompProfile: { type: 'Unconfined' } }, containers: [container()] },
    ],
    ['sysctls', { securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }] }, containers: [container()] }],
    ['hostProcess', { containers: [container({ windowsOptions: { hostProcess: true } })] }],
  ];
  it.each(refused)('baseline refuses %s', (check, spec) => {
    expect(checks({ spec }, 'baseline')).toEqual([check]);
  });

  const restrictedOnly: Array<[CheckId, (spec: any) => void]> = [
    ['restrictedVolumes', (spec) => spec.volumes.push({ name: 'n', nfs: { server: 's', path: '/' } })],
    ['allowPrivilegeEscalation', (spec) => delete spec.containers[0].securityContext.allowPrivilegeEscalation],
    ['runAsNonRoot', (spec) => (spec.securityContext.runAsNonRoot = false)],
    ['runAsUser', (spec) => (spec.containers[0].securityContext.runAsUser = 0)],
    ['seccompProfile_restricted', (spec) => delete spec.securityContext.seccompProfile],
    ['capabilities_restricted', (spec) => (spec.containers[0].securityContext.capabilities.add = ['CHOWN'])],
  ];
  it.each(restrictedOnly)('restricted refuses %s, which baseline allows', (check, mutate) => {
    const pod = structuredClone(RESTRICTED_OK);
    mutate(pod.spec);
    expect(checks(pod, 'restricted')).toEqual([check]);
    expect(checks(pod, 'baseline')).toEqual([]);
  });

  it('allows NET_BIND_SERVICE under restricted and honours a container-level profile over the pod’s', () => {
    const pod = structuredClone(RESTRICTED_OK) as any;
    pod.spec.containers[0].securityContext.capabilities.add = ['NET_BIND_SERVICE'];
    delete pod.spec.securityContext.seccompProfile;
    pod.spec.containers[0].securityContext.seccompProfile = { type: 'Localhost' };
    expect(checks(pod, 'restricted')).toEqual([]);
  });

  it('has every baseline check in restricted', () => {
    expect(checksOf('restricted')).toEqual(expect.arrayContaining(checksOf('baseline')));
    expect(checksOf('baseline')).toHaveLength(11);
    expect(checksOf('restricted')).toHaveLength(17);
  });
});
