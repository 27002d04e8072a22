import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createDispatcher } from './http-client';
import { ClientRegistry, clientOf } from './clients';
import { loadConfig } from './config';
import { DocumentSource } from './documents';
import { PepperSource } from './peppers';
import { RehashWriter } from './rehash';
import type { Peppers } from '../../contracts/client-keys';
import { Guardrails, prepareNormalizer } from './guardrails';
import { bufferedStdout, reportKeyState, reportRateLimitDegraded, Telemetry } from './log';
import { KeyPool } from './pool';
import { createRateLimiter } from './ratelimit';
import {
  clientsDocumentSchema,
  type ClientsDocument,
  EMPTY_CLIENTS_DOCUMENT,
  EMPTY_PROVIDER_POOL,
  EMPTY_REHASH_DOCUMENT,
  providerPoolSchema,
  type RehashDocument,
  rehashDocumentSchema,
} from '../../contracts/gateway-documents';
import { Gateway } from './server';
import { probeDisabledKeys } from './probe';
import { checkBaseUrlHost, parseAllowedNetworks } from './provider-address';
import { Screener } from './screening';

/** What a test may replace; the container uses the defaults. */
export interface MainOptions {
  readonly now?: () => number;
  readonly random?: () => number;
  /** How often disabled keys are probed to see whether the provider accepts them again. @default 5 min */
  readonly probeIntervalMs?: number;
  /** How often the aggregated metrics are written. @default 10 s */
  readonly metricIntervalMs?: number;
  /** Extra CA certificates for provider connections (tests: a throwaway CA). */
  readonly providerCa?: string;
  /** The script screening workers run. @default screen-worker.js beside this bundle */
  readonly workerScript?: string;
}

