import { App, CfnResource, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { cdkProviderAcknowledgements } from '../../lib/nag/cdk-providers';
import { build, VARIANTS } from '../helpers/synth';
import { logicalId } from '../helpers/template';
import { synthesizedTemplates, templateFindings, type TemplateJson } from '../helpers/template-nag';

// "Zero findings" must hold for whoever reads the template (a reviewer running cdk-nag over
// cdk.out, or CloudFormation-side tooling), not only inside the app: the app's run matches rules
// to L2 classes, so CDK's own CfnResource-based providers slip past it.

describe('reading a template back through cloudformation-include', () => {
  const unencryptedBucket = (metadata?: Record<string, unknown>): TemplateJson => ({
    Resources: { Bucket: { Type: 'AWS::S3::Bucket', Properties: {}, ...(metadata ? { Metadata: metadata } : {}) } },
  });
  const acknowledgedS1 = {
    cdk_nag: { rules_to_suppress: [{ id: 'AwsSolutions-S1', reason: 'a probe: only this one id is acknowledged' }] },
  };

  it('reports an unacknowledged finding of the included template', () => {
    expect(templateFindings(unencryptedBucket())).toEqual(
      expect.arrayContaining(['AwsSolutions-S1 @ Bucket', 'NIST.800.53.R5-S3BucketLoggingEnabled @ Bucket']),
    );
  });

  it('honours Metadata.cdk_nag.rules_to_suppress, and only the ids it lists', () => {
    const findings = templateFindings(unencryptedBucket(acknowledgedS1));
    expect(findings).not.toContain('AwsSolutions-S1 @ Bucket');
    expect(findings).toContain('NIST.800.53.R5-S3BucketLoggingEnabled @ Bucket');
  });

  it('needs the translation: cdk-nag 3.0.2 alone ignores that metadata on included resources', () => {
    // If this starts failing, cdk-nag reads the template metadata itself and the translation in
    // test/helpers/template-nag.ts can go.
    expect(templateFindings(unencryptedBucket(acknowledgedS1), { honourAcknowledgements: false })).toContain(
      'AwsSolutions-S1 @ Bucket',
    );
  });
});

describe.each(Object.entries(VARIANTS))('the synthesized templates of variant %s', (_name, context) => {
  const built = build(context);
  const templates = synthesizedTemplates(built);
  const { stacks } = built.stacks;
  // `rule @ construct path (logical id)`, so a failure names the construct to fix or acknowledge.
  const paths = new Map(
    stacks.flatMap((stack) =>
      stack.node
        .findAll()
        .filter((construct): construct is CfnResource => CfnResource.isCfnResource(construct))
        .map((resource) => [logicalId(resource), resource.node.path] as const),
    ),
  );
  const readable = (finding: string) => {
    const [rule, id] = finding.split(' @ ');
    return `${rule} @ ${paths.get(id) ?? '?'} (${id})`;
  };

  it.each(Object.keys(templates))('%s has no unacknowledged finding in the three packs', (stackName) => {
    expect(templateFindings(templates[stackName]).map(readable)).toEqual([]);
  });

  it('acknowledges nothing on CDK’s own resources that the template does not report', () => {
    // Each acknowledgement must answer a finding a reader of the template would see; one that
    // answers nothing (CDK fixed the resource, or renamed a rule) would hide a future finding.
    const unanswered = stacks.flatMap((stack) => {
      const reported = new Set(templateFindings(templates[stack.stackName], { honourAcknowledgements: false }));
      return cdkProviderAcknowledgements(stack)
        .flatMap(({ resource, acknowledgements }) => acknowledgements.map((a) => `${a.id} @ ${logicalId(resource)}`))
        .filter((acknowledgement) => !reported.has(acknowledgement));
    });
    expect(stacks.flatMap((stack) => cdkProviderAcknowledgements(stack)).length).toBeGreaterThan(0);
    expect(unanswered.map(readable)).toEqual([]);
  });
});

describe('acknowledging CDK’s providers', () => {
  it('lands on the CfnResources that become the role and the function', () => {
    const stack = new Stack(new App(), 'Probe');
    new ec2.Vpc(stack, 'Vpc', { restrictDefaultSecurityGroup: true, natGateways: 0, maxAzs: 1 });
    const types = cdkProviderAcknowledgements(stack).map(({ resource }) => resource.cfnResourceType);
    expect(types).toEqual(['AWS::IAM::Role', 'AWS::Lambda::Function', 'AWS::EC2::VPC']);
  });

  it('fails loudly when a custom resource of CDK’s has no provider where CDK used to put it', () => {
    // What a CDK upgrade that renames the singleton would look like: the acknowledgement must not rot silently.
    const stack = new Stack(new App(), 'Probe');
    new CfnResource(stack, 'AutoDelete', { type: 'Custom::S3AutoDeleteObjects' });
    expect(() => cdkProviderAcknowledgements(stack)).toThrow(
      /no provider 'Custom::S3AutoDeleteObjectsCustomResourceProvider'/,
    );
  });
});
