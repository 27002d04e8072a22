import Redis from 'ioredis';
import { startRedis, type RedisServer } from '../../gateway/test/helpers/redis';
import { connect } from '../../gateway/src/ratelimit/redis';
import { CACHE_USERS, type CacheUserName } from '../../lib/constructs/cache';

/**
 * The ElastiCache users' access strings (lib/constructs/cache.ts), applied as ACL rules to a real
 * redis-server on loopback, the model ElastiCache RBAC follows: each component can do what its
 * pinned release does, and the narrow users cannot touch anything else.
 */
const PASSWORDS: Record<CacheUserName, string> = {
  dify: 'difyUserPassw0rdForTheAclTest123',
  pluginDaemon: 'pluginUserPassw0rdForTheAclTest45',
  gateway: 'gatewayUserPassw0rdForTheAclTest6',
};

describe('the Valkey users, on a real redis-server', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const as = (name: CacheUserName) => {
    const client = new Redis({
      host: '127.0.0.1',
      port: server.port,
      username: CACHE_USERS[name].userName,
      password: PASSWORDS[name],
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      // INFO is @dangerous: outside Dify's and the plugin daemon's users.
      enableReadyCheck: false,
    });
    clients.push(client);
    return client;
  };
  const refused = async (promise: Promise<unknown>) => {
    const error = await promise.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message ?? 'allowed').toMatch(/NOPERM/);
  };

  beforeAll(async () => {
    const users = (Object.keys(CACHE_USERS) as CacheUserName[])
      .map((name) => `user ${CACHE_USERS[name].userName} ${CACHE_USERS[name].accessString} >${PASSWORDS[name]}\n`)
      .join('');
    server = await startRedis({ password: 'setupOnlyPassw0rd', config: users });
    const setup = new Redis({ host: '127.0.0.1', port: server.port, password: 'setupOnlyPassw0rd' });
    clients.push(setup);
    await setup.set('refresh_token:abc', 'account-1');
    await setup.set('plugin_daemon:session_info:1', 'x');
  });

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await server?.stop();
  });

  it('lets Dify use every key, scripts, transactions, SCAN and pub/sub, but no dangerous command', async () => {
    const dify = as('dify');
    await dify.connect();
    expect(await dify.get('refresh_token:abc')).toBe('account-1');
    expect(await dify.eval("return redis.call('SET', KEYS[1], 'v')", 1, 'db_upgrade_lock')).toBe('OK');
    expect(await dify.multi().incr('rate_limit_t1').expire('rate_limit_t1', 60).exec()).toHaveLength(2);
    expect((await dify.scan('0', 'MATCH', 'refresh_token:*'))[1]).toContain('refresh_token:abc');
    expect(await dify.publish('channel:workflow:run-1', 'event')).toBe(0);
    await refused(dify.flushall());
    await refused(dify.keys('*'));
    await refused(dify.config('GET', 'requirepass'));
  });

  it('keeps the plugin daemon to its own `plugin_daemon:` keys and its cluster channel', async () => {
    const daemon = as('pluginDaemon');
    await daemon.connect();
    expect(await daemon.get('plugin_daemon:session_info:1')).toBe('x');
    expect(await daemon.hset('plugin_daemon:plugin_state', 'node:plugin', '1')).toBe(1);
    expect(await daemon.publish('cluster-new-node-channel', 'node-2')).toBe(0);
    // Dify's sessions, Celery's queues and cached credentials are out of reach.
    await refused(daemon.get('refresh_token:abc'));
    await refused(daemon.lpush('dataset', 'injected-task'));
    await refused(daemon.publish('channel:workflow:run-1', 'x'));
    await refused(daemon.eval("return redis.call('GET', KEYS[1])", 1, 'plugin_daemon:x'));
    await refused(daemon.flushall());
  });

  it('lets the gateway run its own rate-limit scripts on `gw:rl:` keys and nothing else', async () => {
    const limiter = connect(
      { host: '127.0.0.1', port: server.port, username: 'llm-gateway', password: PASSWORDS.gateway },
      2000,
    );
    clients.push(limiter);
    await new Promise((resolve) => limiter.once('ready', resolve));
    expect(await limiter.rateLimitLease('gw:rl:{client-1}:1', 10, 1000, 1, 42, 16, 100, 60_000)).toEqual([0, 1, 62]);
    expect(await limiter.rateLimitAdjust('gw:rl:{client-1}:1', -1, -62, 60_000)).toBe(0);
    const gateway = as('gateway');
    await gateway.connect();
    await refused(gateway.get('gw:rl:{client-1}:1'));
    await refused(gateway.get('refresh_token:abc'));
    await refused(gateway.eval("return redis.call('HINCRBY', KEYS[1], 'r', 1)", 1, 'plugin_daemon:x'));
    await refused(gateway.del('gw:rl:{client-1}:1'));
  });
});
