import type { RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** Where a component's logs go: encrypted with the logs key, kept for the profile's retention. */
export interface LogSettings {
  /** Prefix of every log group name of the stack, e.g. `/dify/Dify/`; the logs key admits only it. */
  readonly prefix: string;
  readonly key: kms.IKey;
  readonly retention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A log group that is KMS-encrypted and has a retention, with a name under the stack's prefix (or an
 * exact name AWS dictates, such as RDS's). Every log group of the app is made here, so that no
 * component can forget either property.
 */
export function encryptedLogGroup(
  scope: Construct,
  id: string,
  settings: LogSettings,
  name: { readonly suffix: string } | { readonly exact: string },
): logs.LogGroup {
  return new logs.LogGroup(scope, id, {
    logGroupName: 'exact' in name ? name.exact : `${settings.prefix}${name.suffix}`,
    encryptionKey: settings.key,
    retention: settings.retention,
    removalPolicy: settings.removalPolicy,
  });
}
