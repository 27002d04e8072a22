import { ArnFormat, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';
import { deploymentName } from './deployment-name';

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
    const name = deploymentName(this);
    const common = {
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
      pendingWindow: Duration.days(30),
    };
    this.data = new kms.Key(this, 'Data', {
      ...common,
      alias: `alias/${name}/data`,
      description: `${name}: Aurora, ElastiCache and S3 encryption at rest`,
    });
    this.secrets = new kms.Key(this, 'Secrets', {
      ...common,
      alias: `alias/${name}/secrets`,
      description: `${name}: Secrets Manager secrets`,
    });
    // This account's principals may use it through Secrets Manager (what CDK adds for a secret it
    // creates with a key of its own stack). Each reader still needs kms:Decrypt in its own policy
    // (secret-access.ts); the key policy names no role, as roles live in stacks deployed later.
    this.secrets.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.AccountPrincipal(stack.account)],
        actions: [
          'kms:CreateGrant',
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:Encrypt',
          'kms:GenerateDataKey*',
          'kms:ReEncrypt*',
        ],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
      }),
    );
    this.logs = new kms.Key(this, 'Logs', {
      ...common,
      alias: `alias/${name}/logs`,
      description: `${name}: CloudWatch log groups and alarm notifications`,
    });

    allowLogGroups(this.logs, [props.logGroupPrefix, ...(props.extraLogGroupPrefixes ?? [])]);
    allowAlarmNotifications(this.logs);
    output(this, OUTPUTS.dataKeyArn, this.data.keyArn);
    output(this, OUTPUTS.secretsKeyArn, this.secrets.keyArn);
    output(this, OUTPUTS.logsKeyArn, this.logs.keyArn);
  }

  /**
   * The secrets key, as every secret of the deployment is encrypted with it: a reference, so that
   * granting a role read on a secret never writes that role into the key policy. A key policy cannot
   * name roles of stacks deployed after it; each reader gets `kms:Decrypt` through Secrets Manager in
   * its own policy instead (secret-access.ts), which the key policy's account statement admits.
   */
  public secretsKeyFor(scope: Construct): kms.IKey {
    const stack = Stack.of(scope);
    const id = 'SecretsKeyReference';
    return (stack.node.tryFindChild(id) as kms.IKey | undefined) ?? kms.Key.fromKeyArn(stack, id, this.secrets.keyArn);
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

/**
 * Lets CloudWatch alarms and EventBridge rules of this account publish to an SNS topic encrypted with
 * `key`: SNS asks the publishing service for a data key, and only on behalf of this account.
 */
export function allowAlarmNotifications(key: kms.Key): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AlarmsAndRulesToEncryptedTopic',
      principals: [
        new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
        new iam.ServicePrincipal('events.amazonaws.com'),
      ],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }),
  );
}
