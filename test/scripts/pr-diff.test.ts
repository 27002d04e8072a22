import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COMMENT_MARKER,
  DEPLOYED_LIST,
  diffSides,
  diffTemplates,
  diffValues,
  flagsFor,
  parseDiffArgs,
  readSide,
  renderComment,
  type Side,
  type TemplateJson,
  VALUE_LIMIT,
} from '../../scripts/pr-diff';
import { build, VARIANTS } from '../helpers/synth';

// The pull-request workflow posts this report; a reviewer trusts its "Flagged changes" list to show
// every change to who may do what (IAM), who may connect (security groups), who may decrypt (KMS),
// what the WAF lets in, and how long data is kept. A change missing from it would pass review unseen.

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const single = (stacks: Record<string, TemplateJson>): Side => ({ variants: { '': stacks }, failed: {} });

/** The first resource of a type in a template, as [logicalId, resource]. */
function first(template: TemplateJson, type: string, test: (resource: any) => boolean = () => true): [string, any] {
  const found = Object.entries(template.Resources as Record<string, any>).find(
    ([, resource]) => resource.Type === type && test(resource),
  );
  if (!found) throw new Error(`no ${type} in the template`);
  return found;
}

/** The flagged lines of a comment: the list between "Flagged changes" and the first stack section. */
function flaggedSection(comment: string): string {
  const start = comment.indexOf('### Flagged changes');
  const end = comment.indexOf('\n### `', start);
  return comment.slice(start, end < 0 ? undefined : end);
}

