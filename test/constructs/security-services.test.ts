import { ECR_PULL } from '../../lib/constructs/network';
import { DifyTask, GUARDDUTY_AGENT_REPOSITORY } from '../../lib/constructs/runtime/ecs-task';
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

  // Why: with guardDuty=true, GuardDuty injects its agent into every Fargate task, but the execution
  // roles could pull only this deployment's images, the ECR endpoints admitted only this account's
  // repositories, and the tasks' security groups reached only this stack's endpoints: the agent could
  // neither start nor report (found by review).
  describe('GuardDuty’s Fargate agent', () => {
    const tasksOf = (built: typeof dev) =>
      built.app.node.findAll().filter((construct): construct is DifyTask => construct instanceof DifyTask);
    const egressOf = (built: typeof dev, task: DifyTask) => {
      const id = logicalId(task.securityGroup);
      const inline = resources(built.template, 'AWS::EC2::SecurityGroup').find(([sg]) => sg === id)![1].Properties!
        .SecurityGroupEgress as Array<Record<string, any>> | undefined;
      const separate = resources(built.template, 'AWS::EC2::SecurityGroupEgress')
        .filter(([, rule]) => references(rule.Properties!.GroupId, id))
        .map(([, rule]) => rule.Properties as Record<string, any>);
      return [...(inline ?? []), ...separate];
    };
    const agentEgress = (rules: Array<Record<string, any>>) =>
      rules.filter((rule) => String(rule.Description).includes('GuardDuty'));
    const pullsAgent = (built: typeof dev, task: DifyTask) => {
      const role = logicalId(task.taskDefinition.obtainExecutionRole());
      return resources(built.template, 'AWS::IAM::Policy')
        .filter(([, policy]) => references(policy.Properties!.Roles, role))
        .flatMap(([, policy]) => (policy.Properties as Record<string, any>).PolicyDocument.Statement)
        .filter((statement: Record<string, any>) =>
          JSON.stringify(statement.Resource).includes(GUARDDUTY_AGENT_REPOSITORY),
        );
    };
    const ecrPolicies = (built: typeof dev) =>
      ['EcrApi', 'EcrDocker'].map(
        (name) =>
          (
            resources(built.template, 'AWS::EC2::VPCEndpoint').find(
              ([id]) => id === logicalId(built.stacks.network.interfaceEndpoints[name]),
            )![1].Properties as Record<string, any>
          ).PolicyDocument.Statement as Array<Record<string, any>>,
      );

    it('is pulled by every task’s execution role from GuardDuty’s repository, pulls only', () => {
      const tasks = tasksOf(everything);
      expect(tasks.length).toBeGreaterThanOrEqual(9);
      for (const task of tasks) {
        const [statement, ...more] = pullsAgent(everything, task);
        expect(more).toEqual([]);
        expect(statement.Action).toEqual([...ECR_PULL]);
        // CDK merges it with the pull of the task's own image (same actions): that repository, and GuardDuty's.
        const granted = [statement.Resource].flat();
        expect(granted).toContainEqual({
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':ecr:',
              { Ref: 'AWS::Region' },
              `:*:repository/${GUARDDUTY_AGENT_REPOSITORY}`,
            ],
          ],
        });
        for (const other of granted.filter(
          (resource) => !JSON.stringify(resource).includes(GUARDDUTY_AGENT_REPOSITORY),
        ))
          expect(JSON.stringify(other)).toContain('container-assets');
      }
    });

    it('reaches GuardDuty’s endpoint in the VPC on 443 from every task, by one rule', () => {
      const vpc = logicalId(everything.stacks.network.vpc);
      for (const task of tasksOf(everything)) {
        const rules = agentEgress(egressOf(everything, task));
        expect(rules).toHaveLength(1);
        expect(rules[0]).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 });
        expect(references(rules[0].CidrIp, vpc)).toBe(true);
        expect(JSON.stringify(rules[0].CidrIp)).toContain('CidrBlock');
      }
    });

    it('is pulled through the ECR endpoints, which let this account’s principals pull AWS’s images and nothing more', () => {
      for (const statements of ecrPolicies(everything)) {
        const pull = statements.find((statement) => statement.Sid === 'PullAwsImages')!;
        expect(pull).toMatchObject({
          Effect: 'Allow',
          Action: [...ECR_PULL],
          Resource: '*',
          Condition: { StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } },
        });
        // Every other call still names this account's resources only.
        for (const statement of statements.filter((s) => s.Sid !== 'PullAwsImages'))
          expect(JSON.stringify(statement)).toMatch(/aws:ResourceAccount|ecr:GetAuthorizationToken/);
      }
      // EKS pulls its add-ons' images from AWS's registry: the same statement, without guardDuty.
      for (const statements of ecrPolicies(build(VARIANTS['eks-dev'])))
        expect(statements.map((s) => s.Sid)).toContain('PullAwsImages');
    });

    it('opens none of it without guardDuty on ECS', () => {
      const tasks = tasksOf(prod);
      expect(tasks.length).toBeGreaterThanOrEqual(9);
      for (const task of tasks) {
        expect(agentEgress(egressOf(prod, task))).toEqual([]);
        expect(pullsAgent(prod, task)).toEqual([]);
      }
      for (const statements of ecrPolicies(prod)) expect(statements.map((s) => s.Sid)).not.toContain('PullAwsImages');
    });
  });
});