/** Starts the gateway from the environment, the way the container runs it. */
export async function main(
  env: NodeJS.ProcessEnv = process.env,
  options: MainOptions = {},
): Promise<{ gateway: Gateway; stop: (signal?: string) => Promise<void> }> {
  const now = options.now ?? Date.now;
  const config = loadConfig(env);
  const addressPolicy = parseAllowedNetworks(
    config.PROVIDER_ALLOWED_PRIVATE_CIDRS,
    config.PROVIDER_PUBLIC_ADDRESSES === 'refuse',
  );
  prepareNormalizer();
  const output = bufferedStdout();
  const telemetry = new Telemetry(output.write, now, options.metricIntervalMs ?? 10_000);
  // Endpoint from the SDK's own AWS_ENDPOINT_URL_SECRETS_MANAGER when set (tests: moto_server).
  // Bounded, so a hung call cannot stall the reload loop: every refresh shares one in-flight read.
  const secrets = new SecretsManagerClient({
    region: config.AWS_REGION,
    requestHandler: { connectionTimeout: 5000, requestTimeout: 10_000 },
  });
  const pool = new KeyPool({
    strategy: config.POOL_STRATEGY,
    now,
    onStateChange: (change) => reportKeyState(telemetry, change),
  });
  let registry: ClientRegistry | undefined;
  let guardrails = new Guardrails([]);
  const log = (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) =>
    telemetry.log(level, event, fields);
  const poolSource = new DocumentSource({
    client: secrets,
    secretId: config.PROVIDER_KEYS_SECRET_ID,
    name: 'provider key pool',
    schema: providerPoolSchema,
    empty: EMPTY_PROVIDER_POOL,
    accept: (document) => {
      // A base URL that is an IP literal is checked now, naming the provider; a name when it resolves.
      for (const [name, provider] of Object.entries(document.providers)) {
        try {
          checkBaseUrlHost(provider!.baseUrl, addressPolicy);
        } catch (error) {
          throw new Error(`providers.${name}.baseUrl: ${(error as Error).message}`, { cause: error });
        }
      }
      pool.load(document);
    },
    log,
  });
  // The registry is built from three sources: the client records, the pepper versions and the
  // rehashes; a new version of any of them builds it again.
  let clientsDocument: ClientsDocument | undefined;
  let peppers: Peppers | undefined;
  let rehashes: RehashDocument = EMPTY_REHASH_DOCUMENT;
  const rehashWriter = new RehashWriter({
    client: secrets,
    secretId: config.REHASH_SECRET_ID,
    peppers: () => peppers,
    delayMs: 1000,
    log,
  });
  const buildRegistry = () => {
    if (clientsDocument === undefined || peppers === undefined) return;
    registry = new ClientRegistry(clientsDocument, peppers, rehashes, (clientId, rehash) =>
      rehashWriter.add(clientId, rehash),
    );
  };
  const pepperSource = new PepperSource({
    client: secrets,
    secretId: config.PEPPER_SECRET_ID,
    accept: (next) => {
      peppers = next;
      buildRegistry();
    },
    log,
  });
  const clientSource = new DocumentSource<ClientsDocument>({
    client: secrets,
    secretId: config.CLIENTS_SECRET_ID,
    name: 'client records',
    schema: clientsDocumentSchema,
    empty: EMPTY_CLIENTS_DOCUMENT,
    accept: (document) => {
      const nextGuardrails = new Guardrails(document.customDetectors);
      for (const record of document.clients) clientOf(record); // throws on a CIDR that does not parse
      guardrails = nextGuardrails;
      clientsDocument = document;
      buildRegistry();
      // A record made under a pepper this replica does not hold yet (the CLI read a newer one): look now.
      const held = (v: string) => v === peppers?.current.versionId || v === peppers?.previous?.versionId;
      if (document.clients.some((r) => r.pepperVersionId !== undefined && !held(r.pepperVersionId))) {
        void pepperSource.refresh();
      }
    },
    log,
  });
  const rehashSource = new DocumentSource<RehashDocument>({
    client: secrets,
    secretId: config.REHASH_SECRET_ID,
    name: 'client key rehashes',
    schema: rehashDocumentSchema,
    empty: EMPTY_REHASH_DOCUMENT,
    accept: (document) => {
      rehashes = document;
      rehashWriter.documentLoaded(document);
      buildRegistry();
    },
    log,
  });
  const limiter = createRateLimiter({
    redis:
      config.REDIS_HOST === undefined
        ? undefined
        : {
            host: config.REDIS_HOST,
            port: config.REDIS_PORT,
            tls: config.REDIS_TLS === 'true',
            username: config.REDIS_USERNAME,
            password: config.REDIS_PASSWORD,
          },
    onDegradedChange: (degraded: boolean) => {
      telemetry.log(degraded ? 'warn' : 'info', degraded ? 'rate_limit_local_fallback' : 'rate_limit_shared_again', {});
      reportRateLimitDegraded(telemetry, degraded);
      telemetry.flushMetrics();
    },
  });
  const dispatcher = createDispatcher({ policy: addressPolicy, ca: options.providerCa });
  const screener = new Screener({
    workerScript: options.workerScript ?? join(__dirname, 'screen-worker.js'),
    inlineBytes: config.SCREEN_INLINE_BYTES,
    budgetMs: config.SCREEN_BUDGET_MS,
    workers: config.SCREEN_WORKERS,
    maxQueue: config.SCREEN_QUEUE,
    log: (level, event, fields) => telemetry.log(level, event, fields),
  });
  const gateway = new Gateway({
    screener,
    pool,
    clients: () => registry,
    guardrails: () => guardrails,
    limiter,
    telemetry,
    ready: () => poolSource.loaded && clientSource.loaded && pepperSource.loaded && rehashSource.loaded,
    onKeyRejected: () => void poolSource.refresh(),
    now,
    random: options.random ?? Math.random,
    newId: randomUUID,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    dispatcher,
    maxAttempts: config.MAX_ATTEMPTS,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    maxBodyBytes: config.MAX_BODY_BYTES,
    headersTimeoutMs: config.HEADERS_TIMEOUT_MS,
    bodyTimeoutMs: config.BODY_TIMEOUT_MS,
    idleTimeoutMs: config.IDLE_TIMEOUT_MS,
  });

  await pepperSource.refresh();
  await Promise.all([poolSource.refresh(), clientSource.refresh(), rehashSource.refresh()]);
  const poll = setInterval(() => {
    void poolSource.refresh();
    void pepperSource.refresh();
    void clientSource.refresh();
    void rehashSource.refresh();
    void rehashWriter.flush();
  }, config.SECRETS_POLL_INTERVAL_SECONDS * 1000);
  const probe = setInterval(
    () => void probeDisabledKeys(pool, { dispatcher, timeoutMs: 10_000 }),
    options.probeIntervalMs ?? 5 * 60_000,
  );
  // A gauge as well as the change events: an alarm on RateLimitDegraded >= 1 sees every minute of it.
  const gauge = setInterval(() => reportRateLimitDegraded(telemetry, limiter.degraded), 60_000);
  gauge.unref();
  poll.unref();
  probe.unref();

  await new Promise<void>((resolve) => gateway.server.listen(config.PORT, '0.0.0.0', resolve));
  telemetry.log('info', 'listening', {
    port: config.PORT,
    providers: Object.keys(pool.snapshot()),
    clients: registry?.size ?? 0,
  });

  const stop = async (signal = 'stop') => {
    telemetry.log('info', 'shutdown', { signal, inFlight: gateway.activeRequests });
    clearInterval(poll);
    clearInterval(probe);
    clearInterval(gauge);
    rehashWriter.stop();
    gateway.startDraining();
    const deadline = Date.now() + config.SHUTDOWN_DRAIN_SECONDS * 1000;
    while (gateway.activeRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (gateway.activeRequests > 0) telemetry.log('warn', 'drain_timeout', { unfinished: gateway.activeRequests });
    gateway.server.closeAllConnections();
    // A rehash not yet written would otherwise wait for this client's next request at another replica.
    await rehashWriter.flush();
    await screener.close();
    await limiter.close();
    await dispatcher.close();
    secrets.destroy();
    telemetry.flushMetrics();
    telemetry.log('info', 'stopped', {});
    output.flush();
  };
  return { gateway, stop };
}

/** Runs as the container's process: SIGTERM/SIGINT drain and exit 0; a bug never ends the process. */
function run(): void {
  main().then(
    ({ stop }) => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        stop(signal).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
    },
    (error: Error) => {
      // Configuration errors name the variable and the expected form; no value is printed.
      process.stderr.write(`${JSON.stringify({ level: 'error', event: 'start_failed', message: error.message })}\n`);
      process.exit(1);
    },
  );
  // A defect outside a request's handler (a timer, an event): log its kind and where, never its
  // message (it may quote data), and keep serving the requests in flight.
  const report = (event: string) => (error: unknown) => {
    const frames =
      error instanceof Error
        ? (error.stack ?? '')
            .split('\n')
            .slice(1, 6)
            .map((f) => f.trim())
        : [];
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), level: 'error', event, error: error instanceof Error ? error.name : typeof error, frames })}\n`,
    );
  };
  process.on('uncaughtException', report('uncaught_exception'));
  process.on('unhandledRejection', report('unhandled_rejection'));
}

if (require.main === module) run();
