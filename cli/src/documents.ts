import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { z } from 'zod';
import { storedDocument } from '../../contracts/gateway-documents';
import { awsError, CliError } from './errors';
import { currentVersionOf } from '../../contracts/rotation';

/**
 * One of the gateway's JSON documents in Secrets Manager, read and written as whole versions. A write
 * checks that nobody wrote a version in between, so two operators cannot silently undo each other.
 */
export class SecretDocument<T> {
  private versionId: string | undefined;

  constructor(
    private readonly client: SecretsManagerClient,
    private readonly secretId: string,
    private readonly name: string,
    private readonly schema: z.ZodType<T>,
    /** The document a secret still holding CloudFormation's placeholder stands for. */
    private readonly empty: T,
  ) {}

  async read(): Promise<T> {
    let value;
    try {
      value = await this.client.send(
        new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: 'AWSCURRENT' }),
      );
    } catch (error) {
      throw awsError(`reading the ${this.name}`, error);
    }
    this.versionId = value.VersionId;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value.SecretString ?? '');
    } catch {
      throw new CliError(`the ${this.name} secret is not JSON; expected the document described in the README`);
    }
    const result = this.schema.safeParse(storedDocument(parsed, this.empty));
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new CliError(
        `the ${this.name} secret has an unexpected shape at '${issue.path.join('.')}': ${issue.message}`,
      );
    }
    return result.data;
  }

  async write(document: T): Promise<string> {
    const parsed = this.schema.parse(document);
    try {
      const described = await this.client.send(new DescribeSecretCommand({ SecretId: this.secretId }));
      const current = currentVersionOf(described.VersionIdsToStages ?? {});
      if (this.versionId !== undefined && current !== this.versionId) {
        throw new CliError(`the ${this.name} changed while this command ran; run it again`);
      }
      const put = await this.client.send(
        new PutSecretValueCommand({ SecretId: this.secretId, SecretString: JSON.stringify(parsed) }),
      );
      this.versionId = put.VersionId;
      return put.VersionId ?? '';
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw awsError(`writing the ${this.name}`, error);
    }
  }
}
