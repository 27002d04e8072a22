import { readFileSync } from 'node:fs';
import * as vm from 'node:vm';
import { VIEWER_IP_FUNCTION_FILE } from '../../../lib/constructs/cloudfront-front';
import { CLIENT_ADDRESS_HEADERS } from '../../../lib/constructs/web-acl';
import { build, VARIANTS } from '../../helpers/synth';
import { resources } from '../../helpers/template';

// Why: Dify records and rate-limits by the address extract_remote_ip (api/libs/helper.py) returns:
// CF-Connecting-IP if set, else the whole first X-Forwarded-For header, else the socket peer. If a
// client can choose either header, it can hide behind any address, spread its requests over as many
// rate-limit buckets as it likes, or get someone else's address throttled.

/** A header as CloudFront Functions present it: lowercase name, `{ value }`, repeats in `multiValue`. */
interface CfHeader {
  value: string;
  multiValue?: Array<{ value: string }>;
}
type CfHeaders = Record<string, CfHeader>;

/** The request object of a viewer-request event, which the function returns (changed or not). */
interface CfRequest {
  method: string;
  uri: string;
  querystring: Record<string, { value: string }>;
  headers: CfHeaders;
  cookies: Record<string, { value: string }>;
}

/** The viewer-request event of cloudfront-js-2.0 (CloudFront Functions event structure). */
function viewerRequest(
  viewerIp: string,
  headers: CfHeaders,
): { version: string; context: Record<string, string>; viewer: { ip: string }; request: CfRequest } {
  return {
    version: '1.0',
    context: { distributionDomainName: 'd111111abcdef8.cloudfront.net', eventType: 'viewer-request' },
    viewer: { ip: viewerIp },
    request: {
      method: 'POST',
      uri: '/console/api/login',
      querystring: { next: { value: '/apps' } },
      headers: { host: { value: 'dify.example.com' }, 'user-agent': { value: 'curl/8.5.0' }, ...headers },
      cookies: { locale: { value: 'en-US' } },
    },
  };
}

/**
 * The function exactly as CloudFront receives it, run in a bare context: no `require`, `module` or
 * `process`, which CloudFront's runtime does not have either. cloudfront-js-2.0 allows an async handler,
 * so the result is awaited.
 */
async function runViewerIpFunction(event: ReturnType<typeof viewerRequest>): Promise<CfRequest> {
  const context = vm.createContext({});
  vm.runInContext(readFileSync(VIEWER_IP_FUNCTION_FILE, 'utf8'), context, { filename: 'viewer-ip.js' });
  expect(typeof context.handler).toBe('function');
  const result = await context.handler(JSON.parse(JSON.stringify(event)));
  // Across the vm boundary objects have another realm's prototypes; compare plain data.
  return JSON.parse(JSON.stringify(result)) as CfRequest;
}

const VIEWER = '198.51.100.23';
const VIEWER_IPV6 = '2001:db8:85a3::8a2e:370:7334';
const SPOOF = '203.0.113.66';

describe('the viewer-IP CloudFront Function, run as CloudFront runs it', () => {
  it('sets cf-connecting-ip to the viewer’s address and sends no x-forwarded-for when the viewer sends neither', async () => {
    const request = await runViewerIpFunction(viewerRequest(VIEWER, {}));
    expect(request.headers['cf-connecting-ip']).toEqual({ value: VIEWER });
    expect(request.headers).not.toHaveProperty('x-forwarded-for');
  });

  it('overwrites a spoofed cf-connecting-ip', async () => {
    const request = await runViewerIpFunction(viewerRequest(VIEWER, { 'cf-connecting-ip': { value: SPOOF } }));
    expect(request.headers['cf-connecting-ip']).toEqual({ value: VIEWER });
  });

  it('drops a spoofed x-forwarded-for list, so CloudFront adds one holding the viewer alone', async () => {
    const request = await runViewerIpFunction(
      viewerRequest(VIEWER, { 'x-forwarded-for': { value: `${SPOOF}, 10.0.0.1, ${VIEWER}` } }),
    );
    expect(request.headers).not.toHaveProperty('x-forwarded-for');
  });

  it('leaves nothing of repeated (multiValue) spoofed headers', async () => {
    const request = await runViewerIpFunction(
      viewerRequest(VIEWER, {
        'cf-connecting-ip': { value: SPOOF, multiValue: [{ value: SPOOF }, { value: '192.0.2.1' }] },
        'x-forwarded-for': { value: SPOOF, multiValue: [{ value: SPOOF }, { value: '192.0.2.1, 192.0.2.2' }] },
      }),
    );
    expect(request.headers['cf-connecting-ip']).toStrictEqual({ value: VIEWER });
    expect(request.headers).not.toHaveProperty('x-forwarded-for');
  });

  it('passes an IPv6 viewer’s address through as CloudFront gives it', async () => {
    const request = await runViewerIpFunction(
      viewerRequest(VIEWER_IPV6, { 'cf-connecting-ip': { value: SPOOF }, 'x-forwarded-for': { value: SPOOF } }),
    );
    expect(request.headers['cf-connecting-ip']).toEqual({ value: VIEWER_IPV6 });
    expect(request.headers).not.toHaveProperty('x-forwarded-for');
  });

  it('changes nothing else: method, URI, query string, cookies and the other headers arrive as sent', async () => {
    const event = viewerRequest(VIEWER, { 'x-forwarded-for': { value: SPOOF }, authorization: { value: 'Bearer x' } });
    const request = await runViewerIpFunction(event);
    const { 'cf-connecting-ip': added, ...rest } = request.headers;
    expect(added).toEqual({ value: VIEWER });
    const { 'x-forwarded-for': dropped, ...expected } = event.request.headers;
    expect(dropped).toBeDefined();
    expect(rest).toEqual(expected);
    expect({ ...request, headers: undefined }).toEqual({ ...event.request, headers: undefined });
  });
});

