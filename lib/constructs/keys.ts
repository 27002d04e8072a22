import { ArnFormat, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export interface KeysProps {
  /**
   * Prefix of every log group this stack creates, e.g. `/dify/Dify/`. The logs key admits the
   * CloudWatch Logs service only for log groups under it (and under `extraLogGroupPrefixes`).
   */
  readonly logGroupPrefix: string;
  /**
   * Further log-group name prefixes whose names AWS fixes (for example RDS's `/aws/rds/cluster/<id>/`).
   * @default - none: only `logGroupPrefix`
   */
  readonly extraLogGroupPrefixes?: string[];
  /** RETAIN in prod: a deleted key makes every snapshot and backup encrypted with it unreadable. */
  readonly removalPolicy: RemovalPolicy;
}

/**
 * Customer-managed KMS keys, one per purpose, each with yearly rotation:
 * - `data`: Aurora, ElastiCache and S3 at rest;
 * - `secrets`: every Secrets Manager secret;
 * - `logs`: every CloudWatch log group and the alarm topic.
 *
 * Separate keys let an operator revoke or audit one purpose without touching the others, and let the
 * key policies stay narrow: only the logs key trusts a service principal, and only for this stack's
 * log groups.
 */
export class Keys extends Construct {
  public readonly data: kms.Key;
  public readonly secrets: kms.Key;
  public readonly logs: kms.Key;

  constructor(scope: Construct, id: string, props: KeysProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const common = {
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
      pendingWindow: Duration.days(30),
    };
    this.data = new kms.Key(this, 'Data', {
      ...common,
      alias: `alias/${stack.stackName}/data`,
      description: `${stack.stackName}: Aurora, ElastiCache and S3 encryption at rest`,
    });
    this.secrets = new kms.Key(this, 'Secrets', {
      ...common,
      alias: `alias/${stack.stackName}/secrets`,
      description: `${stack.stackName}: Secrets Manager secrets`,
    });
    this.logs = new kms.Key(this, 'Logs', {
      ...common,
      alias: `alias/${stack.stackName}/logs`,
      description: `${stack.stackName}: CloudWatch log groups and alarm notifications`,
    });

    allowLogGroups(this.logs, [props.logGroupPrefix, ...(props.extraLogGroupPrefixes ?? [])]);
    // CloudWatch alarms publish to the KMS-encrypted alarm topic; SNS needs the alarm service to be
    // able to create data keys, and only on behalf of alarms in this account.
    this.logs.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsToEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
  }
}

/**
 * Lets the CloudWatch Logs service use a key only for log groups whose names start with one of the
 * prefixes: the encryption context names the log group, so no other log group of the account can be
 * encrypted with (and so read through) the key.
 */
export function allowLogGroups(key: kms.Key, prefixes: readonly string[]): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsForThisStackOnly',
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': prefixes.map((prefix) =>
            stack.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: `${prefix}*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ),
        },
      },
    }),
  );
}