describe('pr:diff on the synthesized dev variant', () => {
  let base: Record<string, TemplateJson>;

  beforeAll(() => {
    // The templates as `cdk synth` writes them for the dev variant (nag metadata is not compared).
    const built = build(VARIANTS.dev, { nag: false });
    base = Object.fromEntries(Object.entries(built.templates).map(([name, template]) => [name, template.toJSON()]));
  });

  it('has the stacks the comment is about, WAF in Dify-Global', () => {
    expect(Object.keys(base).sort()).toEqual([
      'Dify',
      'Dify-Data',
      'Dify-Foundation',
      'Dify-Global',
      'Dify-GlobalAlarms',
      'Dify-Runtime',
    ]);
    first(base['Dify-Global'], 'AWS::WAFv2::WebACL');
  });

  it('reports "no differences" for the same templates', () => {
    const comment = renderComment(single(base), single(clone(base)));
    expect(comment.startsWith(COMMENT_MARKER)).toBe(true);
    expect(comment).toContain('**No differences** in any of the 6 stacks.');
    expect(comment).not.toContain('Flagged changes');
    expect(diffSides(single(base), single(clone(base))).every((diff) => diff.status === 'unchanged')).toBe(true);
  });

  it('flags an IAM statement, a security group rule and a WAF rule, each with its stack and resource', () => {
    const head = clone(base);
    const [policyId, policy] = first(head.Dify, 'AWS::IAM::Policy');
    policy.Properties.PolicyDocument.Statement.push({ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' });
    const [ruleId, rule] = first(head.Dify, 'AWS::EC2::SecurityGroupIngress', (r) => r.Properties.FromPort === 5432);
    rule.Properties.FromPort = 0;
    rule.Properties.ToPort = 65535;
    const [aclId, acl] = first(head['Dify-Global'], 'AWS::WAFv2::WebACL');
    const removedRule = acl.Properties.Rules.pop();

    const comment = renderComment(single(base), single(head), { baseLabel: 'the base branch' });
    const flagged = flaggedSection(comment);
    expect(flagged).toContain(
      `**IAM** · \`Dify\` › \`${policyId}\` (AWS::IAM::Policy): changed Properties.PolicyDocument.Statement[+]`,
    );
    expect(flagged).toContain(
      `**Security group** · \`Dify\` › \`${ruleId}\` (AWS::EC2::SecurityGroupIngress): changed Properties.FromPort, Properties.ToPort`,
    );
    expect(flagged).toContain(
      `**WAF** · \`Dify-Global\` › \`${aclId}\` (AWS::WAFv2::WebACL): changed Properties.Rules[-]`,
    );
    // Nothing else changed, so nothing else is flagged.
    expect(flagged.split('\n').filter((line) => line.startsWith('- '))).toHaveLength(3);
    // The per-stack sections show what changed, with the values.
    expect(comment).toContain('### `Dify`');
    expect(comment).toContain('### `Dify-Global`');
    expect(comment).toContain('`Properties.FromPort`: `5432` → `0`');
    expect(comment).toContain(
      '`Properties.PolicyDocument.Statement[+]`: added `{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}`',
    );
    expect(comment).toContain(`\`Properties.Rules[-]\`: removed \`${JSON.stringify(removedRule).slice(0, 40)}`);
    expect(comment).not.toContain('### `Dify-Data`');
  });

  it('flags a retention change and a DeletionPolicy change', () => {
    const head = clone(base);
    const [logId, log] = first(head['Dify-Foundation'], 'AWS::Logs::LogGroup', (r) => r.Properties.RetentionInDays);
    const retention = log.Properties.RetentionInDays;
    log.Properties.RetentionInDays = 1;
    const [keptId, kept] = first(head.Dify, 'AWS::Logs::LogGroup');
    const policy = kept.DeletionPolicy;
    kept.DeletionPolicy = policy === 'Retain' ? 'Delete' : 'Retain';

    const flagged = flaggedSection(renderComment(single(base), single(head)));
    expect(flagged).toContain(
      `**Deletion/retention** · \`Dify-Foundation\` › \`${logId}\` (AWS::Logs::LogGroup): retention: Properties.RetentionInDays`,
    );
    expect(flagged).toContain(
      `**Deletion/retention** · \`Dify\` › \`${keptId}\` (AWS::Logs::LogGroup): DeletionPolicy ${policy ?? 'Delete (default)'} -> ${kept.DeletionPolicy}`,
    );
    expect(renderComment(single(base), single(head))).toContain(
      `\`Properties.RetentionInDays\`: \`${retention}\` → \`1\``,
    );
  });

  it('lists a tag and an environment variable change without flagging them', () => {
    const head = clone(base);
    const [taskId, task] = first(head.Dify, 'AWS::ECS::TaskDefinition', (r) =>
      r.Properties.ContainerDefinitions.some((c: any) => (c.Environment ?? []).length > 0),
    );
    const container = task.Properties.ContainerDefinitions.findIndex((c: any) => (c.Environment ?? []).length > 0);
    const variable = task.Properties.ContainerDefinitions[container].Environment[0];
    variable.Value = `${variable.Value}-changed`;
    const [bucketId, bucket] = first(head['Dify-Foundation'], 'AWS::S3::Bucket');
    bucket.Properties.Tags = [...(bucket.Properties.Tags ?? []), { Key: 'team', Value: 'platform' }];

    const comment = renderComment(single(base), single(head));
    expect(flaggedSection(comment)).toContain(
      'None: no change to IAM, security groups, KMS keys, WAF, deletion or retention.',
    );
    expect(comment).toContain(`~ \`${taskId}\` (AWS::ECS::TaskDefinition)`);
    expect(comment).toContain(`\`Properties.ContainerDefinitions[${container}].Environment[0].Value\``);
    expect(comment).toContain(`~ \`${bucketId}\` (AWS::S3::Bucket)`);
    expect(comment).toContain('`Properties.Tags[+]`: added `{"Key":"team","Value":"platform"}`');
  });

  it('reports an added stack and a removed stack', () => {
    const head = clone(base);
    delete head['Dify-GlobalAlarms'];
    head['Dify-Extra'] = {
      Resources: { Topic: { Type: 'AWS::SNS::Topic', Properties: { DisplayName: 'extra' } } },
    };
    const comment = renderComment(single(base), single(head));
    expect(comment).toMatch(
      /### `Dify-Extra`\n\n- \*\*stack added\*\*\n- resources: 1 added, 0 removed, 0 modified\n- \+ `Topic` \(AWS::SNS::Topic\)/,
    );
    const alarms = Object.keys(base['Dify-GlobalAlarms'].Resources as object).length;
    expect(comment).toContain(
      `### \`Dify-GlobalAlarms\`\n\n- **stack removed**\n- resources: 0 added, ${alarms} removed, 0 modified`,
    );
  });
});

describe('pr:diff flagging, on small templates', () => {
  const template = (resources: Record<string, unknown>): TemplateJson => ({ Resources: resources }) as TemplateJson;
  const flagsOf = (before: Record<string, unknown>, after: Record<string, unknown>) =>
    diffTemplates(template(before), template(after)).flatMap((entry) =>
      flagsFor(entry).map((flag) => `${entry.id} ${flag.category}: ${flag.reason}`),
    );

  it("flags a role's inline Policies and its trust policy", () => {
    const role = (service: string, action: string) => ({
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: { Statement: [{ Effect: 'Allow', Principal: { Service: service } }] },
        Policies: [{ PolicyName: 'p', PolicyDocument: { Statement: [{ Effect: 'Allow', Action: action }] } }],
      },
    });
    expect(
      flagsOf({ R: role('ecs-tasks.amazonaws.com', 'kms:Decrypt') }, { R: role('ec2.amazonaws.com', 'kms:*') }),
    ).toEqual([
      'R IAM: changed Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service, Properties.Policies[0].PolicyDocument.Statement[0].Action',
    ]);
  });

  it('flags a KMS key policy, a bucket policy and a security group rule given as a property', () => {
    const before = {
      Key: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: { Statement: [{ Principal: { AWS: 'a' } }] } } },
      BucketPolicy: { Type: 'AWS::S3::BucketPolicy', Properties: { PolicyDocument: { Statement: [] } } },
      Group: {
        Type: 'AWS::EC2::SecurityGroup',
        Properties: {
          SecurityGroupIngress: [{ CidrIp: '10.0.0.0/16', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }],
        },
      },
      Balancer: {
        Type: 'AWS::ElasticLoadBalancingV2::LoadBalancer',
        Properties: { SecurityGroups: ['sg-1'], Name: 'lb' },
      },
    };
    const after = clone(before);
    after.Key.Properties.KeyPolicy.Statement[0].Principal.AWS = '*';
    (after.BucketPolicy.Properties.PolicyDocument.Statement as unknown[]).push({ Effect: 'Allow' });
    after.Group.Properties.SecurityGroupIngress[0].CidrIp = '0.0.0.0/0';
    after.Balancer.Properties.SecurityGroups = ['sg-1', 'sg-2'];
    expect(flagsOf(before, after)).toEqual([
      'Balancer Security group: changed Properties.SecurityGroups[+]',
      'BucketPolicy IAM: changed Properties.PolicyDocument.Statement[+]',
      'Group Security group: changed Properties.SecurityGroupIngress[0].CidrIp',
      'Key KMS: key policy: Properties.KeyPolicy.Statement[0].Principal.AWS',
    ]);
  });

  it('flags WAF IP sets and rule groups, and retention in S3 lifecycles, backups and databases', () => {
    const before = {
      Set: { Type: 'AWS::WAFv2::IPSet', Properties: { Addresses: ['203.0.113.0/24'] } },
      Group: { Type: 'AWS::WAFv2::RuleGroup', Properties: { Rules: [] } },
      Bucket: {
        Type: 'AWS::S3::Bucket',
        DeletionPolicy: 'Retain',
        Properties: { LifecycleConfiguration: { Rules: [{ ExpirationInDays: 365, Status: 'Enabled' }] } },
      },
      Cluster: { Type: 'AWS::RDS::DBCluster', Properties: { BackupRetentionPeriod: 35, DeletionProtection: true } },
    };
    const after = clone(before);
    after.Set.Properties.Addresses = ['0.0.0.0/1'];
    (after.Group.Properties.Rules as unknown[]).push({ Name: 'r' });
    after.Bucket.Properties.LifecycleConfiguration.Rules[0].ExpirationInDays = 1;
    after.Cluster.Properties.BackupRetentionPeriod = 1;
    after.Cluster.Properties.DeletionProtection = false;
    expect(flagsOf(before, after)).toEqual([
      'Bucket Deletion/retention: retention: Properties.LifecycleConfiguration.Rules[0].ExpirationInDays',
      'Cluster Deletion/retention: retention: Properties.BackupRetentionPeriod, Properties.DeletionProtection',
      'Group WAF: changed Properties.Rules[+]',
      'Set WAF: changed Properties.Addresses[0]',
    ]);
  });

  it('flags a removed stateful resource, kept or deleted, and an added one that would be deleted with the stack', () => {
    const before = {
      Kept: { Type: 'AWS::S3::Bucket', DeletionPolicy: 'Retain', Properties: {} },
      Gone: { Type: 'AWS::Logs::LogGroup', Properties: { RetentionInDays: 7 } },
      Topic: { Type: 'AWS::SNS::Topic', Properties: {} },
    };
    const after = { Table: { Type: 'AWS::DynamoDB::Table', Properties: {} } };
    expect(flagsOf(before, after)).toEqual([
      'Gone Deletion/retention: removed, and its data is deleted with it',
      'Kept Deletion/retention: removed; DeletionPolicy Retain keeps it, orphaned',
      'Table Deletion/retention: added with no DeletionPolicy: deleted with the stack',
    ]);
  });

  it('does not flag a description, a tag or an output', () => {
    const before = { Fn: { Type: 'AWS::Lambda::Function', Properties: { Description: 'a', Tags: [] } } };
    const after = { Fn: { Type: 'AWS::Lambda::Function', Properties: { Description: 'b', Tags: [{ Key: 'k' }] } } };
    expect(flagsOf(before, after)).toEqual([]);
    const entries = diffTemplates(
      { Outputs: { Url: { Value: 'a' } } } as TemplateJson,
      { Outputs: { Url: { Value: 'b' } } } as TemplateJson,
    );
    expect(entries).toHaveLength(1);
    expect(flagsFor(entries[0])).toEqual([]);
  });
});

