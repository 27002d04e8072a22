import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';

/**
 * Lets `grantee` decrypt `secrets` through Secrets Manager, and only through it: `kms:Decrypt` on
 * their keys, conditioned on `kms:ViaService`. Every secret's key is a reference (Keys.secretsKeyFor),
 * so CDK's own grants never add the reader to the key policy; this statement in the reader's policy
 * takes its place.
 */
export function allowSecretsDecrypt(grantee: iam.IGrantable, secrets: readonly secretsmanager.ISecret[]): void {
  const keys = [...new Set(secrets.flatMap((secret) => (secret.encryptionKey ? [secret.encryptionKey.keyArn] : [])))];
  if (keys.length === 0) return;
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: keys,
      conditions: {
        StringEquals: {
          'kms:ViaService': `secretsmanager.${Stack.of(grantee.grantPrincipal as iam.Role).region}.amazonaws.com`,
        },
      },
    }),
  );
}

/** Read access to a secret: its value, and its key through Secrets Manager. */
export function grantSecretRead(secret: secretsmanager.ISecret, grantee: iam.IGrantable): void {
  secret.grantRead(grantee);
  allowSecretsDecrypt(grantee, [secret]);
}

/**
 * Write access to a secret: new versions only (`PutSecretValue`, not its settings, policy or
 * deletion), and a data key from its key through Secrets Manager to encrypt them.
 */
export function grantSecretWrite(secret: secretsmanager.ISecret, grantee: iam.IGrantable): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['secretsmanager:PutSecretValue'], resources: [secret.secretArn] }),
  );
  if (secret.encryptionKey === undefined) return;
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey'],
      resources: [secret.encryptionKey.keyArn],
      conditions: {
        StringEquals: {
          'kms:ViaService': `secretsmanager.${Stack.of(grantee.grantPrincipal as iam.Role).region}.amazonaws.com`,
        },
      },
    }),
  );
}
