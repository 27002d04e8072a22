import { ECSClient, DescribeTasksCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { type Deployment, PLANTED, REGION, startDeployment } from '../helpers/deployment';

/** dify-aws revoke-sessions, end to end against a deployment in moto_server (helpers/deployment.ts). */
describe('dify-aws sessions against moto_server', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  describe('revoke-sessions', () => {
    /** The command against moto's stack and secrets, with ECS (mocked per test: moto runs no task). */
    const revokeSessions = (overrides: Parameters<Deployment['cli']>[2] = {}) =>
      d.cli(['revoke-sessions', '--yes'], '', {
        ...overrides,
        clients: {
          cloudFormation: d.clients.cfn,
          secrets: d.clients.secrets,
          kms: d.clients.kms,
          ecs: new ECSClient({ region: REGION }),
        },
      });

    it('deletes the console refresh tokens in a one-off task inside the VPC and reports its exit', async () => {
      const ecs = mockClient(ECSClient);
      ecs
        .on(RunTaskCommand)
        .resolves({ tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/dify-cluster/abc' }] });
      ecs
        .on(DescribeTasksCommand)
        .resolvesOnce({ tasks: [{ lastStatus: 'PROVISIONING' }] })
        .resolvesOnce({ tasks: [{ lastStatus: 'RUNNING' }] })
        .resolves({ tasks: [{ lastStatus: 'STOPPED', containers: [{ name: 'migration', exitCode: 0 }] }] });
      // A clock that each sleep moves on: the progress lines say the time since the wait began.
      let clock = Date.parse('2026-12-02T10:00:00Z');
      try {
        const result = await revokeSessions({
          now: () => new Date(clock),
          sleep: async (ms) => {
            clock += ms;
          },
        });
        expect(result.code).toBe(0);
        const task = 'arn:aws:ecs:us-east-1:123456789012:task/dify-cluster/abc';
        expect(result.err).toBe(
          `waiting for the revoke task ${task}: PROVISIONING (0 s elapsed)\nwaiting for the revoke task ${task}: RUNNING (10 s elapsed)\n`,
        );
        expect(result.out).not.toContain('elapsed');
        const input = ecs.commandCalls(RunTaskCommand)[0].args[0].input;
        expect(input).toMatchObject({
          cluster: 'dify-cluster',
          taskDefinition: 'Dify-migration',
          launchType: 'FARGATE',
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
              securityGroups: ['sg-0123456789abcdef0'],
              assignPublicIp: 'DISABLED',
            },
          },
        });
        const script = input.overrides!.containerOverrides![0].command![0];
        expect(script).toContain("'refresh_token:', 'account_refresh_token:'");
        expect(script).toContain("ssl_cert_reqs='required'");
        expect(script).not.toContain(PLANTED.cacheToken);
        expect(result.out).toContain('ACCESS_TOKEN_EXPIRE_MINUTES');
      } finally {
        ecs.restore();
      }
    });

    it('fails with the exit code when the task fails', async () => {
      const ecs = mockClient(ECSClient);
      ecs
        .on(RunTaskCommand)
        .resolves({ tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/dify-cluster/def' }] });
      ecs.on(DescribeTasksCommand).resolves({
        tasks: [
          {
            lastStatus: 'STOPPED',
            stoppedReason: 'Essential container exited',
            containers: [{ name: 'migration', exitCode: 1 }],
          },
        ],
      });
      try {
        const result = await revokeSessions();
        expect([result.code, result.err]).toEqual([
          1,
          expect.stringContaining('exited with 1 (Essential container exited)'),
        ]);
      } finally {
        ecs.restore();
      }
    });
  });
});
