import { type Config, uncheckedVersions } from './schema';
import type { SynthWarningId } from './warning-catalog';

/** A risky but allowed setting, shown at synth as a warning with an id the user can look up. */
export interface ConfigWarning {
  readonly id: SynthWarningId;
  readonly message: string;
}

/** The warnings a configuration deserves. Each says what is risky and what to set instead. */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (config.allowedIpv4Cidrs.includes('0.0.0.0/0')) {
    warnings.push({
      id: 'dify:openIpv4',
      message:
        'allowedIpv4Cidrs contains 0.0.0.0/0: every IPv4 address on the internet may reach Dify. List your networks instead.',
    });
  }
  if (config.allowedIpv6Cidrs.includes('::/0')) {
    warnings.push({
      id: 'dify:openIpv6',
      message:
        'allowedIpv6Cidrs contains ::/0: every IPv6 address on the internet may reach Dify. List your networks instead.',
    });
  }
  if (config.allowedIpv4Cidrs.length === 0 && config.allowedIpv6Cidrs.length === 0) {
    warnings.push({
      id: 'dify:nobodyAllowed',
      message:
        'allowedIpv4Cidrs and allowedIpv6Cidrs are empty, so nobody can reach Dify. Set -c allowedIpv4Cidrs=203.0.113.0/24 (comma-separate several).',
    });
  }
  if (config.alarmEmail === undefined) {
    warnings.push({
      id: 'dify:noAlarmEmail',
      message:
        'alarmEmail is not set: alarms publish to the alarm topic and nobody is notified. Set -c alarmEmail=ops@example.com.',
    });
  }
  if (config.enableExec) {
    warnings.push({
      id: 'dify:execEnabled',
      message:
        'enableExec=true: operators with ecs:ExecuteCommand can open a shell in Dify containers, and root filesystems are writable while it is on. Turn it off after the incident.',
    });
  }
  const unchecked = uncheckedVersions(config);
  if (config.difyVersionUnchecked && unchecked.length > 0) {
    warnings.push({
      id: 'dify:difyVersionUnchecked',
      message: `${unchecked.map(([key, given, described]) => `${key} ${given} (the contract describes ${described})`).join(', ')}: difyVersionUnchecked=true deploys a release that contracts/dify/services.json does not describe. Not checked: the environment variables each container reads (names, required ones, secrets), the ports, the health checks, the secrets that must match across services, and whether the plugin daemon and sandbox releases go with this Dify release. Write the release's contract (npm run contract:refresh -- <services.json>) to have them checked.`,
    });
  }
  if (config.profile === 'dev') {
    warnings.push({
      id: 'dify:devProfile',
      message:
        'profile dev: no deletion protection, a single NAT gateway and cache node, and `cdk destroy` deletes the data. Use -c profile=prod for anything you keep.',
    });
  }
  return warnings;
}
