import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { createApp } from '../../lib/app';
import { parseConfig } from '../../lib/config/load';
import { VIEWER_IP_FUNCTION_FILE } from '../../lib/constructs/cloudfront-front';
import { LARGE_BODY_PATHS, UNCACHED_PATHS as API_PATHS } from '../../lib/constructs/dify/urls';
import { CLIENT_ADDRESS_HEADERS, RULE_ORDER } from '../../lib/constructs/web-acl';
import { task, build, CDK_JSON_CONTEXT, VARIANTS } from '../helpers/synth';
import { ingressRulesOf, logicalId, references, resources } from '../helpers/template';

const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';

describe('Edge', () => {
  const dev = build(VARIANTS.dev);
  const cfDomain = build(VARIANTS['cloudfront-domain']);
  const albZone = build(VARIANTS['alb-zone']);
  const internal = build(VARIANTS.internal);

  const loadBalancer = (built: typeof dev) =>
    resources(built.template, 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0][1];
  const webAclOf = (built: typeof dev) => {
    const all = Object.values(built.templates).flatMap((t) => resources(t, 'AWS::WAFv2::WebACL'));
    expect(all).toHaveLength(1);
    return all[0][1].Properties as Record<string, any>;
  };

  it('has no internet-facing load balancer in cloudfront and internal modes', () => {
    // Why: the data-flow analysis allows exactly one thing to face the internet: CloudFront, or
    // in alb mode the ALB itself.
    for (const built of [dev, cfDomain, internal]) expect(loadBalancer(built).Properties?.Scheme).toBe('internal');
    expect(loadBalancer(albZone).Properties?.Scheme).toBe('internet-facing');
    const privateSubnets = dev.stacks.network.vpc.privateSubnets.map((s) => logicalId(s));
    for (const id of privateSubnets) expect(references(loadBalancer(dev).Properties?.Subnets, id)).toBe(true);
  });

  it('admits only CloudFront’s origin-facing prefix list to the ALB in cloudfront mode, on the listener port only', () => {
    for (const [built, port] of [
      [dev, 80],
      [cfDomain, 443],
    ] as const) {
      const group = built.stacks.edge.loadBalancer.connections.securityGroups[0];
      const rules = ingressRulesOf(built.template, logicalId(group));
      expect(rules).toHaveLength(1);
      expect(rules[0]).toMatchObject({ FromPort: port, ToPort: port, IpProtocol: 'tcp' });
      expect(JSON.stringify(rules[0].SourcePrefixListId)).toContain('PrefixLists.0.PrefixListId');
      expect(rules[0].CidrIp ?? rules[0].CidrIpv6).toBeUndefined();
    }
    dev.template.hasResourceProperties('Custom::AWS', {
      Create: Match.stringLikeRegexp('com\\.amazonaws\\.global\\.cloudfront\\.origin-facing'),
    });
  });

  it('admits exactly the allow-listed networks on 80 and 443 in alb mode, and nobody when the list is empty', () => {
    const group = albZone.stacks.edge.loadBalancer.connections.securityGroups[0];
    const rules = ingressRulesOf(albZone.template, logicalId(group));
    expect(rules.map((r) => `${r.CidrIp}:${r.FromPort}`).sort()).toEqual([
      '198.51.100.0/24:443',
      '198.51.100.0/24:80',
      '203.0.113.0/24:443',
      '203.0.113.0/24:80',
    ]);
    const closed = build({ ...VARIANTS['alb-zone'], allowedIpv4Cidrs: '' });
    const closedGroup = closed.stacks.edge.loadBalancer.connections.securityGroups[0];
    expect(ingressRulesOf(closed.template, logicalId(closedGroup))).toEqual([]);
  });

  it('keeps streams open, drops invalid headers, logs access, and is deletion-protected in prod', () => {
    const attributes = (built: typeof dev) =>
      Object.fromEntries(
        (loadBalancer(built).Properties?.LoadBalancerAttributes as Array<{ Key: string; Value: string }>).map((a) => [
          a.Key,
          a.Value,
        ]),
      );
    for (const built of [dev, cfDomain, albZone, internal]) {
      const attrs = attributes(built);
      expect(Number(attrs['idle_timeout.timeout_seconds'])).toBeGreaterThanOrEqual(600);
      expect(attrs['routing.http.drop_invalid_header_fields.enabled']).toBe('true');
      expect(attrs['access_logs.s3.enabled']).toBe('true');
    }
    expect(attributes(cfDomain)['deletion_protection.enabled']).toBe('true');
    expect(attributes(dev)['deletion_protection.enabled']).toBe('false');
  });

  // Why: Dify takes the client address from the whole first X-Forwarded-For header. Behind CloudFront
  // that header arrives holding exactly the viewer (the viewer-request function sees to it) and must
  // pass unchanged; appending would make Dify record "viewer, edge". Facing clients, the ALB must
  // create it from the connection (WAF refuses a client's own), without a port, and never forward a
  // request WAF could not judge.
  it('preserves X-Forwarded-For behind CloudFront and creates it from the connection where clients connect', () => {
    const attributes = (built: typeof dev) =>
      Object.fromEntries(
        (loadBalancer(built).Properties?.LoadBalancerAttributes as Array<{ Key: string; Value: string }>).map((a) => [
          a.Key,
          a.Value,
        ]),
      );
    for (const [built, mode] of [
      [dev, 'preserve'],
      [cfDomain, 'preserve'],
      [albZone, 'append'],
      [internal, 'append'],
    ] as const) {
      const attrs = attributes(built);
      expect(attrs['routing.http.xff_header_processing.mode']).toBe(mode);
      expect(attrs['routing.http.xff_client_port.enabled']).not.toBe('true');
      expect(attrs['waf.fail_open.enabled']).not.toBe('true');
    }
  });

  describe('TLS at every hop', () => {
    it('terminates HTTPS on the ALB with TLS 1.2+ and redirects port 80 wherever a client faces it', () => {
      for (const built of [cfDomain, albZone, internal]) {
        built.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
          Protocol: 'HTTPS',
          Port: 443,
          SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
        });
      }
      for (const built of [albZone, internal]) {
        built.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
          Protocol: 'HTTP',
          Port: 80,
          DefaultActions: [
            {
              Type: 'redirect',
              RedirectConfig: Match.objectLike({ Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' }),
            },
          ],
        });
        const httpForwarding = resources(built.template, 'AWS::ElasticLoadBalancingV2::Listener').filter(
          ([, l]) =>
            l.Properties?.Protocol === 'HTTP' &&
            (l.Properties?.DefaultActions as Array<{ Type: string }>)[0].Type !== 'redirect',
        );
        expect(httpForwarding).toEqual([]);
      }
      // CloudFront with its own HTTPS hop to the ALB has no HTTP listener at all.
      expect(
        resources(cfDomain.template, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l.Properties?.Protocol),
      ).toEqual(['HTTPS']);
    });

    it('redirects viewers to HTTPS on every CloudFront behavior and requires TLSv1.2_2021 with a domain', () => {
      for (const built of [dev, cfDomain]) {
        const config = resources(built.template, 'AWS::CloudFront::Distribution')[0][1].Properties!
          .DistributionConfig as Record<string, any>;
        for (const behavior of [config.DefaultCacheBehavior, ...config.CacheBehaviors]) {
          expect(behavior.ViewerProtocolPolicy).toBe('redirect-to-https');
        }
      }
      const config = resources(cfDomain.template, 'AWS::CloudFront::Distribution')[0][1].Properties!
        .DistributionConfig as Record<string, any>;
      expect(config.ViewerCertificate).toMatchObject({
        MinimumProtocolVersion: 'TLSv1.2_2021',
        SslSupportMethod: 'sni-only',
      });
      expect(config.Aliases).toEqual(['dify.example.com']);
    });

    it('reaches the ALB over HTTPS (TLS 1.2) with a domain, and over HTTP inside the VPC only without one', () => {
      cfDomain.template.hasResourceProperties('AWS::CloudFront::VpcOrigin', {
        VpcOriginEndpointConfig: Match.objectLike({
          OriginProtocolPolicy: 'https-only',
          OriginSSLProtocols: ['TLSv1.2'],
        }),
      });
      dev.template.hasResourceProperties('AWS::CloudFront::VpcOrigin', {
        VpcOriginEndpointConfig: Match.objectLike({ OriginProtocolPolicy: 'http-only' }),
      });
      expect(dev.template.toJSON().Resources[logicalId(dev.stacks.edge.listener)].Properties.Protocol).toBe('HTTP');
    });

    it('issues CloudFront’s certificate in us-east-1 and the ALB’s in the stack’s region, both by DNS', () => {
      const global = cfDomain.stacks.global!;
      expect(global.region).toBe('us-east-1');
      cfDomain.templates[global.stackName].hasResourceProperties('AWS::CertificateManager::Certificate', {
        DomainName: 'dify.example.com',
        ValidationMethod: 'DNS',
        DomainValidationOptions: [{ DomainName: 'dify.example.com', HostedZoneId: 'Z0123456789ABCDEFGHIJ' }],
      });
      expect(cfDomain.stacks.main.region).toBe('eu-west-1');
      cfDomain.template.hasResourceProperties('AWS::CertificateManager::Certificate', {
        DomainName: 'dify.example.com',
        ValidationMethod: 'DNS',
      });
    });
  });

  describe('CloudFront', () => {
    const distribution = (built: typeof dev) =>
      resources(built.template, 'AWS::CloudFront::Distribution')[0][1].Properties!.DistributionConfig as Record<
        string,
        any
      >;

    it('never caches the API paths, compresses, and speaks HTTP/2 and HTTP/3', () => {
      const config = distribution(dev);
      const byPath = Object.fromEntries(
        (config.CacheBehaviors as Array<Record<string, any>>).map((b) => [b.PathPattern, b]),
      );
      for (const path of API_PATHS) {
        expect(byPath[path]).toMatchObject({ CachePolicyId: CACHING_DISABLED, Compress: true });
        expect(byPath[path].AllowedMethods).toContain('POST');
      }
      expect(config.DefaultCacheBehavior.CachePolicyId).toBe(CACHING_DISABLED);
      expect(byPath['/_next/static/*'].CachePolicyId).not.toBe(CACHING_DISABLED);
      expect(config.HttpVersion).toBe('http2and3');
      expect(config.IPV6Enabled).toBe(true);
    });

    it('logs access, uses the configured price class and geo restriction, and is guarded by the us-east-1 web ACL', () => {
      const config = distribution(cfDomain);
      expect(config.Logging).toMatchObject({ Prefix: 'cloudfront/' });
      expect(config.PriceClass).toBe('PriceClass_100');
      expect(config.Restrictions.GeoRestriction).toEqual({ RestrictionType: 'whitelist', Locations: ['DE', 'FR'] });
      expect(JSON.stringify(config.WebACLId)).toContain('WebAcl');
      expect(distribution(dev).Restrictions).toBeUndefined();
    });

    it('sends HSTS, nosniff, frame options and a referrer policy on every response', () => {
      const [[, policy]] = resources(dev.template, 'AWS::CloudFront::ResponseHeadersPolicy');
      const headers = (policy.Properties!.ResponseHeadersPolicyConfig as Record<string, any>).SecurityHeadersConfig;
      expect(headers.StrictTransportSecurity.AccessControlMaxAgeSec).toBeGreaterThanOrEqual(31536000);
      expect(headers.StrictTransportSecurity.IncludeSubdomains).toBe(true);
      expect(headers.ContentTypeOptions.Override).toBe(true);
      expect(headers.FrameOptions.FrameOption).toBe('SAMEORIGIN');
      expect(headers.ReferrerPolicy.ReferrerPolicy).toBe('strict-origin-when-cross-origin');
      const config = distribution(dev);
      for (const behavior of [config.DefaultCacheBehavior, ...config.CacheBehaviors]) {
        expect(behavior.ResponseHeadersPolicyId).toEqual({
          Ref: resources(dev.template, 'AWS::CloudFront::ResponseHeadersPolicy')[0][0],
        });
      }
    });

    // Why: Dify trusts CF-Connecting-IP and X-Forwarded-For, and ALL_VIEWER forwards both as the viewer
    // sent them; a behavior without the function lets a viewer choose the address Dify records.
    it('runs the viewer-IP function (cloudfront-js-2.0, the file as tested) on the viewer request of every behavior', () => {
      for (const built of [dev, cfDomain]) {
        const functions = resources(built.template, 'AWS::CloudFront::Function');
        expect(functions).toHaveLength(1);
        const [[id, fn]] = functions;
        expect(fn.Properties).toMatchObject({
          AutoPublish: true,
          FunctionConfig: { Runtime: 'cloudfront-js-2.0' },
          FunctionCode: readFileSync(VIEWER_IP_FUNCTION_FILE, 'utf8'),
        });
        const config = distribution(built);
        const behaviors = [config.DefaultCacheBehavior, ...config.CacheBehaviors];
        expect(behaviors).toHaveLength(API_PATHS.length + 2);
        for (const behavior of behaviors) {
          expect([behavior.PathPattern ?? 'default', behavior.FunctionAssociations]).toEqual([
            behavior.PathPattern ?? 'default',
            [{ EventType: 'viewer-request', FunctionARN: { 'Fn::GetAtt': [id, 'FunctionARN'] } }],
          ]);
          expect(behavior.LambdaFunctionAssociations).toBeUndefined();
        }
      }
    });

    it('points the domain at the distribution over IPv4 and IPv6', () => {
      for (const type of ['A', 'AAAA']) {
        cfDomain.template.hasResourceProperties('AWS::Route53::RecordSet', {
          Name: 'dify.example.com.',
          Type: type,
          HostedZoneId: 'Z0123456789ABCDEFGHIJ',
          AliasTarget: Match.objectLike({ DNSName: Match.anyValue() }),
        });
      }
    });
  });

  describe('WAF', () => {
    it('evaluates its rules in the documented order, with the anonymous-IP list only when asked', () => {
      const names = (built: typeof dev) =>
        (webAclOf(built).Rules as Array<{ Name: string; Priority: number }>)
          .sort((a, b) => a.Priority - b.Priority)
          .map((rule) => rule.Name);
      const refusals: readonly string[] = CLIENT_ADDRESS_HEADERS.map((entry) => entry.rule);
      const anonymous = 'AWS-AWSManagedRulesAnonymousIpList';
      expect(RULE_ORDER.slice(0, 4)).toEqual(['AllowListedNetworksOnly', ...refusals, 'RateLimitPerClientIp']);
      // The CloudFront ACL lets the address headers through: the viewer-request function overwrites them.
      expect(names(cfDomain)).toEqual(RULE_ORDER.filter((name) => !refusals.includes(name)));
      expect(names(dev)).toEqual(RULE_ORDER.filter((name) => !refusals.includes(name) && name !== anonymous));
      for (const built of [albZone, internal]) {
        expect(names(built)).toEqual(RULE_ORDER.filter((name) => name !== anonymous));
      }
      expect(webAclOf(dev).DefaultAction).toEqual({ Allow: {} });
    });

    // Why: with no CloudFront in front, nothing overwrites CF-Connecting-IP or X-Forwarded-For before
    // Dify reads them, so a client that sends either chooses the address Dify records and throttles by.
    it('refuses CF-Connecting-IP and X-Forwarded-For from clients in alb and internal modes, saying which and why', () => {
      for (const built of [albZone, internal]) {
        const acl = webAclOf(built);
        const rules = acl.Rules as Array<Record<string, any>>;
        for (const { header, rule: name, answer } of CLIENT_ADDRESS_HEADERS) {
          const rule = rules.find((r) => r.Name === name)!;
          expect(rule.Action).toEqual({
            Block: { CustomResponse: { ResponseCode: 400, CustomResponseBodyKey: name } },
          });
          expect(rule.Statement).toEqual({
            ByteMatchStatement: {
              SearchString: header,
              PositionalConstraint: 'EXACTLY',
              FieldToMatch: { Headers: { MatchPattern: { All: {} }, MatchScope: 'KEY', OversizeHandling: 'MATCH' } },
              TextTransformations: [{ Priority: 0, Type: 'LOWERCASE' }],
            },
          });
          expect(acl.CustomResponseBodies[name]).toEqual({ ContentType: 'TEXT_PLAIN', Content: answer });
          expect(answer.toLowerCase()).toMatch(new RegExp(`does not accept an? ${header} header`));
          expect(answer).toMatch(/records and rate-limits by/);
        }
      }
      // Behind CloudFront clients keep them (proxies add X-Forwarded-For); the function overwrites them.
      for (const built of [dev, cfDomain]) {
        const acl = webAclOf(built);
        expect(acl.CustomResponseBodies).toBeUndefined();
        expect(JSON.stringify(acl.Rules)).not.toMatch(/cf-connecting-ip|x-forwarded-for/i);
      }
    });

    it('blocks everyone outside the allow-lists, and everyone at all when the lists are empty', () => {
      const sets = (built: typeof dev) =>
        Object.values(built.templates)
          .flatMap((t) => resources(t, 'AWS::WAFv2::IPSet'))
          .map(([, set]) => `${set.Properties?.IPAddressVersion}:${JSON.stringify(set.Properties?.Addresses)}`)
          .sort();
      expect(sets(cfDomain)).toEqual(['IPV4:["203.0.113.0/24"]', 'IPV6:["2001:db8::/32"]']);
      expect(sets(dev)).toEqual(['IPV4:[]', 'IPV6:[]']);
      const [first] = (webAclOf(dev).Rules as Array<Record<string, any>>).sort((a, b) => a.Priority - b.Priority);
      expect(first.Action).toEqual({ Block: {} });
      expect(first.Statement.NotStatement.Statement.OrStatement.Statements).toHaveLength(2);
    });

    it('rate-limits each client IP as configured', () => {
      const rule = (webAclOf(build({ ...VARIANTS.dev, wafRateLimit: '250' })).Rules as Array<Record<string, any>>).find(
        (r) => r.Name === 'RateLimitPerClientIp',
      );
      expect(rule?.Statement.RateBasedStatement).toMatchObject({ Limit: 250, AggregateKeyType: 'IP' });
      expect(rule?.Action).toEqual({ Block: {} });
    });

    it('lets large bodies through on upload paths only', () => {
      const rules = webAclOf(dev).Rules as Array<Record<string, any>>;
      const common = rules.find((r) => r.Name === 'AWS-AWSManagedRulesCommonRuleSet');
      expect(common?.Statement.ManagedRuleGroupStatement.RuleActionOverrides).toEqual([
        { Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } },
      ]);
      const oversize = rules.find((r) => r.Name === 'OversizeBodyOutsideUploadPaths')!;
      expect(oversize.Action).toEqual({ Block: {} });
      const [label, notUpload] = oversize.Statement.AndStatement.Statements;
      expect(label.LabelMatchStatement.Key).toBe('awswaf:managed:aws:core-rule-set:SizeRestrictions_Body');
      expect(notUpload.NotStatement.Statement.RegexPatternSetReferenceStatement.FieldToMatch).toEqual({ UriPath: {} });
      const [[, patterns]] = Object.values(dev.templates).flatMap((t) => resources(t, 'AWS::WAFv2::RegexPatternSet'));
      expect(patterns.Properties?.RegularExpressionList).toEqual([...LARGE_BODY_PATHS]);
      const matches = (path: string) => LARGE_BODY_PATHS.some((pattern) => new RegExp(pattern).test(path));
      expect(matches('/console/api/files/upload')).toBe(true);
      expect(matches('/v1/files/upload')).toBe(true);
      expect(matches('/console/api/workspaces/current/plugin/upload/pkg')).toBe(true);
      expect(matches('/console/api/login')).toBe(false);
      expect(matches('/console/api/files/upload/../../setup')).toBe(false);
    });

    it('logs to an encrypted aws-waf-logs- group with the authorization and cookie headers redacted', () => {
      for (const built of [dev, albZone]) {
        const [[, logging]] = Object.values(built.templates).flatMap((t) =>
          resources(t, 'AWS::WAFv2::LoggingConfiguration'),
        );
        expect(logging.Properties?.RedactedFields).toEqual([
          { SingleHeader: { Name: 'authorization' } },
          { SingleHeader: { Name: 'cookie' } },
        ]);
        expect(JSON.stringify(logging.Properties?.LogDestinationConfigs)).toContain(':log-group:aws-waf-logs-');
        const groups = Object.values(built.templates)
          .flatMap((t) => resources(t, 'AWS::Logs::LogGroup'))
          .filter(([, g]) => String(g.Properties?.LogGroupName).startsWith('aws-waf-logs-'));
        expect(groups).toHaveLength(1);
        expect(groups[0][1].Properties?.KmsKeyId).toBeDefined();
      }
    });

    it('is CLOUDFRONT-scoped in us-east-1 for cloudfront mode and attached to the ALB otherwise', () => {
      expect(webAclOf(dev).Scope).toBe('CLOUDFRONT');
      expect(resources(dev.template, 'AWS::WAFv2::WebACL')).toEqual([]);
      for (const built of [albZone, internal]) {
        expect(webAclOf(built).Scope).toBe('REGIONAL');
        built.template.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
          ResourceArn: { Ref: logicalId(built.stacks.edge.loadBalancer) },
        });
      }
    });
  });

  describe('routing', () => {
    // Why: the order of the rules is the routing. Dify's own nginx sends the API paths to the api,
    // `/e/` to the plugin daemon and everything else to web; a rule in the wrong place would send
    // console API calls to the web front end, or plugin webhooks nowhere.
    it('mirrors Dify’s nginx: API paths to the api, /e/ to the plugin daemon, everything else to web, in that order', () => {
      const built = build({ profile: 'dev' });
      const { edge } = built.stacks;
      expect(edge.routes).toEqual([
        { id: 'Api', priority: 10, patterns: ['/console/api/*', '/api/*', '/v1/*', '/files/*', '/mcp/*'] },
        { id: 'Api', priority: 20, patterns: ['/triggers/*'] },
        { id: 'PluginDaemon', priority: 30, patterns: ['/e/*'] },
        { id: 'Web', priority: 50_000, patterns: ['/*'] },
      ]);
      const groupPort = (ref: { Ref: string }) => built.template.toJSON().Resources[ref.Ref].Properties.Port as number;
      const rules = resources(built.template, 'AWS::ElasticLoadBalancingV2::ListenerRule')
        .map(([, r]) => ({
          priority: r.Properties?.Priority,
          patterns: (r.Properties?.Conditions as Array<{ PathPatternConfig: { Values: string[] } }>)[0]
            .PathPatternConfig.Values,
          port: groupPort((r.Properties?.Actions as Array<{ TargetGroupArn: { Ref: string } }>)[0].TargetGroupArn),
        }))
        .sort((a, b) => (a.priority as number) - (b.priority as number));
      expect(rules).toEqual([
        { priority: 10, patterns: ['/console/api/*', '/api/*', '/v1/*', '/files/*', '/mcp/*'], port: 5001 },
        { priority: 20, patterns: ['/triggers/*'], port: 5001 },
        { priority: 30, patterns: ['/e/*'], port: 5002 },
        { priority: 50_000, patterns: ['/*'], port: 3000 },
      ]);
    });

    it('health-checks each target where the service answers', () => {
      const built = build({ profile: 'dev' });
      const checks = resources(built.template, 'AWS::ElasticLoadBalancingV2::TargetGroup')
        .map(([, g]) => [g.Properties?.Port, g.Properties?.HealthCheckPath])
        .sort();
      expect(checks).toEqual([
        [3000, '/apps'],
        [5001, '/health'],
        [5002, '/health/check'],
      ]);
    });

    it('keeps the fixed 404 as the listener default and refuses a second default target', () => {
      const { stacks, template } = build({ profile: 'dev' });
      const listener = template.toJSON().Resources[logicalId(stacks.edge.listener)];
      expect(listener.Properties.DefaultActions[0].Type).toBe('fixed-response');
      const context = { ...CDK_JSON_CONTEXT };
      const fresh = createApp(new App({ context }), parseConfig(context));
      expect(() => fresh.edge.addTarget('Other', { port: 8080, healthCheckPath: '/' })).toThrow(
        /default target is already registered/,
      );
    });

    it('opens only each service’s own port from the load balancer', () => {
      const built = build({ profile: 'dev' });
      const { stacks, template } = built;
      const lb = logicalId(stacks.edge.loadBalancer.connections.securityGroups[0]);
      for (const [service, port] of [
        [task(built, 'api'), 5001],
        [task(built, 'plugin_daemon'), 5002],
        [task(built, 'web'), 3000],
      ] as const) {
        const fromLb = ingressRulesOf(template, logicalId(service.securityGroup)).filter((rule) =>
          JSON.stringify(rule.SourceSecurityGroupId ?? '').includes(lb),
        );
        expect(fromLb.map((rule) => [rule.FromPort, rule.ToPort])).toEqual([[port, port]]);
      }
    });
  });
});
