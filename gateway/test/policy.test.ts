import { lookup } from 'node:dns';
import { providerPoolSchema } from '../../contracts/gateway-documents';
import { checkBaseUrlHost, guardedLookup, parseAllowedNetworks, refusal } from '../src/provider-address';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, type HarnessOptions, poolOf, startGateway } from './helpers/harness';
import { exchange, parseResponses, rawPost } from './helpers/raw-http';

/**
 * Policy at the edge of the provider: which addresses a provider key may be sent to, which body
 * fields, tool types and headers reach the provider, and that what reaches it is exactly what was
 * screened.
 */

const KEY = 'sk-policy-key-00000000000000000';

describe('provider addresses', () => {
  const none = parseAllowedNetworks(undefined);

  it('takes https base URLs only, without credentials, query or fragment', () => {
    const parse = (baseUrl: string) =>
      providerPoolSchema.safeParse({ version: 1, providers: { custom: { baseUrl, models: ['m'] } } });
    expect(parse('https://llm.example.com/v1').success).toBe(true);
    for (const [baseUrl, message] of [
      ['http://llm.example.com', 'expected an https:// URL'],
      ['https://user:pw@llm.example.com', 'user name or password'],
      ['https://llm.example.com/?key=x', 'query or a fragment'],
    ]) {
      const result = parse(baseUrl);
      expect(result.success).toBe(false);
      expect(JSON.stringify(result.error?.issues)).toContain(message);
    }
  });

  it.each([
    ['8.8.8.8', undefined],
    ['2606:4700:4700::1111', undefined],
    ['127.0.0.1', 'a loopback address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS'],
    ['10.1.2.3', 'a private address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS'],
    ['100.64.0.1', 'a carrierGradeNat address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS'],
    ['169.254.169.254', 'a linkLocal address'],
    ['169.254.170.2', 'a linkLocal address'],
    ['fe80::1', 'a linkLocal address'],
    ['fd00:ec2::254', 'a uniqueLocal address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS'],
    ['::ffff:127.0.0.1', 'a loopback address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS'],
    ['0.0.0.0', 'a unspecified address'],
    ['224.0.0.1', 'a multicast address'],
  ])('%s: %s', (address, why) => {
    expect(refusal(address, none)).toBe(why);
  });

  it('opens only the private networks a deployment names, and never link-local ones', () => {
    const vpc = parseAllowedNetworks('10.1.0.0/16, 127.0.0.1/32');
    expect([refusal('10.1.9.9', vpc), refusal('10.2.0.1', vpc) !== undefined, refusal('127.0.0.1', vpc)]).toEqual([
      undefined,
      true,
      undefined,
    ]);
    expect(() => parseAllowedNetworks('169.254.0.0/16')).toThrow(/linkLocal range, which a provider may never use/);
    expect(() => parseAllowedNetworks('10.0.0.0/33')).toThrow(/'10.0.0.0\/33' is not a CIDR/);
    expect(() => checkBaseUrlHost('https://169.254.169.254/v1', vpc)).toThrow(/refused: a linkLocal address/);
    expect(() => checkBaseUrlHost('https://[::1]:8443', vpc)).toThrow(/refused: a loopback address/);
    expect(() => checkBaseUrlHost('https://api.openai.com', vpc)).not.toThrow();
  });

  it('with no internet egress (PROVIDER_PUBLIC_ADDRESSES=refuse), opens the named private networks and nothing public', () => {
    // Why: in a closed network a public provider can never answer; refusing it names the host at
    // once, where a connection attempt would only time out on every request.
    const closed = parseAllowedNetworks('10.20.0.0/16', true);
    expect(refusal('10.20.1.1', closed)).toBeUndefined();
    expect(refusal('8.8.8.8', closed)).toBe('a public address, and this deployment has no internet egress');
    expect(refusal('10.21.0.1', closed)).toBe('a private address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS');
    expect(refusal('169.254.169.254', closed)).toBe('a linkLocal address');
    expect(() => checkBaseUrlHost('https://8.8.8.8/v1', closed)).toThrow(
      /provider address 8\.8\.8\.8 refused: a public address, and this deployment has no internet egress/,
    );
    expect(refusal('8.8.8.8', parseAllowedNetworks('10.20.0.0/16'))).toBeUndefined();
  });

  it('refuses a name that resolves to a refused address, when it connects', async () => {
    const resolved = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      guardedLookup(none)('localhost', { all: true }, (error) => resolve(error)),
    );
    expect(resolved?.message).toMatch(/provider address localhost refused: it resolves to a loopback address/);
    // The same name, allowed, resolves as the system resolves it.
    const allowed = await new Promise<string>((resolve) =>
      guardedLookup(parseAllowedNetworks('127.0.0.0/8,::1/128'))('localhost', {}, (_e, address) =>
        resolve(String(address)),
      ),
    );
    const system = await new Promise<string>((resolve) => lookup('localhost', (_e, address) => resolve(address)));
    expect(allowed).toBe(system);
  });
});

