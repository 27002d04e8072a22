import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { Peppers } from '../../contracts/client-keys';
import {
  EMPTY_REHASH_DOCUMENT,
  type Rehash,
  type RehashDocument,
  rehashDocumentSchema,
  storedDocument,
} from '../../contracts/gateway-documents';

export interface RehashWriterOptions {
  readonly client: SecretsManagerClient;
  readonly secretId: string;
  /** The pepper versions held now: entries under any other version are dropped when writing. */
  readonly peppers: () => Peppers | undefined;
  /** How long after the first new rehash a write starts, so that a burst of first uses is one write. */
  readonly delayMs: number;
  readonly log: (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) => void;
}

/**
 * Stores the rehashes the registry reports (clients.ts) in the rehash secret, off the request path:
 * a short delay gathers them, then one read-merge-write keeps the entries other replicas wrote. Two
 * replicas writing at once can lose one's entries; the loaded document then lacks them, the key's
 * next use reports them again, and they are written again (`documentLoaded` forgets what was sent).
 * A failed write is retried at the next `flush` (the gateway's poll), at most one entry per client.
 */
export class RehashWriter {
  private readonly pending = new Map<string, Rehash>();
  /** What this replica wrote since the rehash document it reads last changed: client id -> hash. */
  private readonly sent = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: RehashWriterOptions) {}

  add(clientId: string, rehash: Rehash): void {
    if (this.sent.get(clientId) === rehash.to || this.pending.get(clientId)?.to === rehash.to) return;
    this.pending.set(clientId, rehash);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.delayMs);
    this.timer.unref();
  }

  /** A new rehash document was loaded: anything it lacks is reported, and written, again. */
  documentLoaded(document: RehashDocument): void {
    for (const [clientId, to] of this.sent) {
      if (document.clients[clientId]?.to !== to) this.sent.delete(clientId);
    }
  }

  get waiting(): number {
    return this.pending.size;
  }

  /** Writes what is pending; calls run one after another. */
  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const { client, secretId, log } = this.options;
    const batch = new Map(this.pending);
    this.pending.clear();
    try {
      const stored = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
      let document: RehashDocument;
      try {
        document = rehashDocumentSchema.parse(
          storedDocument(JSON.parse(stored.SecretString ?? ''), EMPTY_REHASH_DOCUMENT),
        );
      } catch {
        // Only gateways write it: an unreadable version is replaced, and its clients rehash again at next use.
        log('warn', 'rehash_document_replaced', { versionId: stored.VersionId, problem: 'not a rehash document' });
        document = EMPTY_REHASH_DOCUMENT;
      }
      const peppers = this.options.peppers();
      const held = (versionId: string) =>
        versionId === peppers?.current.versionId || versionId === peppers?.previous?.versionId;
      const clients: RehashDocument['clients'] = {};
      for (const [clientId, rehash] of Object.entries(document.clients)) {
        if (held(rehash.pepperVersionId)) clients[clientId] = rehash;
      }
      for (const [clientId, rehash] of batch) clients[clientId] = rehash;
      await client.send(
        new PutSecretValueCommand({ SecretId: secretId, SecretString: JSON.stringify({ version: 1, clients }) }),
      );
      for (const [clientId, rehash] of batch) {
        this.sent.set(clientId, rehash.to);
        log('info', 'client_key_rehashed', { client: clientId, pepperVersionId: rehash.pepperVersionId });
      }
    } catch (error) {
      for (const [clientId, rehash] of batch) if (!this.pending.has(clientId)) this.pending.set(clientId, rehash);
      log('warn', 'rehash_write_failed', { error: (error as Error).name, clients: batch.size });
    }
  }
}
