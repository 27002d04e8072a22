import { build, VARIANTS } from '../helpers/synth';
import { logicalId, references, resources, strings } from '../helpers/template';
import { scanForSecrets } from '../helpers/secret-scan';

describe.each(Object.entries(VARIANTS))('security invariants of variant %s', (_name, context) => {
  const { template, templates, stacks } = build(context);
  const json = template.toJSON();
  const everyTemplate = Object.values(templates);

  it('encrypts every log group with KMS and gives it a retention', () => {
    const groups = everyTemplate.flatMap((t) => resources(t, 'AWS::Logs::LogGroup'));
    expect(groups.length).toBeGreaterThan(0);
    for (const [id, group] of groups) {
      expect({ id, kms: group.Properties?.KmsKeyId !== undefined }).toEqual({ id, kms: true });
      expect({ id, retention: typeof group.Properties?.RetentionInDays }).toEqual({ id, retention: 'number' });
    }
  });

  it('runs every Lambda, CDK’s own included, on Node 22 or later (Python 3.13 or later for EKS’s kubectl)', () => {
    for (const [id, fn] of everyTemplate.flatMap((t) => resources(t, 'AWS::Lambda::Function'))) {
      const runtime = String(fn.Properties?.Runtime);
      const node = Number(/^nodejs(\d+)\.x$/.exec(runtime)?.[1]);
      // CDK's kubectl handler (platform=eks) is the one Python function: kubectl and helm are its layer.
      const python = /KubectlProviderHandler/.test(id) ? Number(/^python3\.(\d+)$/.exec(runtime)?.[1]) : NaN;
      expect({ id, runtime, supported: node >= 22 || python >= 13 }).toEqual({ id, runtime, supported: true });
    }
  });

  it('has no secret-looking literal anywhere in the template', () => {
    for (const t of everyTemplate) expect(scanForSecrets(t.toJSON())).toEqual([]);
  });

  it('keeps one generated secret per purpose, each under the secrets key', () => {
    const secrets = resources(template, 'AWS::SecretsManager::Secret');
    // SECRET_KEY, sandbox key, plugin daemon key, plugin inner key, INIT_PASSWORD, the three Valkey
    // users (dify, plugin daemon, gateway), the master, dify and dify_plugin database credentials,
    // the LLM gateway's pepper, and its three documents (a placeholder the gateway reads as empty):
    // every one generated, none carrying a SecretString, so no value of any secret is in the template.
    // 14 since issue 10: INIT_PASSWORD got its own secret, and the one Valkey AUTH token became three
    // users' secrets; the two documents no longer carry their empty document as a literal. 15 since
    // the pepper rotates: the gateway's rehashes of client keys under a new pepper are a document of
    // their own, the one secret the gateway writes. With email=true, 16: the SES SMTP credentials,
    // a generated placeholder until the deploy-time function writes them.
    expect(secrets).toHaveLength(stacks.email === undefined ? 15 : 16);
    for (const [id, secret] of secrets) {
      expect({ id, generated: secret.Properties?.GenerateSecretString !== undefined }).toEqual({ id, generated: true });
      expect(secret.Properties?.SecretString).toBeUndefined();
      expect(references(secret.Properties?.KmsKeyId, logicalId(stacks.keys.secrets))).toBe(true);
    }
  });

  it('generates a SECRET_KEY of at least 42 characters', () => {
    const secret = json.Resources[logicalId(stacks.secrets.secretKey)];
    expect(secret.Properties.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(42);
  });

  it('never writes a secret to an SSM parameter', () => {
    // The only SSM parameters are CDK's cross-region references (ARNs of the web ACL and certificate)
    // and, on EKS, the kubectl provider's readiness barrier, whose value is a constant.
    for (const t of everyTemplate) {
      for (const [id, parameter] of resources(t, 'AWS::SSM::Parameter')) {
        if (/KubectlReadyBarrier/.test(id)) {
          expect({ id, value: parameter.Properties?.Value }).toEqual({ id, value: 'aws:cdk:eks:kubectl-ready' });
          continue;
        }
        expect({ id, name: String(parameter.Properties?.Name) }).toEqual({
          id,
          name: expect.stringMatching(/^\/cdk\/exports\//),
        });
      }
    }
  });

  it('resolves secrets only where AWS needs the value, never in an output', () => {
    const dynamic = Object.entries(json.Resources as Record<string, { Properties?: unknown }>).flatMap(([id, r]) =>
      strings(r.Properties)
        .filter((s) => s.includes('{{resolve:secretsmanager:'))
        .map(() => id),
    );
    // Only the cluster's master password and the Valkey users' passwords are resolved by CloudFormation.
    expect(new Set(dynamic)).toEqual(
      new Set([logicalId(stacks.database.cluster), ...Object.values(stacks.cache.users).map((u) => logicalId(u.user))]),
    );
    for (const value of strings(json.Outputs)) expect(value).not.toContain('{{resolve:');
  });

  it('outputs secret ARNs only', () => {
    const outputs = json.Outputs as Record<string, { Value: unknown }>;
    const secretOutputs = Object.entries(outputs).filter(([name]) => name.endsWith('SecretArn'));
    expect(secretOutputs.length).toBeGreaterThanOrEqual(8);
    const secretIds = new Set(resources(template, 'AWS::SecretsManager::Secret').map(([id]) => id));
    const attachmentIds = new Set(resources(template, 'AWS::SecretsManager::SecretTargetAttachment').map(([id]) => id));
    for (const [name, output] of secretOutputs) {
      const ref = (output.Value as { Ref?: string }).Ref;
      expect({ name, isSecretRef: ref !== undefined && (secretIds.has(ref) || attachmentIds.has(ref)) }).toEqual({
        name,
        isSecretRef: true,
      });
    }
  });
});

describe('the secret scanner', () => {
  // A check that cannot fail proves nothing: plant secrets and make sure each is caught.
  const planted: Array<[string, unknown]> = [
    ['a literal password property', { Resources: { X: { Properties: { MasterUserPassword: 'hunter2hunter2' } } } }],
    ['an access key id', { Resources: { X: { Properties: { Environment: { KEY: 'AKIAABCDEFGHIJKLMNOP' } } } } }],
    ['a private key', { Outputs: { Key: { Value: '-----BEGIN RSA PRIVATE KEY-----\nabc' } } }],
    [
      'a broker URL with a password',
      { Resources: { X: { Properties: { Url: 'rediss://:s3cr3tT0ken@host:6379/1' } } } },
    ],
    [
      'a generated-looking token',
      { Resources: { X: { Properties: { Value: 'q8Zr2LmT4vXw9BnK3cYp7JdH6sFg1RaE5uWo0' } } } },
    ],
  ];
  it.each(planted)('catches %s', (_name, template) => {
    expect(scanForSecrets(template as Record<string, unknown>).length).toBeGreaterThan(0);
  });

  it('lets a URL whose password is a shell variable through, but not one that merely starts with $', () => {
    const url = (value: string) => ({ Resources: { X: { Properties: { Command: [value] } } } });
    expect(scanForSecrets(url('rediss://:$REDIS_PASSWORD@$REDIS_HOST:6379/1'))).toEqual([]);
    expect(scanForSecrets(url('rediss://:${REDIS_PASSWORD}@host:6379/1'))).toEqual([]);
    expect(scanForSecrets(url('rediss://:$s3cr3t-T0ken@host:6379/1')).length).toBeGreaterThan(0);
  });
});
