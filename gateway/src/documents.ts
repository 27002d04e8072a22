import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { z } from 'zod';
import { storedDocument } from '../../contracts/gateway-documents';

export interface DocumentSourceOptions<T> {
  readonly client: SecretsManagerClient;
  readonly secretId: string;
  /** What the document is, for log lines ("provider key pool"). */
  readonly name: string;
  readonly schema: z.ZodType<T>;
  /** The document a secret still holding CloudFormation's placeholder stands for (records.ts). */
  readonly empty: T;
  /** Builds what the gateway uses from a parsed document; throwing rejects the version. */
  readonly accept: (document: T) => void;
  readonly log: (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) => void;
}

/**
 * One JSON document kept in a Secrets Manager secret, re-read when its current version changes.
 * A new version is taken only if it parses and `accept` takes it; otherwise the previous one stays
 * and a log line says why (the schema path, never the value).
 */
export class DocumentSource<T> {
  private versionId: string | undefined;
  private loading: Promise<void> | undefined;
  private loadedOnce = false;

  constructor(private readonly options: DocumentSourceOptions<T>) {}

  get loaded(): boolean {
    return this.loadedOnce;
  }

  /** Checks the current version and loads it if it is new. Concurrent calls share one read. */
  refresh(): Promise<void> {
    this.loading ??= this.check().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async check(): Promise<void> {
    const { client, secretId, name, log } = this.options;
    try {
      const described = await client.send(new DescribeSecretCommand({ SecretId: secretId }));
      const current = Object.entries(described.VersionIdsToStages ?? {}).find(([, stages]) =>
        stages.includes('AWSCURRENT'),
      )?.[0];
      if (current !== undefined && current === this.versionId) return;
      const value = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
      if (value.VersionId === this.versionId) return;
      let parsed: T;
      try {
        parsed = this.options.schema.parse(storedDocument(JSON.parse(value.SecretString ?? ''), this.options.empty));
      } catch (error) {
        const issues = (error as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
        log('warn', 'document_rejected', {
          document: name,
          versionId: value.VersionId,
          problems: issues?.map((i) => `${i.path.join('.')}: ${i.message}`) ?? ['not JSON'],
        });
        this.versionId = value.VersionId;
        return;
      }
      try {
        this.options.accept(parsed);
      } catch (error) {
        log('warn', 'document_rejected', {
          document: name,
          versionId: value.VersionId,
          problems: [(error as Error).message],
        });
        this.versionId = value.VersionId;
        return;
      }
      this.versionId = value.VersionId;
      this.loadedOnce = true;
      log('info', 'document_loaded', { document: name, versionId: value.VersionId });
    } catch (error) {
      log('warn', 'document_unreadable', { document: name, error: (error as Error).name });
    }
  }
}
