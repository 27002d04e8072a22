import OpenAI from 'openai';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, poolOf, startGateway } from './helpers/harness';

/**
 * The official `openai` npm client as a real client of the gateway: what Dify's
 * "OpenAI-API-compatible" provider does, with the gateway's URL and a client key.
 */
describe('the official openai client against the gateway', () => {
  let provider: FakeProvider;
  let gw: Harness;
  let client: OpenAI;
  beforeAll(async () => {
    provider = await startFakeProvider();
    provider.behave('sk-openai-client-test-key-0000000000', 'ok');
    gw = await startGateway({
      pool: poolOf(provider.url, [{ id: 'k1', key: 'sk-openai-client-test-key-0000000000' }]),
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.keys.dify, maxRetries: 0 });
  });
  afterAll(async () => {
    await gw.close();
    await provider.close();
  });

  it('completes a chat', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(completion.choices[0].message.content).toBe('Hello, wörld');
    expect(completion.usage?.total_tokens).toBe(12);
  });

  it('streams a chat, reading choices[0] of every chunk as naive clients do', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-test',
      stream: true,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0].delta.content ?? '';
    expect(text).toBe('Hello, wörld');
  });

  it('streams a chat with usage when asked for it', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-test',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Hello' }],
    });
    let total: number | undefined;
    for await (const chunk of stream) total = chunk.usage?.total_tokens ?? total;
    expect(total).toBe(12);
  });

  it('embeds', async () => {
    const embedding = await client.embeddings.create({ model: 'text-embedding-test', input: 'Hello' });
    expect(embedding.data[0].embedding).toEqual([0.25, -0.5, 0.125]);
  });

  it('lists models', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    expect(models.sort()).toEqual(['gpt-test', 'text-embedding-test']);
  });

  it('raises AuthenticationError for a wrong key, with the gateway’s message', async () => {
    const wrong = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: 'dgw_dify_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',
      maxRetries: 0,
    });
    await expect(
      wrong.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('raises NotFoundError for a model the gateway does not serve, with the gateway’s error type', async () => {
    const error = await client.chat.completions
      .create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).type).toBe('model_not_found');
  });
});
