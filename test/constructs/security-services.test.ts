import { FOUNDATIONAL_STANDARD } from '../../lib/constructs/security-services';
import { build, VARIANTS } from '../helpers/synth';
import { logicalId, references, resources } from '../helpers/template';

/** The optional account-level services behind `s3DataEvents`, `guardDuty` and `securityHub`. */
describe('optional security services', () => {
  const dev = build(VARIANTS.dev);
  const prod = build(VARIANTS.prod);
  const everything = build(VARIANTS['prod-everything']);

  it('records every object read and write of the storage buckets in prod, and nothing in dev by default', () => {
    expect(resources(dev.template, 'AWS::CloudTrail::Trail')).toHaveLength(0);
    expect(resources(build({ ...VARIANTS.dev, s3DataEvents: 'true' }).template, 'AWS::CloudTrail::Trail')).toHaveLength(
      1,
    );
    expect(
      resources(build({ ...VARIANTS.prod, s3DataEvents: 'false' }).template, 'AWS::CloudTrail::Trail'),
    ).toHaveLength(0);
    const [[, trail]] = resources(prod.template, 'AWS::CloudTrail::Trail');
    const properties = trail.Properties as Record<string, any>;
    expect([
      properties.EnableLogFileValidation,
      properties.IsMultiRegionTrail,
      properties.IncludeGlobalServiceEvents,
    ]).toEqual([true, false, false]);
    expect(references(properties.KMSKeyId, logicalId(prod.stacks.keys.logs))).toBe(true);
    expect(references(properties.S3BucketName, logicalId(prod.stacks.storage.logBucket))).toBe(true);
    expect(JSON.stringify(properties.CloudWatchLogsLogGroupArn)).toContain('SecurityServicesDataEventsLogs');
    // Data events only: no management events, both buckets, reads and writes.
    const [selector] = properties.EventSelectors;
    expect([selector.IncludeManagementEvents, selector.ReadWriteType]).toEqual([false, 'All']);
    const buckets = JSON.stringify(selector.DataResources);
    expect(buckets).toContain('"AWS::S3::Object"');
    for (const bucket of [prod.stacks.storage.bucket, prod.stacks.storage.pluginBucket])
      expect(buckets).toContain(logicalId(bucket));
    // The trail's log group is encrypted with the logs key; CloudTrail may use the key for this account only.
    const [, group] = resources(prod.template, 'AWS::Logs::LogGroup').find(([id]) => id.includes('DataEventsLogs'))!;
    expect(references(group.Properties!.KmsKeyId, logicalId(prod.stacks.keys.logs))).toBe(true);
    const [, key] = resources(prod.template, 'AWS::KMS::Key').find(([id]) => id === logicalId(prod.stacks.keys.logs))!;
    const statement = (key.Properties as Record<string, any>).KeyPolicy.Statement.find(
      (s: { Sid?: string }) => s.Sid === 'CloudTrailDataEventsTrail',
    );
    expect(statement.Principal).toEqual({ Service: 'cloudtrail.amazonaws.com' });
    expect(statement.Condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
  });

  it('creates GuardDuty and Security Hub only when asked, as they exist once per account and region', () => {
    for (const built of [dev, prod]) {
      expect(resources(built.template, 'AWS::GuardDuty::Detector')).toHaveLength(0);
      expect(resources(built.template, 'AWS::SecurityHub::Hub')).toHaveLength(0);
    }
    const [[, detector]] = resources(everything.template, 'AWS::GuardDuty::Detector');
    const features = (detector.Properties as Record<string, any>).Features as Array<Record<string, any>>;
    expect(features.map((f) => [f.Name, f.Status])).toEqual([
      ['RUNTIME_MONITORING', 'ENABLED'],
      ['EKS_AUDIT_LOGS', 'ENABLED'],
      ['S3_DATA_EVENTS', 'ENABLED'],
    ]);
    expect(features[0].AdditionalConfiguration.map((c: { Name: string }) => c.Name)).toEqual([
      'ECS_FARGATE_AGENT_MANAGEMENT',
      'EKS_ADDON_MANAGEMENT',
    ]);
    const [[hubId, hub]] = resources(everything.template, 'AWS::SecurityHub::Hub');
    expect(hub.Properties).toEqual({ EnableDefaultStandards: false });
    const [[, standard]] = resources(everything.template, 'AWS::SecurityHub::Standard');
    expect(JSON.stringify(standard.Properties!.StandardsArn)).toContain(FOUNDATIONAL_STANDARD);
    expect(standard.DependsOn).toContain(hubId);
  });
});
