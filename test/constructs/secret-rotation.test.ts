import { Stack } from 'aws-cdk-lib';
import { RotationConfig } from '../../contracts/rotation';
import { SECRETS, scheduled, type SecretEntry } from '../../contracts/secrets';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { DEFAULT_ROTATION_SCHEDULE } from '../../lib/config/schema';
import { build, type Built, VARIANTS } from '../helpers/synth';
import { resources, strings } from '../helpers/template';

/**
 * Every rotatable secret rotates on the deployment's schedule, by the stack's rotation function, on
 * both platforms; the acknowledgements that once said "operator step" are gone; the function can
 * restart exactly the secrets' consumers and nothing else.
 */
const ecs = build({ profile: 'dev', rotationSchedule: 'rate(30 days)', rotationWindowHours: '2' });
const eks = build(VARIANTS['eks-dev']);

/** The secret's ARN output value in the merged template: a `Ref` to the secret's logical id. */
function secretRef(built: Built, output: string): unknown {
  const outputs = built.template.toJSON().Outputs as Record<string, { Value: unknown }>;
  return outputs[output].Value;
}

const schedules = (built: Built) => resources(built.template, 'AWS::SecretsManager::RotationSchedule');

describe.each([
  ['ecs', ecs, { ScheduleExpression: 'rate(30 days)', Duration: '2h' }],
  ['eks', eks, { ScheduleExpression: DEFAULT_ROTATION_SCHEDULE, Duration: '3h' }],
])('scheduled rotation (%s)', (_platform, built, rules) => {
  const rotationFunction = resources(built.template, 'AWS::Lambda::Function').find(([id]) =>
    id.startsWith('SecretRotationFunction'),
  )!;

  it.each(scheduled().map(({ id, entry }) => [id, entry] as const))(
    '%s has exactly one schedule, in the deployment’s window, by the rotation function',
    (_id, entry: SecretEntry) => {
      const mine = schedules(built).filter(
        ([, r]) => JSON.stringify(r.Properties!.SecretId) === JSON.stringify(secretRef(built, entry.output)),
      );
      expect(mine).toHaveLength(1);
      const props = mine[0][1].Properties!;
      expect(props.RotationRules).toEqual(rules);
      expect(props.RotateImmediatelyOnUpdate).toBe(false);
      expect(props.RotationLambdaARN).toEqual({ 'Fn::GetAtt': [rotationFunction[0], 'Arn'] });
    },
  );

  it('schedules every secret of the catalogue that can rotate, and no other', () => {
    // The catalogue's exceptions, each with its reason: SECRET_KEY (on demand only), the /install
    // password (used once), the gateway's documents.
    const notScheduled = Object.entries(SECRETS as Record<string, SecretEntry>)
      .filter(([, e]) => e.rotation.by !== 'schedule' && e.rotation.by !== 'hosted')
      .map(([id, e]) => `${id}: ${e.rotation.by}`);
    expect(notScheduled.sort()).toEqual([
      'gatewayClients: document',
      'gatewayProviderKeys: document',
      'gatewayRehash: document',
      'initPassword: never',
      'secretKey: cli',
      // SES's SMTP password is derived from an IAM access key, and IAM has no VPC endpoint for the
      // in-VPC rotation function: a deploy rotates it (emailCredentialsGeneration).
      'smtp: deploy',
    ]);
    // The scheduled ones, plus the master's hosted rotation.
    expect(schedules(built)).toHaveLength(scheduled().length + 1);
  });

  it('lets Secrets Manager invoke the function only for these secrets, from this account', () => {
    const permissions = resources(built.template, 'AWS::Lambda::Permission').filter(
      ([, r]) => r.Properties!.Principal === 'secretsmanager.amazonaws.com',
    );
    const mine = permissions.filter(
      ([, r]) =>
        JSON.stringify(r.Properties!.FunctionName) === JSON.stringify({ 'Fn::GetAtt': [rotationFunction[0], 'Arn'] }),
    );
    expect(mine.map(([, r]) => JSON.stringify(r.Properties!.SourceArn)).sort()).toEqual(
      scheduled()
        .map(({ entry }) => JSON.stringify(secretRef(built, entry.output)))
        .sort(),
    );
    for (const [, r] of mine) expect(r.Properties!.SourceAccount).toEqual({ Ref: 'AWS::AccountId' });
  });

  it('runs in the private subnets, and may restart exactly the consumers of the rotated secrets', () => {
    const props = rotationFunction[1].Properties!;
    expect(props.VpcConfig).toBeDefined();
    expect(props.Timeout).toBe(900);
    const role = (props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const [, policy] = resources(built.template, 'AWS::IAM::Policy').find(([, p]) =>
      JSON.stringify(p.Properties!.Roles).includes(role),
    )!;
    const statements = (policy.Properties!.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement;
    const restart = statements.find((s) => s.Sid === 'RestartTheirConsumers');
    const readers = new Set(scheduled().flatMap(({ entry }) => entry.consumers));
    const ecsServices = resources(built.template, 'AWS::ECS::Service');
    const onEcs = [...readers].filter((id) => ecsServices.some(([logical]) => logical.includes(`${id}Service`)));
    expect([restart?.Resource ?? []].flat()).toHaveLength(onEcs.length);
    // Network interfaces in the VPC are the one action without resource-level permissions.
    for (const statement of statements.filter((s) => s.Sid !== 'VpcNetworkInterfaces')) {
      expect(statement.Action).not.toContain('*');
      expect(JSON.stringify(statement.Resource)).not.toBe('"*"');
    }
  });

  it('fits its configuration in Lambda’s 4 KB of environment, with every name at a generous length', () => {
    const variables = (rotationFunction[1].Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
    const parts = (variables.ROTATION as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
    // An ARN is at most about 110 characters here; a generated name 64. The gateway's secrets are
    // named for what they hold (Pepper, Clients, Rehash).
    const SECRET_REF = /Secret|Key|Pepper|Clients|Rehash/;
    const estimate = parts.reduce<number>(
      (n, part) => n + (typeof part === 'string' ? part.length : SECRET_REF.test(JSON.stringify(part)) ? 110 : 64),
      0,
    );
    expect(estimate).toBeLessThan(4096);
    // The literal parts, put back together with placeholders, are the RotationConfig the function parses.
    const text = parts
      .map((part) =>
        typeof part === 'string'
          ? part
          : SECRET_REF.test(JSON.stringify(part))
            ? 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x'
            : 'name',
      )
      .join('');
    const parsed = RotationConfig.safeParse(JSON.parse(text.replace(/"port":"name"/, '"port":6379')));
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it('outputs the function’s name, which `secrets rotate` invokes to finish an interrupted rotation', () => {
    const outputs = built.template.toJSON().Outputs as Record<string, unknown>;
    expect(outputs[OUTPUTS.secretRotationFunctionName]).toBeDefined();
  });
});

describe('the rotation acknowledgements', () => {
  it('say no more that rotation is an operator step, and each scheduled secret’s names its schedule', () => {
    for (const built of [ecs, eks]) {
      const text = strings(built.template.toJSON());
      expect(text.filter((s) => /rotation is an operator step|The operator rotates it/.test(s))).toEqual([]);
      const secrets = resources(built.template, 'AWS::SecretsManager::Secret');
      for (const { entry } of scheduled()) {
        const ref = secretRef(built, entry.output) as { Ref: string };
        const [, secret] = secrets.find(([id]) => id === ref.Ref)!;
        const reasons = JSON.stringify(secret.Metadata ?? {});
        expect(reasons).toContain("Rotates on the deployment's schedule");
      }
    }
  });

  it('lives in the main stack, where the consumers are', () => {
    const main = ecs.stacks.main;
    const fn = main.node.tryFindChild('SecretRotation');
    expect(fn).toBeDefined();
    expect(Stack.of(fn!)).toBe(main);
  });
});
