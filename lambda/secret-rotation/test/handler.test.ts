import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand } from '@aws-sdk/client-elasticache';
import { mockClient } from 'aws-sdk-client-mock';
import { RotationTargets } from '../../../contracts/rotation';
import { elastiCacheUsers, targetsFromEnvironment } from '../src/index';

describe('the rotation function’s AWS side', () => {
  it('changes an ElastiCache user only when it is active, and waits until it is active again', async () => {
    const client = mockClient(ElastiCacheClient);
    client
      .on(DescribeUsersCommand)
      .resolvesOnce({ Users: [{ Status: 'modifying' }] })
      .resolvesOnce({ Users: [{ Status: 'active' }] })
      .resolvesOnce({ Users: [{ Status: 'modifying' }] })
      .resolves({ Users: [{ Status: 'active' }] });
    client.on(ModifyUserCommand).resolves({});
    const sleeps: number[] = [];
    const users = elastiCacheUsers(client as unknown as ElastiCacheClient, async (ms) => void sleeps.push(ms), 5, 10);
    await users.setPasswords('dify-app', ['old-password-0123456789', 'new-password-0123456789']);
    expect(client.commandCalls(ModifyUserCommand).map((c) => c.args[0].input)).toEqual([
      {
        UserId: 'dify-app',
        AuthenticationMode: { Type: 'password', Passwords: ['old-password-0123456789', 'new-password-0123456789'] },
      },
    ]);
    expect(sleeps).toEqual([10, 10]);
  });

  it('gives up on a user that never becomes active, naming it', async () => {
    const client = mockClient(ElastiCacheClient);
    client.on(DescribeUsersCommand).resolves({ Users: [{ Status: 'modifying' }] });
    const users = elastiCacheUsers(client as unknown as ElastiCacheClient, async () => undefined, 3, 1000);
    await expect(users.setPasswords('dify-app', ['p'])).rejects.toThrow(
      'ElastiCache user dify-app did not become active within 3 s',
    );
    expect(client.commandCalls(ModifyUserCommand)).toHaveLength(0);
  });

  const CONFIG = {
    cluster: 'dify-cluster',
    services: { Api: 'dify-api', Worker: 'dify-worker', Beat: 'dify-beat', Sandbox: 'dify-sandbox' },
    bootstrapFunction: 'dify-bootstrap',
    masterSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:master',
    cache: { host: 'cache.internal', port: 6379 },
    gateway: {
      clients: 'arn:aws:secretsmanager:eu-west-1:1:secret:clients',
      rehash: 'arn:aws:secretsmanager:eu-west-1:1:secret:rehash',
    },
    secrets: {
      'arn:aws:secretsmanager:eu-west-1:1:secret:sandbox': ['sandboxApiKey'],
      'arn:aws:secretsmanager:eu-west-1:1:secret:pepper': ['gatewayPepper'],
      'arn:aws:secretsmanager:eu-west-1:1:secret:cache': ['cacheDify', 'dify-dify'],
      'arn:aws:secretsmanager:eu-west-1:1:secret:app': ['appDatabase'],
    },
  };

  it('joins the ROTATION variable to the catalogue: each secret’s kind and exactly its readers', () => {
    expect(targetsFromEnvironment(JSON.stringify(CONFIG))).toEqual({
      'arn:aws:secretsmanager:eu-west-1:1:secret:sandbox': {
        kind: 'shared-key',
        what: 'the sandbox API key',
        consumers: { cluster: 'dify-cluster', services: ['dify-api', 'dify-worker', 'dify-sandbox'], workloads: [] },
      },
      'arn:aws:secretsmanager:eu-west-1:1:secret:cache': {
        kind: 'cache-user',
        what: "Dify's Valkey user password",
        consumers: { cluster: 'dify-cluster', services: ['dify-api', 'dify-worker', 'dify-beat'], workloads: [] },
        userId: 'dify-dify',
        host: 'cache.internal',
        port: 6379,
      },
      'arn:aws:secretsmanager:eu-west-1:1:secret:app': {
        kind: 'database-role',
        what: "the dify database role's password",
        consumers: { cluster: 'dify-cluster', services: ['dify-api', 'dify-worker', 'dify-beat'], workloads: [] },
        bootstrapFunction: 'dify-bootstrap',
        masterSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:master',
      },
      // Read at run time by the gateway, which holds two versions: nothing restarts.
      'arn:aws:secretsmanager:eu-west-1:1:secret:pepper': {
        kind: 'client-key-pepper',
        what: "the LLM gateway's client-key pepper",
        consumers: { cluster: '', services: [], workloads: [] },
        clientsSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:clients',
        rehashSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:rehash',
      },
    });
  });

  it('sends readers that are not ECS services to the cluster responder on EKS', () => {
    const targets = targetsFromEnvironment(
      JSON.stringify({
        ...CONFIG,
        services: {},
        responder: 'dify-responder',
        secrets: { [Object.keys(CONFIG.secrets)[0]]: ['sandboxApiKey'] },
      }),
    );
    expect(Object.values(targets)[0].consumers).toEqual({
      cluster: '',
      services: [],
      workloads: ['Api', 'Worker', 'Sandbox'],
      responder: 'dify-responder',
    });
  });

  it.each([
    ['not JSON', 'ROTATION: expected the JSON the stack writes (contracts/rotation.ts RotationConfig)'],
    [JSON.stringify({ ...CONFIG, masterSecretArn: 'master' }), 'ROTATION: masterSecretArn: an secretsmanager ARN'],
    [
      JSON.stringify({ ...CONFIG, secrets: { 'arn:aws:secretsmanager:eu-west-1:1:secret:x': ['secretKey'] } }),
      "ROTATION: secret arn:aws:secretsmanager:eu-west-1:1:secret:x: 'secretKey' is not a scheduled secret of the catalogue",
    ],
    [
      JSON.stringify({ ...CONFIG, services: {} }),
      'ROTATION: consumer Api runs neither as an ECS service nor as an EKS Deployment',
    ],
    [
      JSON.stringify({ ...CONFIG, secrets: { 'arn:aws:secretsmanager:eu-west-1:1:secret:c': ['cacheDify'] } }),
      "ROTATION: secret arn:aws:secretsmanager:eu-west-1:1:secret:c: 'cacheDify' needs its ElastiCache user id",
    ],
  ])('refuses a ROTATION variable that is wrong (%s), naming the problem', (raw, message) => {
    expect(() => targetsFromEnvironment(raw)).toThrow(message);
  });

  it('holds every target to its shape: an ARN key, a known kind, an ElastiCache user id', () => {
    const consumers = { cluster: 'c', services: ['s'], workloads: [] };
    expect(
      RotationTargets.safeParse({
        'arn:aws:secretsmanager:eu-west-1:1:secret:x': {
          kind: 'cache-user',
          what: 'x',
          consumers,
          userId: 'Dify_App',
          host: 'h',
          port: 6379,
        },
      }).success,
    ).toBe(false);
    expect(RotationTargets.safeParse({ 'not-an-arn': { kind: 'shared-key', what: 'x', consumers } }).success).toBe(
      false,
    );
    expect(
      RotationTargets.safeParse({
        'arn:aws:secretsmanager:eu-west-1:1:secret:x': { kind: 'shared-key', what: 'x', consumers },
      }).success,
    ).toBe(true);
  });
});
