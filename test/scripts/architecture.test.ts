import { existsSync, readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { repoPath } from '../../lib/paths';
import { sizingFor } from '../../lib/config/sizing';
import { architectureDiagrams, DIAGRAMS, renderArchitecture } from '../../scripts/architecture';
import { type ArchitectureModel, architectureOf } from '../../scripts/architecture-model';
import { escapeXml, wrap } from '../../scripts/svg';
import { build, type Built, VARIANTS } from '../helpers/synth';

/**
 * A small XML well-formedness check: every tag closes in order, attributes are quoted, and every
 * `&` starts one of XML's five entities. Returns the first problem, or undefined.
 */
function xmlProblem(xml: string): string | undefined {
  const open: string[] = [];
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|apos);)/g;
  let rootClosed = false;
  for (const match of xml.matchAll(token)) {
    const [whole, closing, name, , selfClosing] = match;
    if (whole === '<') return `unparsed markup at ${match.index}: ${xml.slice(match.index, match.index + 40)}`;
    if (whole.startsWith('&')) return `bare & at ${match.index}: ${xml.slice(match.index, match.index + 20)}`;
    if (name === undefined) continue;
    if (rootClosed) return `content after the root element at ${match.index}`;
    if (closing) {
      const expected = open.pop();
      if (expected !== name) return `</${name}> closes <${expected}> at ${match.index}`;
      if (open.length === 0) rootClosed = true;
    } else if (!selfClosing) {
      open.push(name);
    }
  }
  return open.length > 0 ? `unclosed <${open.join('>, <')}>` : rootClosed ? undefined : 'no root element';
}

describe('the XML check itself', () => {
  it('accepts a small document and names what is wrong with broken ones', () => {
    expect(xmlProblem('<svg a="1"><g><text>a &amp; b</text></g><rect/></svg>\n')).toBeUndefined();
    expect(xmlProblem('<svg><g></svg>')).toMatch('</svg> closes <g>');
    expect(xmlProblem('<svg><text>a & b</text></svg>')).toMatch('bare &');
    expect(xmlProblem('<svg a=1></svg>')).toMatch('unparsed markup');
  });
});

