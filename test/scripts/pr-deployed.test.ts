import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { assemblyStacks, fetchDeployed } from '../../scripts/pr-deployed';
import { readSide } from '../../scripts/pr-diff';

// With the read-only role, the diff's base is what CloudFormation holds: each stack from its own
// region (the us-east-1 stacks are not in the home region), and a stack not deployed yet is added,
// not an error. Any other failure must stop the diff, naming what the role lacks.

describe('pr:deployed', () => {
  let dir: string;
  const cfn = mockClient(CloudFormationClient);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pr-deployed-'));
    const stack = (environment: string) => ({ type: 'aws:cloudformation:stack', environment, properties: {} });
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify({
        version: '55.0.0',
        artifacts: {
          'Dify-Global': stack('aws://unknown-account/us-east-1'),
          'Dify-Global.assets': { type: 'cdk:asset-manifest', properties: {} },
          Dify: stack('aws://unknown-account/unknown-region'),
          'Dify-Data': stack('aws://123456789012/eu-west-1'),
        },
      }),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => cfn.reset());

  it("reads each stack's region from the assembly, none for an environment-agnostic stack", () => {
    expect(assemblyStacks(dir)).toEqual([
      { name: 'Dify-Global', region: 'us-east-1' },
      { name: 'Dify', region: undefined },
      { name: 'Dify-Data', region: 'eu-west-1' },
    ]);
  });

  it('fetches the deployed templates from their regions and lists the stacks not deployed yet', async () => {
    const template = { Resources: { T: { Type: 'AWS::SNS::Topic' } } };
    cfn
      .on(GetTemplateCommand, { StackName: 'Dify-Global', TemplateStage: 'Original' })
      .resolves({ TemplateBody: JSON.stringify(template) });
    cfn
      .on(GetTemplateCommand, { StackName: 'Dify', TemplateStage: 'Original' })
      .resolves({ TemplateBody: '{"Resources":{}}' });
    cfn
      .on(GetTemplateCommand, { StackName: 'Dify-Data' })
      .rejects(Object.assign(new Error('Stack with id Dify-Data does not exist'), { name: 'ValidationError' }));
    const regions: string[] = [];
    const out = join(dir, 'deployed');
    const list = await fetchDeployed(assemblyStacks(dir), out, 'ap-northeast-1', (region) => {
      regions.push(region);
      return new CloudFormationClient({ region, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    });
    expect(regions).toEqual(['us-east-1', 'ap-northeast-1', 'eu-west-1']);
    expect(list).toEqual({ deployed: ['Dify-Global', 'Dify'], notDeployed: ['Dify-Data'] });
    expect(JSON.parse(readFileSync(join(out, 'Dify-Global.template.json'), 'utf8'))).toEqual(template);
    // The folder is a side pr:diff reads: Dify-Data is absent there, so it shows as added.
    expect(Object.keys(readSide(out).variants['']).sort()).toEqual(['Dify', 'Dify-Global']);
  });

  it('stops on any other error, naming the stack, the region and the action', async () => {
    cfn.on(GetTemplateCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
    await expect(
      fetchDeployed(
        [{ name: 'Dify' }],
        join(dir, 'denied'),
        'eu-west-1',
        (region) => new CloudFormationClient({ region, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }),
      ),
    ).rejects.toThrow(
      'cloudformation:GetTemplate of Dify in eu-west-1 failed: AccessDenied: not authorized. The diff role needs cloudformation:GetTemplate',
    );
  });
});
