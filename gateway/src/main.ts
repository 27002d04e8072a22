import { randomUUID } from 'node:crypto';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Agent, request } from 'undici';
import { ClientRegistry } from './clients';
import { loadConfig } from './config';
import { DocumentSource } from './documents';
import { Guardrails } from './guardrails';
import { bufferedStdout, Telemetry } from './log';
import { KeyPool } from './pool';
import { createRateLimiter } from './ratelimit';
import { clientsDocumentSchema, type ClientsDocument, providerPoolSchema } from './records';
import { Gateway } from './server';
import { probeRequest } from './upstream';

/** How often disabled keys are probed to see whether the provider accepts them again. */
const PROBE_INTERVAL_MS = 5 * 60_000;

/** Starts the gateway from the environment, the way the container runs it. */
export async function main(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ gateway: Gateway; stop: () => Promise<void> }> {
  const output = bufferedStdout();
  const telemetry = new Telemetry(output.write, Date.now, 10_000);
  const config = loadConfig(env);
  const secrets = new SecretsManagerClient({ region: config.AWS_REGION });
  const pool = new KeyPool({
    strategy: config.POOL_STRATEGY,
    now: Date.now,
    onStateChange: (change) => {
      telemetry.log(change.health === 'healthy' ? 'info' : 'warn', 'key_state_changed', change);
      telemetry.metric(
        {
          KeyStateChanges: { value: 1, unit: 'Count' },
          ...(change.health === 'cooling' ? { Cooldowns: { value: 1, unit: 'Count' } } : {}),
        },
        { Provider: change.provider, State: change.health },
      );
    },
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
    accept: (document) => pool.load(document),
    log,
  });
  const clientSource = new DocumentSource<ClientsDocument>({
    client: secrets,
    secretId: config.CLIENTS_SECRET_ID,
    name: 'client records',
    schema: clientsDocumentSchema,
    accept: (document) => {
      const nextGuardrails = new Guardrails(document.customDetectors);
      const nextRegistry = new ClientRegistry(document, config.CLIENT_KEY_PEPPER);
      guardrails = nextGuardrails;
      registry = nextRegistry;
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
            password: config.REDIS_PASSWORD,
          },
    onDegradedChange: (degraded) => {
      telemetry.log(degraded ? 'warn' : 'info', degraded ? 'rate_limit_local_fallback' : 'rate_limit_shared_again', {});
      telemetry.metric({ RateLimitDegraded: { value: degraded ? 1 : 0, unit: 'Count' } });
    },
  });
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 });
  const gateway = new Gateway({
    pool,
    clients: () => registry,
    guardrails: () => guardrails,
    limiter,
    telemetry,
    ready: () => poolSource.loaded && clientSource.loaded,
    onKeyRejected: () => void poolSource.refresh(),
    now: Date.now,
    random: Math.random,
    newId: randomUUID,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    dispatcher,
    maxAttempts: config.MAX_ATTEMPTS,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    maxBodyBytes: config.MAX_BODY_BYTES,
  });

  await Promise.all([poolSource.refresh(), clientSource.refresh()]);
  const poll = setInterval(() => {
    void poolSource.refresh();
    void clientSource.refresh();
  }, config.SECRETS_POLL_INTERVAL_SECONDS * 1000);
  const probe = setInterval(() => {
    for (const key of pool.disabledKeys()) {
      const target = probeRequest(key.provider, key.config, key.key);
      request(target.url, { headers: target.headers, dispatcher, headersTimeout: 10_000 })
        .then(async (response) => {
          await response.body.dump();
          if (response.statusCode >= 200 && response.statusCode < 300)
            pool.enable(key.provider, key.keyId, 'probe passed');
        })
        .catch(() => undefined);
    }
  }, PROBE_INTERVAL_MS);
  poll.unref();
  probe.unref();

  await new Promise<void>((resolve) => gateway.server.listen(config.PORT, '0.0.0.0', resolve));
  telemetry.log('info', 'listening', {
    port: config.PORT,
    providers: Object.keys(pool.snapshot()),
    clients: registry?.size ?? 0,
  });

  const stop = async () => {
    clearInterval(poll);
    clearInterval(probe);
    gateway.startDraining();
    const deadline = Date.now() + config.SHUTDOWN_DRAIN_SECONDS * 1000;
    while (gateway.activeRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    gateway.server.closeAllConnections();
    await limiter.close();
    await dispatcher.close();
    secrets.destroy();
    telemetry.flushMetrics();
    telemetry.log('info', 'stopped', {});
    output.flush();
  };
  return { gateway, stop };
}

if (require.main === module) {
  main().then(
    ({ stop }) => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stdout.write(`${JSON.stringify({ level: 'info', event: 'shutdown', signal })}\n`);
        stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
    },
    (error: Error) => {
      // Configuration errors name the variable; nothing else about the environment is printed.
      process.stderr.write(`${JSON.stringify({ level: 'error', event: 'start_failed', message: error.message })}\n`);
      process.exit(1);
    },
  );
}