describe('the SVG writer', () => {
  it('escapes every character XML reserves', () => {
    expect(escapeXml(`<a href="x">Tom & Jerry's</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;',
    );
  });

  it('wraps text to a width and refuses a word that cannot fit', () => {
    expect(wrap('one two three four', 80, 11)).toEqual(['one two three', 'four']);
    expect(() => wrap('x'.repeat(40), 100, 11)).toThrow(/'x{40}' is wider than its box \(100px\)/);
  });
});

describe('the architecture diagrams', () => {
  // Each variant is built once (build() caches it) and shared by every test below.
  const built = (variant: string): Built => build(VARIANTS[variant]);
  let diagrams: Record<string, string>;
  const models: Record<string, ArchitectureModel> = {};
  beforeAll(() => {
    diagrams = architectureDiagrams(built, VARIANTS);
    for (const diagram of DIAGRAMS) models[diagram.variant] = architectureOf(built(diagram.variant));
  });

  it('are generated from the synthesized app and up to date (run `npm run docs`)', () => {
    const stale = DIAGRAMS.filter(
      (diagram) =>
        !existsSync(repoPath(diagram.file)) || readFileSync(repoPath(diagram.file), 'utf8') !== diagrams[diagram.file],
    ).map((diagram) => `${diagram.file} is stale: run \`npm run docs\``);
    expect(stale).toEqual([]);
  });

  it('cover each platform and edge mode once', () => {
    expect(DIAGRAMS.map((diagram) => `${diagram.platform}-${diagram.edge}`).sort()).toEqual([
      'ecs-alb',
      'ecs-cloudfront',
      'ecs-internal',
      'eks-alb',
      'eks-cloudfront',
      'eks-internal',
    ]);
    for (const diagram of DIAGRAMS)
      expect(diagram.file).toBe(`docs/architecture-${diagram.platform}-${diagram.edge}.svg`);
  });

  it('are well-formed XML that GitHub shows as an image: no scripts, no external references', () => {
    for (const [file, svg] of Object.entries(diagrams)) {
      expect([file, xmlProblem(svg)]).toEqual([file, undefined]);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg).not.toMatch(/<script|<foreignObject|<image|href=|@import|javascript:|\son\w+=/i);
      // The only url() is an arrowhead marker in the same document.
      for (const [reference] of svg.matchAll(/url\([^)]*\)/g)) expect(reference).toMatch(/^url\(#[\w-]+\)$/);
    }
  });

  it('render byte for byte the same from the same app', () => {
    for (const diagram of DIAGRAMS) {
      const again = renderArchitecture(
        architectureOf(built(diagram.variant)),
        diagram.variant,
        VARIANTS[diagram.variant],
      );
      expect(again).toBe(diagrams[diagram.file]);
    }
  });

  it('escape text read from the app', () => {
    const model = models.dev;
    const svg = renderArchitecture(
      { ...model, keys: [...model.keys, { stack: model.mainStack, name: 'Keys/<b>&"x"' }] },
      'dev',
      VARIANTS.dev,
    );
    expect(xmlProblem(svg)).toBeUndefined();
    expect(svg).toContain('Keys/&lt;b&gt;&amp;&quot;x&quot; (Dify)');
  });

  it('show the EKS cluster, its node pools and Kubernetes workloads only on EKS', () => {
    for (const diagram of DIAGRAMS) {
      const svg = diagrams[diagram.file];
      const model = models[diagram.variant];
      if (diagram.platform === 'eks') {
        expect(model.eks?.nodePools).toEqual(['dify-apps', 'dify-untrusted']);
        expect(svg).toContain('EKS Auto Mode cluster');
        expect(svg).toContain('NodePools dify-apps, dify-untrusted');
        expect(svg).toContain('Job per deploy, ns dify');
        // The LLM gateway stays on ECS Fargate beside the cluster.
        expect(model.workloads.find((each) => each.name === 'llm-gateway')?.platform).toBe('ecs');
        expect(model.network.interfaceEndpoints).toEqual(expect.arrayContaining(['eks', 'eks-auth']));
      } else {
        expect(model.eks).toBeUndefined();
        expect(svg).not.toMatch(/EKS|NodePool|Deployment ×/);
        expect(svg).toContain('ECS cluster (Fargate)');
        expect(svg).toContain('Fargate task per deploy');
      }
      // Dify's eight services and the gateway, whichever platform runs them.
      expect(model.workloads.map((each) => each.name)).toEqual([
        'ssrf-proxy',
        'sandbox',
        'plugin-daemon',
        'api',
        'worker',
        'beat',
        'web',
        'migration',
        'llm-gateway',
      ]);
    }
    // The VM-per-pod sandbox shows where it is turned on (eks-alb), and nowhere else.
    expect(diagrams['docs/architecture-eks-alb.svg']).toContain('runtime isolated-sandbox');
    expect(diagrams['docs/architecture-eks-cloudfront.svg']).not.toContain('isolated-sandbox');
  });

  it('show CloudFront and the us-east-1 stacks with edge=cloudfront only', () => {
    for (const diagram of DIAGRAMS) {
      const svg = diagrams[diagram.file];
      const model = models[diagram.variant];
      if (diagram.edge === 'cloudfront') {
        expect(model.edge.cloudFront).toEqual({ stack: 'Dify', vpcOrigin: true, functions: 1 });
        expect(model.globalStacks).toEqual(['Dify-Global', 'Dify-GlobalAlarms']);
        expect(model.edge.webAcls.map((acl) => [acl.stack, acl.scope])).toEqual([['Dify-Global', 'CLOUDFRONT']]);
        expect(svg).toContain('>CloudFront distribution<');
        expect(svg).toContain('Application Load Balancer (internal)');
      } else {
        expect(model.edge.cloudFront).toBeUndefined();
        expect(model.globalStacks).toEqual([]);
        expect(model.edge.webAcls.map((acl) => [acl.stack, acl.scope])).toEqual([['Dify', 'REGIONAL']]);
        expect(svg).not.toContain('>CloudFront distribution<');
        expect(svg).toContain('No us-east-1 stacks');
        expect(svg).toContain(`Application Load Balancer (${diagram.edge === 'alb' ? 'internet-facing' : 'internal'})`);
      }
    }
    expect(diagrams['docs/architecture-ecs-internal.svg']).toContain('Corporate network');
    // alb-zone has a hosted zone (a certificate it creates), internal a certificate passed in by ARN.
    expect(diagrams['docs/architecture-ecs-alb.svg']).toContain('ACM certificate, DNS-validated');
    expect(diagrams['docs/architecture-ecs-internal.svg']).toContain('ACM certificate passed in by ARN');
  });

  it('count NAT gateways, zones and the data tier as the profile sizes them: one NAT in dev, one per zone in prod', () => {
    const dev = models.dev;
    const prod = architectureOf(build(VARIANTS.prod));
    const [devSizing, prodSizing] = [sizingFor({ profile: 'dev' }), sizingFor({ profile: 'prod' })];
    expect(dev.network.natGateways).toBe(devSizing.network.natGateways);
    expect(dev.network.natGateways).toBe(1);
    expect(prod.network.natGateways).toBe(prodSizing.network.natGateways);
    expect(prod.network.natGateways).toBe(prod.network.availabilityZones);
    expect([dev.network.availabilityZones, prod.network.availabilityZones]).toEqual([2, 3]);
    expect([dev.data.aurora?.instances, prod.data.aurora?.instances]).toEqual([1, 1 + prodSizing.database.readers]);
    expect([dev.data.cache?.nodes, prod.data.cache?.nodes]).toEqual([1, prodSizing.cache.nodes]);
    // prod's interface endpoints add KMS (the dev variant has the ones every profile has).
    expect(prod.network.interfaceEndpoints).toEqual(expect.arrayContaining([...dev.network.interfaceEndpoints, 'kms']));
    const svg = renderArchitecture(prod, 'prod', VARIANTS.prod);
    expect(svg).toContain('NAT gateway ×3');
    expect(svg).toContain('one per zone (3 zones)');
    expect(diagrams['docs/architecture-ecs-cloudfront.svg']).toContain('NAT gateway ×1');
  });

  it('change when a resource disappears from the templates', () => {
    const dev = built('dev');
    const without = (stack: string, type: string): Built => {
      const json = dev.templates[stack].toJSON() as { Resources: Record<string, { Type: string }> };
      const kept = Object.fromEntries(Object.entries(json.Resources).filter(([, resource]) => resource.Type !== type));
      return { ...dev, templates: { ...dev.templates, [stack]: Template.fromJSON({ ...json, Resources: kept }) } };
    };
    const render = (app: Built) => renderArchitecture(architectureOf(app), 'dev', VARIANTS.dev);
    const original = diagrams['docs/architecture-ecs-cloudfront.svg'];

    const noNat = render(without('Dify-Foundation', 'AWS::EC2::NatGateway'));
    expect(original).toContain('NAT gateway ×1');
    expect(noNat).toContain('No NAT gateway');
    expect(noNat).not.toContain('NAT gateway ×');

    const noCache = render(without('Dify-Data', 'AWS::ElastiCache::ReplicationGroup'));
    expect(original).toContain('ElastiCache (valkey');
    expect(noCache).not.toContain('ElastiCache');

    const noDistribution = architectureOf(without('Dify', 'AWS::CloudFront::Distribution'));
    expect(noDistribution.edge.cloudFront).toBeUndefined();

    const noWorkers = render(without('Dify', 'AWS::ECS::TaskDefinition'));
    expect(noWorkers).toMatch(/>api<\/text>\n<text[^>]*>not in the templates</);
  });
});