/** Headers on the wire: name as sent, value; one entry per header field, repeats included. */
type WireHeaders = Array<[string, string]>;

const wireFrom = (headers: CfHeaders): WireHeaders =>
  Object.entries(headers).flatMap(([name, header]) =>
    (header.multiValue ?? [{ value: header.value }]).map(({ value }): [string, string] => [name, value]),
  );

/**
 * CloudFront towards the origin, as "Request and response behavior for custom origins > Client IP
 * addresses" describes it: without an X-Forwarded-For, CloudFront adds one with the viewer's address;
 * with one, it appends the viewer's address. The header it sees is the request after the viewer-request
 * function (Lambda@Edge's documented events show X-Forwarded-For absent at viewer request and present
 * at origin request). ALL_VIEWER forwards every other header.
 */
function cloudFrontToOrigin(headers: WireHeaders, viewerIp: string): WireHeaders {
  const xff = headers.filter(([name]) => name.toLowerCase() === 'x-forwarded-for').map(([, value]) => value);
  const others = headers.filter(([name]) => name.toLowerCase() !== 'x-forwarded-for');
  return [...others, ['X-Forwarded-For', [...xff, viewerIp].join(',')]];
}

/** The ALB towards its targets, per its documented `routing.http.xff_header_processing.mode` table. */
function albToTarget(headers: WireHeaders, mode: string, peerIp: string): WireHeaders {
  const isXff = ([name]: [string, string]) => name.toLowerCase() === 'x-forwarded-for';
  const xff = headers.filter(isXff).map(([, value]) => value);
  const others = headers.filter((header) => !isXff(header));
  switch (mode) {
    case 'append':
      return [...others, ['X-Forwarded-For', xff.length === 0 ? peerIp : `${xff.join(',')}, ${peerIp}`]];
    case 'preserve':
      return headers;
    case 'remove':
      return others;
    default:
      throw new Error(`unknown xff_header_processing.mode ${mode}`);
  }
}

/**
 * What Dify reads from each header, as extract_remote_ip does under gunicorn and Werkzeug: gunicorn
 * joins repeated header fields with ',', and `request.headers.getlist("X-Forwarded-For")[0]` is then
 * that whole joined value, not its first element.
 */
function difyReads(headers: WireHeaders, socketPeer: string) {
  const header = (wanted: string) => {
    const values = headers.filter(([name]) => name.toLowerCase() === wanted).map(([, value]) => value.trim());
    return values.length === 0 ? undefined : values.join(',');
  };
  const cfConnectingIp = header('cf-connecting-ip');
  const xForwardedFor = header('x-forwarded-for');
  const recorded = cfConnectingIp || xForwardedFor || socketPeer;
  return { cfConnectingIp, xForwardedFor, recorded };
}