describe('pr:diff comparison and rendering', () => {
  it('shows an inserted list element as added, not every later element as changed', () => {
    expect(diffValues(['a', 'b', 'c'], ['a', 'x', 'b', 'c'], 'L')).toEqual([
      { path: 'L[+]', kind: 'added', after: 'x' },
    ]);
    expect(diffValues(['a', 'b'], ['b', 'a'], 'L')).toEqual([
      { path: 'L', kind: 'changed', before: '2 elements', after: 'the same elements, reordered' },
    ]);
    expect(diffValues({ 'a.b': 1 }, { 'a.b': 2 }, 'P')).toEqual([
      { path: 'P["a.b"]', kind: 'changed', before: 1, after: 2 },
    ]);
  });

  it('never prints Metadata, and cuts long values', () => {
    const long = 'x'.repeat(5_000);
    const before = {
      Resources: { R: { Type: 'AWS::SNS::Topic', Metadata: { note: 'metadata-before' }, Properties: { A: 'a' } } },
    };
    const after = {
      Resources: { R: { Type: 'AWS::SNS::Topic', Metadata: { note: 'metadata-after' }, Properties: { A: long } } },
    };
    const comment = renderComment(single({ S: before as TemplateJson }), single({ S: after as TemplateJson }));
    expect(comment).not.toContain('metadata-');
    expect(comment).toContain(`${'x'.repeat(VALUE_LIMIT)}… (5000 characters)`);
    expect(comment).not.toContain('x'.repeat(VALUE_LIMIT + 1));
    // A Metadata-only change is no change.
    const onlyMetadata = renderComment(
      single({ S: before as TemplateJson }),
      single({ S: { Resources: { R: { ...before.Resources.R, Metadata: { note: 'other' } } } } as TemplateJson }),
    );
    expect(onlyMetadata).toContain('**No differences**');
  });

  it('names the variants a change appears in, once, and a variant that did not synthesize', () => {
    const topic = (name: string): TemplateJson => ({
      Resources: { T: { Type: 'AWS::SNS::Topic', Properties: { TopicName: name } } },
    });
    const role = (action: string): TemplateJson => ({
      Resources: {
        P: { Type: 'AWS::IAM::Policy', Properties: { PolicyDocument: { Statement: [{ Action: action }] } } },
      },
    });
    const base: Side = {
      variants: { dev: { S: role('a') }, prod: { S: role('a') }, alb: { S: topic('a') } },
      failed: {},
    };
    const head: Side = {
      variants: { dev: { S: role('b') }, prod: { S: role('b') }, alb: { S: topic('b') } },
      failed: { eks: 'exit 1 unknown context key' },
    };
    const comment = renderComment(base, head);
    expect(comment).toContain('over 3 variants (alb, dev, prod)');
    expect(comment).toContain(
      '- **IAM** · `S` › `P` (AWS::IAM::Policy): changed Properties.PolicyDocument.Statement[0].Action _(variants dev, prod)_',
    );
    expect(comment.match(/`P` \(AWS::IAM::Policy\)/g)).toHaveLength(2); // once flagged, once in the stack's section
    expect(comment).toContain('- ~ `T` (AWS::SNS::Topic) _(variant alb)_');
    expect(comment).toContain('❌ variant `eks` did not synthesize on this branch: `exit 1 unknown context key`');
    // Against the variants compared: prod failed on the base, so dev's change is in every variant compared.
    const partial = renderComment(
      { variants: { dev: { S: role('a') } }, failed: { prod: 'exit 1' } },
      { variants: { dev: { S: role('b') }, prod: { S: role('b') } }, failed: {} },
    );
    expect(partial).toContain('⚠️ variant `prod` did not synthesize on the base, so it is not compared: `exit 1`');
    expect(partial).toContain(
      '- **IAM** · `S` › `P` (AWS::IAM::Policy): changed Properties.PolicyDocument.Statement[0].Action\n',
    );
  });

  it('shortens a comment over the limit, keeping the flagged list', () => {
    const many = (value: string): TemplateJson => ({
      Resources: Object.fromEntries(
        Array.from({ length: 400 }, (_, i) => [
          `Topic${i}`,
          { Type: 'AWS::SNS::Topic', Properties: { DisplayName: value } },
        ]),
      ),
    });
    const base = many('a'.repeat(100));
    const head = many('b'.repeat(100));
    head.Resources = { ...(head.Resources as object), Key: { Type: 'AWS::KMS::Key', Properties: {} } };
    const comment = renderComment(single({ S: base }), single({ S: head }), {
      limit: 20_000,
      fullReportHint: 'see the summary',
    });
    expect(comment.length).toBeLessThanOrEqual(20_000);
    expect(comment).toContain('**KMS** · `S` › `Key` (AWS::KMS::Key): key added');
    expect(comment).toContain('_Changed paths left out to fit a comment; see the summary._');
    expect(comment).toContain('- ~ `Topic0` (AWS::SNS::Topic)');
    expect(comment).not.toContain('`Properties.DisplayName`');
  });
});