describe('the gateway at the edge of the provider', () => {
  let provider: FakeProvider;
  let gw: Harness | undefined;
  beforeAll(async () => {
    provider = await startFakeProvider();
    provider.behave(KEY, 'ok');
  });
  afterAll(async () => {
    await provider.close();
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    provider.received.length = 0;
  });
  const start = async (options: Partial<HarnessOptions> = {}, kind: 'openai' | 'anthropic' = 'openai') => {
    gw = await startGateway({
      pool: poolOf(provider.url, [{ id: 'k1', key: KEY }], kind, kind === 'anthropic' ? ['claude-test'] : ['gpt-test']),
      ...options,
    });
    return gw;
  };
  const post = async (g: Harness, path: string, body: unknown, headers: Record<string, string> = {}) => {
    const reply = await fetch(`${g.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}`, ...headers },
      body: JSON.stringify(body),
    });
    return { status: reply.status, body: (await reply.json()) as Record<string, any> };
  };
  const chat = (extra: Record<string, unknown> = {}) => ({
    model: 'gpt-test',
    messages: [{ role: 'user', content: 'hi' }],
    ...extra,
  });
  const messages = (extra: Record<string, unknown> = {}) => ({
    model: 'claude-test',
    max_tokens: 16,
    messages: [{ role: 'user', content: 'hi' }],
    ...extra,
  });

  it('sends no provider key to an address outside the policy: 502, with a log line naming the host', async () => {
    const g = await start({ allowedPrivateCidrs: '' });
    const reply = await post(g, '/v1/chat/completions', chat());
    expect([reply.status, reply.body.error.type]).toEqual([502, 'upstream_error']);
    expect(provider.received).toHaveLength(0);
    const refused = g.lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'provider_address_refused');
    expect(refused[0].reason).toBe(
      'provider address 127.0.0.1 refused: a loopback address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS',
    );
    expect(g.lines.join('\n')).not.toContain(KEY);
  });

  it.each([
    ['store', 'stores the completion at the provider'],
    ['metadata', 'tags a stored completion at the provider'],
    ['web_search_options', 'makes the provider search the web'],
    ['some_new_field', undefined],
  ])('refuses the field %s with 400, naming it and how to allow it', async (field, why) => {
    const g = await start();
    const reply = await post(g, '/v1/chat/completions', chat({ [field]: true }));
    expect([reply.status, reply.body.error.type, reply.body.error.field]).toEqual([400, 'field_not_allowed', field]);
    expect(reply.body.error.message).toContain(`forwarding.fields.chat`);
    if (why !== undefined) expect(reply.body.error.message).toContain(why);
    expect(provider.received).toHaveLength(0);
  });

  it('forwards a field the client record allows', async () => {
    const g = await start({
      clients: [{ id: 'dify', forwarding: { fields: { chat: ['store'] }, anthropicBetas: [], toolTypes: [] } }],
    });
    expect((await post(g, '/v1/chat/completions', chat({ store: false }))).status).toBe(200);
    expect(JSON.parse(provider.received[0].body).store).toBe(false);
  });

  it('forwards what Dify sends by default', async () => {
    const g = await start();
    const dify = chat({
      stream: false,
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 64,
      presence_penalty: 0,
      frequency_penalty: 0,
      stop: ['\n\n'],
      user: 'dify-user-1',
      response_format: { type: 'json_object' },
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }],
      tool_choice: 'auto',
    });
    expect((await post(g, '/v1/chat/completions', dify)).status).toBe(200);
  });

  it('refuses a provider-side tool unless the client record allows its type', async () => {
    const anthropic = await start({}, 'anthropic');
    const search = messages({ tools: [{ type: 'web_search_20250305', name: 'web_search' }] });
    const refused = await post(anthropic, '/v1/messages', search);
    expect([refused.status, refused.body.error.type, refused.body.error.tool_type]).toEqual([
      400,
      'tool_not_allowed',
      'web_search_20250305',
    ]);
    const custom = messages({ tools: [{ name: 'lookup', description: 'd', input_schema: { type: 'object' } }] });
    expect((await post(anthropic, '/v1/messages', custom)).status).toBe(200);
    await anthropic.close();
    gw = undefined;
    const allowed = await start(
      { clients: [{ id: 'dify', forwarding: { fields: {}, anthropicBetas: [], toolTypes: ['web_search_20250305'] } }] },
      'anthropic',
    );
    expect((await post(allowed, '/v1/messages', search)).status).toBe(200);
  });

  it('refuses an anthropic-beta value that is not allowed, and a malformed anthropic-version', async () => {
    const g = await start({}, 'anthropic');
    const mcp = await post(g, '/v1/messages', messages(), {
      'anthropic-beta': 'prompt-caching-2024-07-31,mcp-client-2025-04-04',
    });
    expect([mcp.status, mcp.body.error.type, mcp.body.error.header]).toEqual([
      400,
      'header_not_allowed',
      'anthropic-beta',
    ]);
    expect(mcp.body.error.message).toContain('"mcp-client-2025-04-04"');
    const version = await post(g, '/v1/messages', messages(), { 'anthropic-version': 'latest' });
    expect([version.status, version.body.error.header]).toEqual([400, 'anthropic-version']);
    expect(provider.received).toHaveLength(0);
  });

  it('counts tokens on /v1/messages/count_tokens, screening the prompt, reserving nothing', async () => {
    const g = await start({ clients: [{ id: 'dify', tokensPerMinute: 1 }] }, 'anthropic');
    const counted = await post(g, '/v1/messages/count_tokens', {
      model: 'claude-test',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect([counted.status, counted.body]).toEqual([200, { input_tokens: 11 }]);
    expect(provider.received[0].url).toBe('/v1/messages/count_tokens');
    const blocked = await post(g, '/v1/messages/count_tokens', {
      model: 'claude-test',
      messages: [{ role: 'user', content: 'card 4111 1111 1111 1111' }],
    });
    expect([blocked.status, blocked.body.error.type]).toEqual([400, 'guardrail_blocked']);
  });

  it('forwards exactly what was screened: of a duplicated key, the value the provider would not have read never arrives', async () => {
    const g = await start();
    // JSON.parse keeps the last `messages`; a provider's parser might keep the first. The gateway
    // screens the parsed body and forwards it serialized again, never the bytes it was given.
    const body = `{"model":"gpt-test","messages":[{"role":"user","content":"card 4111 1111 1111 1111"}],"messages":[{"role":"user","content":"hi"}]}`;
    const { bytes } = await exchange(Number(new URL(g.url).port), (socket) =>
      socket.write(rawPost('/v1/chat/completions', g.keys.dify, body, 'connection: close\r\n')),
    );
    expect(parseResponses(bytes).responses[0].status).toBe(200);
    const forwarded = provider.received[0].body;
    expect(forwarded).toBe('{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}');
  });
});