const albXffMode = (built: ReturnType<typeof build>) => {
  const [[, alb]] = resources(built.template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  const attributes = alb.Properties?.LoadBalancerAttributes as Array<{ Key: string; Value: string }>;
  // Absent, the ALB appends (its documented default).
  return attributes.find((a) => a.Key === 'routing.http.xff_header_processing.mode')?.Value ?? 'append';
};

/** The hostile and plain requests every mode is held to, as CloudFront Functions would see them. */
const REQUESTS: Array<[string, CfHeaders]> = [
  ['no address headers', {}],
  ['a spoofed CF-Connecting-IP', { 'cf-connecting-ip': { value: SPOOF } }],
  ['a spoofed X-Forwarded-For list', { 'x-forwarded-for': { value: `${SPOOF}, 10.1.2.3` } }],
  ['an empty X-Forwarded-For', { 'x-forwarded-for': { value: '' } }],
  [
    'repeated spoofed headers of both kinds',
    {
      'cf-connecting-ip': { value: SPOOF, multiValue: [{ value: SPOOF }, { value: '192.0.2.1' }] },
      'x-forwarded-for': { value: SPOOF, multiValue: [{ value: SPOOF }, { value: '192.0.2.9' }] },
    },
  ],
];

describe('the address Dify records, from the viewer to extract_remote_ip', () => {
  const ALB_NODE = '10.0.1.17';
  const CLOUDFRONT_EDGE = '130.176.88.4';

  it('is the viewer’s in cloudfront mode, in both headers Dify trusts, whatever the viewer sends', async () => {
    const mode = albXffMode(build(VARIANTS.dev));
    for (const viewer of [VIEWER, VIEWER_IPV6]) {
      for (const [, headers] of REQUESTS) {
        const afterFunction = await runViewerIpFunction(viewerRequest(viewer, headers));
        const atOrigin = cloudFrontToOrigin(wireFrom(afterFunction.headers), viewer);
        const atDify = difyReads(albToTarget(atOrigin, mode, CLOUDFRONT_EDGE), ALB_NODE);
        expect(atDify).toEqual({ cfConnectingIp: viewer, xForwardedFor: viewer, recorded: viewer });
      }
    }
  });

  /**
   * The regional web ACL's refusals, evaluated as WAF would: a byte match of header names, after the
   * rule's text transformation, with oversize handling for more than 200 headers or 8 KB of them.
   */
  function refusedBy(built: ReturnType<typeof build>, headers: WireHeaders): string | undefined {
    const [[, acl]] = resources(built.template, 'AWS::WAFv2::WebACL');
    const rules = (acl.Properties?.Rules as Array<Record<string, any>>).sort((a, b) => a.Priority - b.Priority);
    const size = headers.reduce((sum, [name, value]) => sum + name.length + value.length + 4, 0);
    for (const rule of rules) {
      const match = rule.Statement.ByteMatchStatement;
      // The other rules judge the source address, the rate or the content: this client passes them.
      if (match?.FieldToMatch?.Headers === undefined) continue;
      expect(match.FieldToMatch.Headers).toMatchObject({ MatchPattern: { All: {} }, MatchScope: 'KEY' });
      expect(match.TextTransformations).toEqual([{ Priority: 0, Type: 'LOWERCASE' }]);
      expect(match.PositionalConstraint).toBe('EXACTLY');
      const oversize = headers.length > 200 || size > 8192;
      const hit = oversize
        ? match.FieldToMatch.Headers.OversizeHandling === 'MATCH'
        : headers.some(([name]) => name.toLowerCase() === match.SearchString);
      if (hit) {
        expect(rule.Action.Block.CustomResponse.ResponseCode).toBe(400);
        const bodies = acl.Properties?.CustomResponseBodies as Record<string, { Content: string }>;
        return bodies[rule.Action.Block.CustomResponse.CustomResponseBodyKey].Content;
      }
    }
    return undefined;
  }

  for (const variant of ['alb-zone', 'internal']) {
    it(`is the client’s in ${variant}: client-sent address headers are refused, and the ALB adds the only one`, () => {
      const built = build(VARIANTS[variant]);
      const mode = albXffMode(built);
      const client = VIEWER;
      for (const [description, cfHeaders] of REQUESTS) {
        // The ALB sees header names as the client spelled them; WAF must not care about case.
        const wire = wireFrom(cfHeaders).map(([name, value]): [string, string] => [name.toUpperCase(), value]);
        const answer = refusedBy(built, [['Host', 'dify.example.com'], ...wire]);
        if (wire.length === 0) {
          expect(answer).toBeUndefined();
          const atDify = difyReads(albToTarget([['Host', 'dify.example.com']], mode, client), ALB_NODE);
          expect(atDify).toEqual({ cfConnectingIp: undefined, xForwardedFor: client, recorded: client });
        } else {
          const first = CLIENT_ADDRESS_HEADERS.find(({ header }) =>
            wire.some(([name]) => name.toLowerCase() === header),
          );
          expect([description, answer]).toEqual([description, first?.answer]);
        }
      }
      // Headers WAF cannot inspect in full are refused: X-Forwarded-For could hide behind them.
      const padded: WireHeaders = [
        ...Array.from({ length: 200 }, (_, i): [string, string] => [`x-pad-${i}`, 'a']),
        ['X-Forwarded-For', SPOOF],
      ];
      expect(refusedBy(built, padded)).toMatch(/200 header fields/);
    });
  }
});
