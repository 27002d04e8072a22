import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { COMMANDS } from '../src/commands';
import { run, USAGE } from '../src/main';
import type { Io } from '../src/io';
import { type Deployment, REGION, startDeployment } from './helpers/deployment';

/** What every command shares: the command table, the deployment's stacks, and how errors are said. */
describe('dify-aws', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('lists every command of the table in --help, and runs no other', async () => {
    for (const command of COMMANDS) expect(USAGE).toContain(`  ${command.name}`);
    const unknown = await d.cli(['launch']);
    expect([unknown.code, unknown.err]).toEqual([
      2,
      expect.stringContaining(
        `unknown command 'launch'; expected ${COMMANDS.slice(0, -1)
          .map((c) => c.name)
          .join(', ')} or ${COMMANDS.at(-1)!.name}`,
      ),
    ]);
    const help = await d.cli(['--help']);
    expect([help.code, help.out.trim()]).toEqual([0, USAGE]);
  });

  it('reads the outputs of every stack of the deployment', async () => {
    // helpers/deployment.ts spreads the outputs over the four stacks; a command needs outputs of several.
    const listed = await d.cli(['clients', 'list', '--json']);
    expect(listed.code).toBe(0);
    const doctor = await d.cli(['lockdown', '--undo', '--json']);
    expect(doctor.err).not.toContain('has no output');
  });

  it('names a missing stack and exits non-zero', async () => {
    const missing = await d.cli(['keys', 'list', '--stack', 'NoSuchStack']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('stack NoSuchStack not found');
  });

  it('reads a deployment made before the split, whose main stack holds every output', async () => {
    await d.clients.cfn.send(
      new CreateStackCommand({
        StackName: 'Legacy',
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: { GatewayProviderKeysSecretArn: { Value: d.outputs.GatewayProviderKeysSecretArn } },
        }),
      }),
    );
    const listed = await d.cli(['keys', 'list', '--stack', 'Legacy']);
    expect(listed.code).toBe(0);
    const missing = await d.cli(['clients', 'list', '--stack', 'Legacy']);
    expect([missing.code, missing.err]).toEqual([
      1,
      expect.stringContaining('deployment Legacy has no output GatewayClientsSecretArn'),
    ]);
  });

  it('says how to give credentials when there are none', async () => {
    const noCredentials = new CloudFormationClient({
      region: REGION,
      endpoint: d.moto.endpoint,
      credentials: async () => {
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        });
      },
    });
    const result = await d.cli(['keys', 'list'], '', { clients: { cloudFormation: noCredentials } });
    noCredentials.destroy();
    expect([result.code, result.err]).toEqual([
      1,
      expect.stringContaining('no AWS credentials found; set AWS_PROFILE'),
    ]);
  });

  it('names an unknown option', async () => {
    const option = await d.cli(['keys', 'list', '--colour']);
    expect([option.code, option.err]).toEqual([2, expect.stringContaining("Unknown option '--colour'")]);
  });

  it('prints usage and exits 2 without a command', async () => {
    let out = '';
    const io: Io = {
      out: (l) => (out += l),
      err: () => undefined,
      readSecret: async () => '',
      confirm: async () => false,
    };
    expect(await run([], io)).toBe(2);
    expect(out).toBe(USAGE);
  });
});
