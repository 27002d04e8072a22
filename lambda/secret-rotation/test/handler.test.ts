import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand } from '@aws-sdk/client-elasticache';
import { mockClient } from 'aws-sdk-client-mock';
import { RotationTargets } from '../../../contracts/rotation';
import { elastiCacheUsers, handler } from '../src/index';

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

  it('refuses a TARGETS variable that does not describe the secrets, naming the problem', async () => {
    process.env.TARGETS = JSON.stringify({ 'arn:aws:secretsmanager:eu-west-1:1:secret:x': { kind: 'other' } });
    await expect(handler({ SecretId: 'x', ClientRequestToken: '0'.repeat(36), Step: 'createSecret' })).rejects.toThrow(
      /^TARGETS: /,
    );
    delete process.env.TARGETS;
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
