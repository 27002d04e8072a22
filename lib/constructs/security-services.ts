import { Aws, Stack } from 'aws-cdk-lib';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import * as guardduty from 'aws-cdk-lib/aws-guardduty';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as securityhub from 'aws-cdk-lib/aws-securityhub';
import { Construct } from 'constructs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { deploymentName } from './deployment-name';
import { encryptedLogGroup, type LogSettings } from './log-group';

export interface SecurityServicesProps {
  /**
   * Record every object read and write of these buckets (CloudTrail data events), into `trailBucket`
   * and an encrypted log group.
   */
  readonly dataEvents?: { readonly buckets: readonly s3.IBucket[]; readonly trailBucket: s3.IBucket };
  /** GuardDuty with runtime monitoring (ECS Fargate and EKS agents managed by GuardDuty) and EKS audit logs. */
  readonly guardDuty: boolean;
  /** Security Hub with AWS Foundational Security Best Practices. */
  readonly securityHub: boolean;
  /** Encrypts the trail's files and its log group (the logs key). */
  readonly key: kms.Key;
  readonly logs: LogSettings;
}

/** The standard `securityHub` enables. */
export const FOUNDATIONAL_STANDARD = 'standards/aws-foundational-security-best-practices/v/1.0.0';

/**
 * The account-level services an incident response leans on, each behind its own context key: who
 * read or wrote which object of the storage bucket, GuardDuty's runtime and Kubernetes findings, and
 * Security Hub's foundational checks. GuardDuty and Security Hub exist once per account and region,
 * so they are off unless asked for: where an organization already runs them, creating them fails.
 */
export class SecurityServices extends Construct {
  public readonly trail?: cloudtrail.Trail;

  constructor(scope: Construct, id: string, props: SecurityServicesProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (props.dataEvents !== undefined) {
      const name = `${deploymentName(this)}-data-events`;
      // CloudTrail encrypts the trail's files with the key, for this account's trail only.
      props.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudTrailDataEventsTrail',
          principals: [new iam.ServicePrincipal('cloudtrail.amazonaws.com')],
          actions: ['kms:GenerateDataKey*', 'kms:DescribeKey'],
          resources: ['*'],
          conditions: {
            StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
            StringLike: {
              'kms:EncryptionContext:aws:cloudtrail:arn': `arn:${Aws.PARTITION}:cloudtrail:*:${Aws.ACCOUNT_ID}:trail/*`,
            },
          },
        }),
      );
      this.trail = new cloudtrail.Trail(this, 'DataEvents', {
        trailName: name,
        bucket: props.dataEvents.trailBucket,
        s3KeyPrefix: 'cloudtrail',
        encryptionKey: props.key,
        enableFileValidation: true,
        includeGlobalServiceEvents: false,
        isMultiRegionTrail: false,
        managementEvents: cloudtrail.ReadWriteType.NONE,
        sendToCloudWatchLogs: true,
        cloudWatchLogGroup: encryptedLogGroup(this, 'DataEventsLogs', props.logs, { suffix: 'cloudtrail-data-events' }),
      });
      this.trail.addS3EventSelector(
        props.dataEvents.buckets.map((bucket) => ({ bucket })),
        { readWriteType: cloudtrail.ReadWriteType.ALL, includeManagementEvents: false },
      );
      const delivery = this.trail.node.findChild('LogsRole').node.findChild('DefaultPolicy').node.defaultChild!;
      acknowledge(
        delivery,
        ...nistAndHipaa(
          'IAMNoInlinePolicy',
          "The trail's log delivery role, which only CloudTrail can assume: its inline policy writes to the one encrypted data-events log group and cannot be attached to anything else.",
        ),
      );
    }
    if (props.guardDuty) {
      const enabled = (name: string, additional: string[] = []) => ({
        name,
        status: 'ENABLED',
        additionalConfiguration:
          additional.length > 0 ? additional.map((extra) => ({ name: extra, status: 'ENABLED' })) : undefined,
      });
      new guardduty.CfnDetector(this, 'GuardDuty', {
        enable: true,
        findingPublishingFrequency: 'FIFTEEN_MINUTES',
        features: [
          enabled('RUNTIME_MONITORING', ['ECS_FARGATE_AGENT_MANAGEMENT', 'EKS_ADDON_MANAGEMENT']),
          enabled('EKS_AUDIT_LOGS'),
          enabled('S3_DATA_EVENTS'),
        ],
      });
    }
    if (props.securityHub) {
      const hub = new securityhub.CfnHub(this, 'SecurityHub', { enableDefaultStandards: false });
      const standard = new securityhub.CfnStandard(this, 'Foundational', {
        standardsArn: `arn:${Aws.PARTITION}:securityhub:${stack.region}::${FOUNDATIONAL_STANDARD}`,
      });
      standard.addResourceDependency(hub);
    }
  }
}
