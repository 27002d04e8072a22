import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { Peppers, PepperVersion } from '../../contracts/client-keys';

export interface PepperSourceOptions {
  readonly client: SecretsManagerClient;
  readonly secretId: string;
  /** Takes the pepper versions the gateway checks keys under from now on. */
  readonly accept: (peppers: Peppers) => void;
  readonly log: (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) => void;
}

/** The shortest pepper the gateway uses: 32 characters (the stack generates 64). */
export const MIN_PEPPER_LENGTH = 32;

/**
 * The pepper secret's current and previous versions, re-read when either changes. The gateway reads
 * them itself rather than through ECS secret injection, so a rotation needs no restart: keys made
 * under the previous pepper keep working, and are rehashed at their next use (clients.ts, rehash.ts).
 * A read that fails keeps the versions held before; a log line names the error type, never a value.
 */
export class PepperSource {
  private held: { current: string; previous?: string } | undefined;
  private loading: Promise<void> | undefined;

  constructor(private readonly options: PepperSourceOptions) {}

  get loaded(): boolean {
    return this.held !== undefined;
  }

  /** Checks the secret's stages and loads what changed. Concurrent calls share one read. */
  refresh(): Promise<void> {
    this.loading ??= this.check().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async check(): Promise<void> {
    const { client, secretId, log } = this.options;
    try {
      const described = await client.send(new DescribeSecretCommand({ SecretId: secretId }));
      const stages = Object.entries(described.VersionIdsToStages ?? {});
      const current = stages.find(([, s]) => s.includes('AWSCURRENT'))?.[0];
      const previous = stages.find(([, s]) => s.includes('AWSPREVIOUS'))?.[0];
      if (current === undefined) {
        log('warn', 'pepper_unreadable', { error: 'NoCurrentVersion' });
        return;
      }
      if (this.held?.current === current && this.held.previous === previous) return;
      const read = async (versionId: string): Promise<PepperVersion | undefined> => {
        const value = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: versionId }));
        if ((value.SecretString ?? '').length >= MIN_PEPPER_LENGTH) {
          return { versionId, value: value.SecretString! };
        }
        log('warn', 'pepper_rejected', { versionId, problem: `shorter than ${MIN_PEPPER_LENGTH} characters` });
        return undefined;
      };
      const currentPepper = await read(current);
      if (currentPepper === undefined) return;
      // An unusable previous version only ends the grace of keys not yet rehashed; the current one is enough to serve.
      const previousPepper = previous === undefined ? undefined : await read(previous);
      this.options.accept({ current: currentPepper, ...(previousPepper ? { previous: previousPepper } : {}) });
      this.held = { current, ...(previous !== undefined ? { previous } : {}) };
      log('info', 'pepper_loaded', {
        versionId: current,
        ...(previousPepper ? { previousVersionId: previousPepper.versionId } : {}),
      });
    } catch (error) {
      log('warn', 'pepper_unreadable', { error: (error as Error).name });
    }
  }
}
