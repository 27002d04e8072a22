import { Match } from 'aws-cdk-lib/assertions';
import { DIFY_RELEASE } from '../../contracts/dify-release';
import { environmentOf } from '../../lib/constructs/dify/catalog';
import { SMTP_PORT } from '../../lib/constructs/email';
import { appliedManifests } from '../helpers/kubernetes';
import { scanForSecrets } from '../helpers/secret-scan';
import { build, task, VARIANTS } from '../helpers/synth';
import { logicalId, references, resources } from '../helpers/template';
import { placeholderWiring } from '../helpers/wiring';

/**
 * E-mail through Amazon SES (configuration key email, on in the prod-everything variant): the domain
 * is verified by DKIM records in its zone, the SMTP user can send only Dify's mail, its credentials
 * exist only in an encrypted secret, and only the api and the worker get them and reach SES.
 */
describe('e-mail through Amazon SES', () => {
  const built = build(VARIANTS['prod-everything']);
  const { template } = built;
  const email = built.stacks.email!;
  const json = template.toJSON();
  const foundation = built.templates[`${built.stacks.placement.foundation.stackName}`];
  const secretId = logicalId(email.secret);

  it('verifies dify.example.com (not the zone apex) with 2048-bit Easy DKIM and a MAIL FROM domain', () => {
    template.hasResourceProperties('AWS::SES::EmailIdentity', {
      EmailIdentity: 'dify.example.com',
      DkimAttributes: { SigningEnabled: true },
      DkimSigningAttributes: { NextSigningKeyLength: 'RSA_2048_BIT' },
      MailFromAttributes: { MailFromDomain: 'bounce.dify.example.com', BehaviorOnMxFailure: 'USE_DEFAULT_VALUE' },
      FeedbackAttributes: { EmailForwardingEnabled: false },
      ConfigurationSetAttributes: { ConfigurationSetName: { Ref: logicalId(email.configurationSet) } },
    });
  });

  it('writes the three DKIM CNAMEs and the MAIL FROM MX and SPF records into the configured zone', () => {
    // Why: without them SES never verifies the domain, and receivers fail DMARC on Dify's mail.
    const identity = logicalId(email.identity);
    const records = resources(foundation, 'AWS::Route53::RecordSet').map(([, r]) => r.Properties!);
    const dkim = records.filter((r) => r.Type === 'CNAME');
    expect(dkim).toHaveLength(3);
    for (const [index, record] of dkim.entries()) {
      expect(record.HostedZoneId).toBe('Z0123456789ABCDEFGHIJ');
      expect(record.Name).toEqual({ 'Fn::GetAtt': [identity, `DkimDNSTokenName${index + 1}`] });
      expect(record.ResourceRecords).toEqual([{ 'Fn::GetAtt': [identity, `DkimDNSTokenValue${index + 1}`] }]);
    }
    const mx = records.find((r) => r.Type === 'MX')!;
    expect(mx).toMatchObject({ Name: 'bounce.dify.example.com.', HostedZoneId: 'Z0123456789ABCDEFGHIJ' });
    expect(JSON.stringify(mx.ResourceRecords)).toContain('feedback-smtp.eu-west-1.amazonses.com');
    const spf = records.find((r) => r.Type === 'TXT')!;
    expect(spf).toMatchObject({
      Name: 'bounce.dify.example.com.',
      ResourceRecords: ['"v=spf1 include:amazonses.com ~all"'],
    });
  });

  it('delivers over TLS only, with reputation metrics and suppression of bounces and complaints', () => {
    template.hasResourceProperties('AWS::SES::ConfigurationSet', {
      DeliveryOptions: { TlsPolicy: 'REQUIRE' },
      ReputationOptions: { ReputationMetricsEnabled: true },
      SendingOptions: { SendingEnabled: true },
      SuppressionOptions: { SuppressedReasons: Match.arrayWith(['BOUNCE', 'COMPLAINT']) },
    });
  });

  it('lets the SMTP user send raw mail from the one sender through this identity, and do nothing else', () => {
    // Why: the SMTP key is a long-term credential; leaked, it must not send as anyone else or call any other API.
    const [[userId, user]] = resources(template, 'AWS::IAM::User');
    expect(user.Properties?.Policies).toBeUndefined();
    expect(user.Properties?.ManagedPolicyArns).toBeUndefined();
    const [[groupId, group]] = resources(template, 'AWS::IAM::Group');
    expect(JSON.stringify(user.Properties?.Groups)).toContain(groupId);
    expect(group.Properties?.Policies).toBeUndefined();
    const policies = resources(template, 'AWS::IAM::ManagedPolicy').filter(([id]) =>
      references(group.Properties?.ManagedPolicyArns, id),
    );
    expect(policies).toHaveLength(1);
    expect((group.Properties?.ManagedPolicyArns as unknown[]).length).toBe(1);
    const statements = (policies[0][1].Properties!.PolicyDocument as { Statement: unknown[] }).Statement;
    expect(statements).toEqual([
      {
        Sid: 'SendFromDifysSenderOnly',
        Effect: 'Allow',
        Action: 'ses:SendRawEmail',
        Resource: [expect.anything(), expect.anything()],
        Condition: { StringEquals: { 'ses:FromAddress': 'no-reply@dify.example.com' } },
      },
    ]);
    const resourcesText = JSON.stringify((statements[0] as { Resource: unknown }).Resource);
    expect(resourcesText).toContain(':identity/');
    expect(resourcesText).toContain(logicalId(email.identity));
    expect(resourcesText).toContain(':configuration-set/');
    expect(resourcesText).not.toContain('*');
    // No inline policy names the user either.
    for (const [, policy] of resources(template, 'AWS::IAM::Policy')) {
      expect(references(policy.Properties?.Users, userId)).toBe(false);
    }
  });

  it('keeps the credentials in a secret encrypted with the secrets key, filled by the deploy-time function', () => {
    const secret = json.Resources[secretId];
    expect(secret.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [logicalId(built.stacks.keys.secrets), 'Arn'] });
    // CloudFormation generates a placeholder; the function overwrites it. No value is in the template.
    expect(secret.Properties.SecretString).toBeUndefined();
    const [[, credentials]] = resources(template, 'Custom::DifySesSmtpCredentials');
    expect(credentials.Properties).toMatchObject({
      UserName: { Ref: logicalId(email.user) },
      SecretArn: { Ref: secretId },
      Region: 'eu-west-1',
      Generation: '1',
    });
    expect(json.Outputs.SmtpSecretArn.Value).toEqual({ Ref: secretId });
  });

  it('lets the credentials function manage keys of the SMTP user only, and write only its secret', () => {
    const roleId = logicalId(built.stacks.email!.node.findChild('CredentialsRole').node.findChild('Resource'));
    const statements = resources(template, 'AWS::IAM::Policy')
      .filter(([, p]) => references(p.Properties?.Roles, roleId))
      .flatMap(([, p]) => (p.Properties!.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement);
    const iamStatement = statements.find((s) => JSON.stringify(s.Action).includes('iam:'))!;
    expect(iamStatement.Action).toEqual(['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:ListAccessKeys']);
    expect(iamStatement.Resource).toEqual({ 'Fn::GetAtt': [logicalId(email.user), 'Arn'] });
    const put = statements.find((s) => JSON.stringify(s.Action).includes('secretsmanager:PutSecretValue'))!;
    expect(put.Resource).toEqual({ Ref: secretId });
  });

  it('leaves no credential in any template of the deployment', () => {
    // Why: the access key and its SMTP password are made at deploy time and must exist only in the secret.
    for (const [name, each] of Object.entries(built.templates)) {
      expect({ name, findings: scanForSecrets(each.toJSON()) }).toEqual({ name, findings: [] });
    }
  });

  it.each(['api', 'worker'] as const)(
    'wires SES SMTP with STARTTLS into the %s, credentials as ECS secrets',
    (service) => {
      const definition = resources(template, 'AWS::ECS::TaskDefinition').find(
        ([id]) => id === logicalId(task(built, service).taskDefinition),
      )![1];
      const container = (definition.Properties!.ContainerDefinitions as Array<Record<string, any>>)[0];
      const environment = Object.fromEntries(
        (container.Environment as Array<{ Name: string; Value: unknown }>).map((e) => [e.Name, e.Value]),
      );
      expect(environment).toMatchObject({
        MAIL_TYPE: 'smtp',
        MAIL_DEFAULT_SEND_FROM: 'no-reply@dify.example.com',
        SMTP_SERVER: 'email-smtp.eu-west-1.amazonaws.com',
        SMTP_PORT: '587',
        SMTP_USE_TLS: 'true',
        SMTP_OPPORTUNISTIC_TLS: 'true',
      });
      expect(environment.SMTP_USERNAME).toBeUndefined();
      expect(environment.SMTP_PASSWORD).toBeUndefined();
      const secrets = Object.fromEntries(
        (container.Secrets as Array<{ Name: string; ValueFrom: unknown }>).map((s) => [
          s.Name,
          JSON.stringify(s.ValueFrom),
        ]),
      );
      expect(secrets.SMTP_USERNAME).toContain(':username::');
      expect(secrets.SMTP_PASSWORD).toContain(':password::');
      expect(secrets.SMTP_PASSWORD).toContain(secretId);
    },
  );

  it('gives the SMTP settings to no other service', () => {
    for (const service of ['worker_beat', 'web', 'sandbox', 'plugin_daemon', 'ssrf_proxy', 'migration'] as const) {
      const text = JSON.stringify(
        resources(template, 'AWS::ECS::TaskDefinition').find(
          ([id]) => id === logicalId(task(built, service).taskDefinition),
        )![1],
      );
      expect({ service, smtp: /SMTP_|MAIL_TYPE/.test(text) || text.includes(secretId) }).toEqual({
        service,
        smtp: false,
      });
    }
  });

  it('admits 587 to the SMTP endpoint from the api and the worker only, in zones chosen at deploy', () => {
    // Why: the tasks have no route to the internet; the endpoint is their one way to SES, and no other service's.
    const endpointGroup = logicalId(email.endpoint.connections.securityGroups[0]);
    const ingress = resources(template, 'AWS::EC2::SecurityGroupIngress')
      .filter(([, r]) => references(r.Properties?.GroupId, endpointGroup))
      .map(([, r]) => r.Properties!);
    const senders = ['api', 'worker'].map((s) => logicalId(task(built, s as 'api').securityGroup));
    expect(ingress.map((r) => [r.FromPort, r.ToPort])).toEqual([
      [SMTP_PORT, SMTP_PORT],
      [SMTP_PORT, SMTP_PORT],
    ]);
    expect(ingress.map((r) => (r.SourceSecurityGroupId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]).sort()).toEqual(
      senders.sort(),
    );
    const endpoint = json.Resources[logicalId(email.endpoint)];
    expect(endpoint.Properties).toMatchObject({
      ServiceName: 'com.amazonaws.eu-west-1.email-smtp',
      PrivateDnsEnabled: true,
      SubnetIds: { 'Fn::Split': [',', { 'Fn::GetAtt': [expect.any(String), 'SubnetIds'] }] },
    });
  });

  it('creates nothing of it without email=true', () => {
    const plain = build(VARIANTS.prod).template;
    for (const type of ['AWS::SES::EmailIdentity', 'AWS::IAM::User', 'Custom::DifySesSmtpCredentials']) {
      expect({ type, count: resources(plain, type).length }).toEqual({ type, count: 0 });
    }
    expect(JSON.stringify(plain.toJSON())).not.toContain('SMTP_');
  });
});