describe('pr:diff inputs', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pr-diff-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const assembly = (path: string, stacks: Record<string, TemplateJson>) => {
    mkdirSync(path, { recursive: true });
    const artifacts = Object.fromEntries(
      Object.keys(stacks).map((name) => [
        name,
        {
          type: 'aws:cloudformation:stack',
          environment: 'aws://unknown-account/us-east-1',
          properties: { templateFile: `${name}.template.json` },
        },
      ]),
    );
    writeFileSync(join(path, 'manifest.json'), JSON.stringify({ version: '55.0.0', artifacts }));
    for (const [name, template] of Object.entries(stacks))
      writeFileSync(join(path, `${name}.template.json`), JSON.stringify(template));
  };

  it('reads a cloud assembly, a folder of variants with a failed one, and a folder of templates', () => {
    const stack = { Resources: { T: { Type: 'AWS::SNS::Topic' } } } as TemplateJson;
    assembly(join(dir, 'one'), { A: stack });
    assembly(join(dir, 'variants', 'dev'), { A: stack, B: stack });
    writeFileSync(join(dir, 'variants', 'prod.error.txt'), 'exit 1\nunknown context key "x"\n');
    mkdirSync(join(dir, 'templates'));
    writeFileSync(join(dir, 'templates', 'A.template.json'), JSON.stringify(stack));
    mkdirSync(join(dir, 'nothing-deployed'));
    writeFileSync(join(dir, 'nothing-deployed', DEPLOYED_LIST), '[]');

    expect(readSide(join(dir, 'one'))).toEqual({ variants: { '': { A: stack } }, failed: {} });
    expect(readSide(join(dir, 'variants'))).toEqual({
      variants: { dev: { A: stack, B: stack } },
      failed: { prod: 'exit 1 unknown context key "x"' },
    });
    expect(readSide(join(dir, 'templates'))).toEqual({ variants: { '': { A: stack } }, failed: {} });
    expect(readSide(join(dir, 'nothing-deployed'))).toEqual({ variants: { '': {} }, failed: {} });
  });

  it('refuses a folder with nothing to compare, naming it and what is expected', () => {
    mkdirSync(join(dir, 'empty'));
    expect(() => readSide(join(dir, 'empty'))).toThrow(
      /empty: no manifest.json, no variant folder and no \*.template.json; expected a cloud assembly/,
    );
    expect(() => readSide(join(dir, 'missing'))).toThrow(/missing: not a folder/);
  });

  it('parses its arguments and refuses bad ones with the usage', () => {
    expect(parseDiffArgs(['--base', 'b', '--head', 'h', '--out', 'c.md'])).toMatchObject({
      base: 'b',
      head: 'h',
      out: 'c.md',
    });
    expect(() => parseDiffArgs(['--head', 'h'])).toThrow(/--base is required\nusage: npm run pr:diff/);
    expect(() => parseDiffArgs(['--base'])).toThrow(/--base needs a value/);
    expect(() => parseDiffArgs(['--bse', 'b'])).toThrow(/unknown argument "--bse"/);
  });
});
