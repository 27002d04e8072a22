import { LOG_SIGNALS, logSignalPattern } from '../../contracts/log-signals';
import { matchesFilterPattern } from '../helpers/filter-pattern';

/**
 * The log signals' metric filters against lines in their sources' real formats, on both platforms.
 *
 * Dify 1.13.3's api with LOG_OUTPUT_FORMAT=json writes each record through StructuredJSONFormatter
 * (api/core/logging/structured_formatter.py: ts, severity, service, caller, message, and trace_id when
 * there is one), and with ENABLE_REQUEST_LOGGING=true one access record per request from
 * ext_request_logging.py, whose message is `<method> <path> <status> <ms> <trace id>`.
 */
const difyLine = (message: string, caller = 'ext_request_logging.py:83') =>
  JSON.stringify({
    ts: '2026-12-02T10:00:00.123Z',
    severity: 'INFO',
    service: 'langgenius/dify',
    caller,
    message,
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  });
const access = (method: string, path: string, status: number) =>
  difyLine(`${method} ${path} ${status} 12.345 4bf92f3577b34da6a3ce929d0e0e4736`);
/** Squid's native access log line (logformat squid), as the SSRF proxy writes it to stdout. */
const squid = (code: string, method: string, url: string) =>
  `1764669600.123      0 10.0.3.17 ${code} 3899 ${method} ${url} - HIER_NONE/- text/html`;
/**
 * The record Container Insights' Fluent Bit writes for a container's line on EKS
 * (/aws/containerinsights/<cluster>/application): the line in `log`, the pod's identity in `kubernetes`.
 */
const fluentBit = (line: string, container: string) =>
  JSON.stringify({
    time: '2026-12-02T10:00:00.123456789Z',
    stream: 'stdout',
    _p: 'F',
    log: line,
    kubernetes: {
      pod_name: `${container}-7d9f6c5b8-x2k4p`,
      namespace_name: 'dify',
      container_name: container,
      container_image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdk-assets:${container}`,
      host: 'i-0abc.eu-west-1.compute.internal',
    },
  });

const CASES: Array<[keyof typeof LOG_SIGNALS, string, string, boolean]> = [
  ['consoleSignInFailures', 'a wrong password', access('POST', '/console/api/login', 401), true],
  ['consoleSignInFailures', 'an address locked after failures', access('POST', '/console/api/login', 429), true],
  ['consoleSignInFailures', 'a successful sign-in', access('POST', '/console/api/login', 200), false],
  ['consoleSignInFailures', 'a sign-in page load', access('GET', '/console/api/login', 405), false],
  ['consoleSignInFailures', 'a refused logout', access('POST', '/console/api/logout', 401), false],
  ['consoleSignInFailures', 'a 401 elsewhere in the console', access('GET', '/console/api/apps', 401), false],
  [
    'consoleSignInFailures',
    'an error line mentioning the path',
    difyLine('login failed for /console/api/login', 'login.py:90'),
    false,
  ],
  ['serviceApiAuthFailures', 'a chat call with a wrong key', access('POST', '/v1/chat-messages', 401), true],
  [
    'serviceApiAuthFailures',
    'a nested path with a wrong key',
    access('GET', '/v1/datasets/0d6b1c1e-7f1a-4e5b-9a34-2f5d1c3b9e70/documents', 401),
    true,
  ],
  ['serviceApiAuthFailures', 'a chat call with a good key', access('POST', '/v1/chat-messages', 200), false],
  ['serviceApiAuthFailures', 'a missing route', access('POST', '/v1/chat-messages', 404), false],
  ['serviceApiAuthFailures', 'a console 401', access('GET', '/console/api/apps', 401), false],
  ['serviceApiAuthFailures', 'a web app 401', access('GET', '/api/parameters', 401), false],
  [
    'deniedEgress',
    'the metadata service refused',
    squid('TCP_DENIED/403', 'GET', 'http://169.254.169.254/latest/meta-data/'),
    true,
  ],
  ['deniedEgress', 'a private range refused over CONNECT', squid('TCP_DENIED/403', 'CONNECT', '10.0.0.5:443'), true],
  ['deniedEgress', 'an allowed fetch', squid('TCP_TUNNEL/200', 'CONNECT', 'api.openai.com:443'), false],
  ['deniedEgress', 'a fetch that missed the cache', squid('TCP_MISS/200', 'GET', 'http://example.com/'), false],
];

describe('log signal filters on lines in their real formats', () => {
  it.each(CASES)('%s (ECS): %s -> %s', (name, _what, line, expected) => {
    expect(matchesFilterPattern(logSignalPattern(LOG_SIGNALS[name]), line)).toBe(expected);
  });

  it.each(CASES)('%s (EKS, Fluent Bit record): %s -> %s', (name, _what, line, expected) => {
    const container = LOG_SIGNALS[name].source === 'Api' ? 'api' : 'ssrf-proxy';
    expect(matchesFilterPattern(logSignalPattern(LOG_SIGNALS[name], container), fluentBit(line, container))).toBe(
      expected,
    );
  });

  it('on EKS, counts only the lines of the signal’s own container', () => {
    const line = access('POST', '/console/api/login', 401);
    const pattern = logSignalPattern(LOG_SIGNALS.consoleSignInFailures, 'api');
    expect(matchesFilterPattern(pattern, fluentBit(line, 'api'))).toBe(true);
    expect(matchesFilterPattern(pattern, fluentBit(line, 'web'))).toBe(false);
  });

  it('has a line that counts and one that does not for every signal', () => {
    for (const name of Object.keys(LOG_SIGNALS)) {
      expect(new Set(CASES.filter(([n]) => n === name).map(([, , , expected]) => expected))).toEqual(
        new Set([true, false]),
      );
    }
  });
});
