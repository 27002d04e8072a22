import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type Agent, createDispatcher } from '../../src/http-client';
import { parseAllowedNetworks } from '../../src/provider-address';
import { Screener } from '../../src/screening';
import { loopbackCertificate } from './tls';
import { generateClientKey, hashClientKey } from '../../../contracts/client-keys';
import { ClientRegistry } from '../../src/clients';
import { Guardrails } from '../../src/guardrails';
import { reportKeyState, Telemetry } from '../../src/log';
import { KeyPool, type Strategy } from '../../src/pool';
import { createRateLimiter, type RateLimiter } from '../../src/ratelimit';
import {
  type ClientRecord,
  clientSchema,
  type CustomDetector,
  type ProviderPool,
  providerPoolSchema,
} from '../../../contracts/gateway-documents';
import { Gateway } from '../../src/server';

export const PEPPER = 'test-pepper-0123456789abcdefghijklmnopqrstuvwxyz';

/** Deterministic "random" bytes, so keys are reproducible across runs. */
export const fixedBytes = (seed: number) => (size: number) => Buffer.alloc(size, seed);

export interface HarnessOptions {
  readonly pool: ProviderPool | unknown;
  readonly clients?: Array<Partial<ClientRecord> & { id: string }>;
  readonly customDetectors?: CustomDetector[];
  readonly now?: () => number;
  readonly maxAttempts?: number;
  readonly upstreamTimeoutMs?: number;
  readonly maxBodyBytes?: number;
  readonly strategy?: Strategy;
  readonly limiter?: RateLimiter;
  readonly ready?: () => boolean;
  readonly guardrails?: Guardrails;
  readonly onKeyRejected?: () => void;
  /** Records each backoff instead of sleeping. */
  readonly sleeps?: number[];
  readonly random?: () => number;
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** The built bundle (helpers/built.ts), for tests of the screening worker; else every body is screened inline. */
  readonly workerScript?: string;
  readonly screenBudgetMs?: number;
  readonly screenInlineBytes?: number;
  readonly screenQueue?: number;
  /** PROVIDER_ALLOWED_PRIVATE_CIDRS. @default the fake providers' 127.0.0.1 */
  readonly allowedPrivateCidrs?: string;
}

export interface Harness {
  readonly url: string;
  readonly gateway: Gateway;
  readonly pool: KeyPool;
  readonly lines: string[];
  readonly dispatcher: Agent;
  readonly limiter: RateLimiter;
  /** Client keys by client id (the only place a test holds them). */
  readonly keys: Record<string, string>;
  audits(type: 'request' | 'attempt'): Array<Record<string, any>>;
  close(): Promise<void>;
}

/**
 * A gateway in this process on a free loopback port, with its documents given directly instead of
 * read from Secrets Manager (the process tests cover that path), and every log line captured.
 */
export async function startGateway(options: HarnessOptions): Promise<Harness> {
  const lines: string[] = [];
  const now = options.now ?? Date.now;
  const telemetry = new Telemetry((line) => lines.push(line), now);
  const pool = new KeyPool({
    strategy: options.strategy ?? 'weighted-round-robin',
    now,
    onStateChange: (change) => reportKeyState(telemetry, change),
  });
  pool.load(providerPoolSchema.parse(options.pool));
  const keys: Record<string, string> = {};
  const records = (options.clients ?? [{ id: 'dify' }]).map((client, index) => {
    const key = generateClientKey(client.id, fixedBytes(index + 1));
    keys[client.id] = key;
    return clientSchema.parse({
      allowedCidrs: ['127.0.0.0/8', '::1/128'],
      allowedModels: ['*'],
      requestsPerMinute: 100_000,
      tokensPerMinute: 100_000_000,
      ...client,
      keyHash: hashClientKey(PEPPER, key),
    });
  });
  const registry = new ClientRegistry(
    { version: 1, clients: records, customDetectors: [] },
    { current: { versionId: 'pepper-1', value: PEPPER } },
  );
  const guardrails = options.guardrails ?? new Guardrails(options.customDetectors ?? []);
  const limiter = options.limiter ?? createRateLimiter({ now });
  const dispatcher = createDispatcher({
    policy: parseAllowedNetworks(options.allowedPrivateCidrs ?? '127.0.0.1/32'),
    ca: loopbackCertificate().cert,
  });
  const screener = new Screener({
    workerScript: options.workerScript,
    inlineBytes: options.screenInlineBytes ?? 64 * 1024,
    budgetMs: options.screenBudgetMs ?? 5000,
    workers: 1,
    maxQueue: options.screenQueue ?? 32,
    log: (level, event, fields) => telemetry.log(level, event, fields),
  });
  const gateway = new Gateway({
    pool,
    screener,
    clients: () => registry,
    guardrails: () => guardrails,
    limiter,
    telemetry,
    ready: options.ready ?? (() => true),
    onKeyRejected: options.onKeyRejected ?? (() => undefined),
    now,
    random: options.random ?? (() => 0.5),
    newId: randomUUID,
    sleep: (ms) => {
      options.sleeps?.push(ms);
      return Promise.resolve();
    },
    dispatcher,
    maxAttempts: options.maxAttempts ?? 3,
    upstreamTimeoutMs: options.upstreamTimeoutMs ?? 5000,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    headersTimeoutMs: options.headersTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
  });
  await new Promise<void>((resolve) => gateway.server.listen(0, '127.0.0.1', resolve));
  const { port } = gateway.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    gateway,
    pool,
    lines,
    dispatcher,
    limiter,
    keys,
    audits: (type) => lines.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.type === type),
    close: async () => {
      gateway.server.closeAllConnections();
      await new Promise<void>((resolve) => gateway.server.close(() => resolve()));
      await dispatcher.close();
      await limiter.close();
      await screener.close();
    },
  };
}

/** A pool document with one provider and the given keys. */
export function poolOf(
  baseUrl: string,
  keys: Array<{ id: string; key: string; weight?: number; enabled?: boolean }>,
  provider: 'openai' | 'anthropic' | 'custom' | 'azure-openai' = 'openai',
  models = ['gpt-test', 'text-embedding-test'],
  extra: Record<string, unknown> = {},
): ProviderPool {
  return providerPoolSchema.parse({ version: 1, providers: { [provider]: { baseUrl, models, keys, ...extra } } });
}

export const newId = randomUUID;