describe('e-mail through Amazon SES on EKS', () => {
  const built = build({ ...VARIANTS['eks-prod'], email: 'true' });
  const objects = appliedManifests(built.template).flatMap((manifest) => manifest.objects);

  it('lets the api and worker pods, and no other, reach the SMTP endpoint’s subnets on 587', () => {
    // Why: on EKS every pod shares the cluster's security group; the network policies are what keep
    // the other services (the sandbox, which runs user code, above all) away from SES.
    const privateCidrs = built.stacks.network.vpc.privateSubnets.map((subnet) => subnet.ipv4CidrBlock);
    const reaching = objects
      .filter((object) => object.kind === 'NetworkPolicy')
      .flatMap((policy) =>
        ((policy.spec.egress as Array<Record<string, any>>) ?? [])
          .filter((rule) => (rule.ports ?? []).some((port: { port?: number }) => port.port === SMTP_PORT))
          .map((rule) => ({ policy: policy.metadata.name, to: rule.to.map((peer: any) => peer.ipBlock?.cidr) })),
      );
    expect(reaching).toEqual([
      { policy: 'api-egress', to: privateCidrs },
      { policy: 'worker-egress', to: privateCidrs },
    ]);
    const endpointGroup = logicalId(built.stacks.email!.endpoint.connections.securityGroups[0]);
    // The pods' security groups (the cluster's and its control plane's, which every pod shares), 587 only.
    const ingress = resources(built.template, 'AWS::EC2::SecurityGroupIngress')
      .filter(([, rule]) => references(rule.Properties?.GroupId, endpointGroup))
      .map(([, rule]) => rule.Properties!);
    expect(ingress.map((rule) => [rule.FromPort, rule.ToPort])).toEqual([
      [SMTP_PORT, SMTP_PORT],
      [SMTP_PORT, SMTP_PORT],
    ]);
    expect(
      ingress.map((rule) => (rule.SourceSecurityGroupId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'].join('.')).sort(),
    ).toEqual([
      expect.stringMatching(/^DifyEksClusterControlPlaneSecurityGroup[0-9A-F]{8}\.GroupId$/),
      expect.stringMatching(/^DifyEksCluster[0-9A-F]{8}\.ClusterSecurityGroupId$/),
    ]);
  });

  it('mounts the SMTP credentials into the api and worker pods only, from the secret', () => {
    const deployments = objects.filter((object) => object.kind === 'Deployment');
    const mentioning = deployments
      .filter((deployment) => JSON.stringify(deployment).includes('SMTP_PASSWORD'))
      .map((deployment) => deployment.metadata.name)
      .sort();
    expect(mentioning).toEqual(['api', 'worker']);
    for (const deployment of deployments.filter((d) => mentioning.includes(d.metadata.name))) {
      // The value is never in the pod spec: it is read from the mounted secret at start.
      expect(JSON.stringify(deployment)).not.toMatch(/"name":"SMTP_PASSWORD","value"/);
    }
  });
});

describe('the e-mail variables against the pinned release’s contract', () => {
  const wiring = {
    ...placeholderWiring(),
    email: { server: 'email-smtp.eu-west-1.amazonaws.com', port: SMTP_PORT, from: 'no-reply@dify.example.com' },
  };
  const mailVariable = /^(MAIL_|SMTP_)/;

  it.each(['api', 'worker'] as const)(
    'sets in the %s only mail variables the release reads, secrets as secrets',
    (service) => {
      const contract = DIFY_RELEASE.services[service].env as Record<string, { secret: boolean }>;
      const given = environmentOf(service, wiring);
      const plain = Object.keys(given.environment).filter((name) => mailVariable.test(name));
      const secret = Object.keys(given.secrets).filter((name) => mailVariable.test(name));
      expect(plain.sort()).toEqual(
        [
          'MAIL_DEFAULT_SEND_FROM',
          'MAIL_TYPE',
          'SMTP_OPPORTUNISTIC_TLS',
          'SMTP_PORT',
          'SMTP_SERVER',
          'SMTP_USE_TLS',
        ].sort(),
      );
      expect(secret.sort()).toEqual(['SMTP_PASSWORD', 'SMTP_USERNAME']);
      for (const name of plain)
        expect({ name, read: name in contract, secret: contract[name]?.secret }).toEqual({
          name,
          read: true,
          secret: false,
        });
      for (const name of secret)
        expect({ name, read: name in contract, secret: contract[name]?.secret }).toEqual({
          name,
          read: true,
          secret: true,
        });
      expect(given.secrets.SMTP_USERNAME).toEqual({ secret: 'smtp', field: 'username' });
      expect(given.secrets.SMTP_PASSWORD).toEqual({ secret: 'smtp', field: 'password' });
    },
  );

  it.each(['worker_beat', 'migration', 'web', 'sandbox', 'plugin_daemon', 'ssrf_proxy'] as const)(
    'gives %s no mail variable',
    (service) => {
      const given = environmentOf(service, wiring);
      expect(
        [...Object.keys(given.environment), ...Object.keys(given.secrets)].filter((n) => mailVariable.test(n)),
      ).toEqual([]);
    },
  );
});
