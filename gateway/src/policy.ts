/**
 * What a client may send to a provider through the gateway: the body fields, tool types and header
 * values each API forwards. Everything else is refused with a 400 naming it, never dropped silently
 * (the client would get an answer to a request it did not make) and never passed through (a field the
 * gateway does not know can switch on a provider-side feature its policy knows nothing of: stored
 * responses, web search, remote MCP servers, code execution).
 *
 * The defaults admit what Dify's OpenAI-compatible and Anthropic providers send (README); an operator
 * widens them per client in the client record's `forwarding`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from './errors';
import type { Api, ClientRecord } from '../../contracts/gateway-documents';

/** Top-level body fields forwarded by default, per API. */
export const DEFAULT_FIELDS: Readonly<Record<Api, readonly string[]>> = {
  chat: [
    'model',
    'messages',
    'stream',
    'stream_options',
    'max_tokens',
    'max_completion_tokens',
    'temperature',
    'top_p',
    'frequency_penalty',
    'presence_penalty',
    'stop',
    'seed',
    'n',
    'logit_bias',
    'logprobs',
    'top_logprobs',
    'response_format',
    'tools',
    'tool_choice',
    'parallel_tool_calls',
    'functions',
    'function_call',
    'user',
    'safety_identifier',
    'prompt_cache_key',
    'reasoning_effort',
    'verbosity',
    'prediction',
    'modalities',
    'audio',
  ],
  completions: [
    'model',
    'prompt',
    'best_of',
    'echo',
    'frequency_penalty',
    'logit_bias',
    'logprobs',
    'max_tokens',
    'n',
    'presence_penalty',
    'seed',
    'stop',
    'stream',
    'stream_options',
    'suffix',
    'temperature',
    'top_p',
    'user',
  ],
  embeddings: ['model', 'input', 'dimensions', 'encoding_format', 'user'],
  messages: [
    'model',
    'messages',
    'max_tokens',
    'stream',
    'system',
    'temperature',
    'top_p',
    'top_k',
    'stop_sequences',
    'thinking',
    'output_config',
    'metadata',
    'tools',
    'tool_choice',
    'cache_control',
  ],
  count_tokens: ['model', 'messages', 'system', 'tools', 'thinking', 'tool_choice', 'output_config', 'cache_control'],
};

/**
 * Fields refused by default, and why: each one stores data at the provider or makes the provider
 * reach another system. Named in the error, so the client's operator knows what they would switch on.
 */
export const REFUSED_FIELDS: Readonly<Record<string, string>> = {
  store: 'stores the completion at the provider',
  metadata: 'tags a stored completion at the provider',
  web_search_options: 'makes the provider search the web',
  prompt_cache_retention: 'keeps the prompt cached at the provider for longer',
  data_sources: 'makes Azure OpenAI query external indexes',
  service_tier: 'changes the provider billing tier',
  mcp_servers: 'makes the provider connect to remote MCP servers',
  container: 'runs code in a provider-side container',
  fallbacks: 'sends the request to other models',
};

/** Anthropic `anthropic-beta` values forwarded by default: those Dify sends, and ones that change only the model's output. */
export const DEFAULT_ANTHROPIC_BETAS: readonly string[] = [
  'context-1m-2025-08-07',
  'output-128k-2025-02-19',
  'task-budgets-2026-03-13',
  'pdfs-2024-09-25',
  'max-tokens-3-5-sonnet-2024-07-15',
  'prompt-caching-2024-07-31',
  'token-counting-2024-11-01',
  'interleaved-thinking-2025-05-14',
  'token-efficient-tools-2025-02-19',
  'fine-grained-tool-streaming-2025-05-14',
  'model-context-window-exceeded-2025-08-26',
];

/**
 * Tool types run by the caller, not the provider: OpenAI's function and custom tools, Anthropic's
 * custom tools (no type) and its client-executed bash, text editor, computer and memory tools.
 * Provider-side tools (web search, web fetch, code execution, MCP toolsets) need the client's
 * `forwarding.toolTypes`.
 */
const CLIENT_TOOL = /^(function|custom|(bash|text_editor|computer|memory)_\d{8})$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const quoted = (name: string) => JSON.stringify(name.slice(0, 64));

/** Refuses a body with a top-level field or a tool type the client may not send to this API. */
export function checkBody(api: Api, body: Record<string, unknown>, client: ClientRecord): void {
  const extra = client.forwarding.fields[api] ?? [];
  for (const field of Object.keys(body)) {
    if (DEFAULT_FIELDS[api].includes(field) || extra.includes(field)) continue;
    const why = REFUSED_FIELDS[field];
    throw new GatewayError(
      400,
      'field_not_allowed',
      `field ${quoted(field)} is not forwarded on this API${why ? ` (it ${why})` : ''}; an operator can allow it for client '${client.id}' in its forwarding.fields.${api}`,
      { field: field.slice(0, 64) },
    );
  }
  const tools = body.tools;
  if (!Array.isArray(tools)) return;
  for (const tool of tools) {
    const type = isObject(tool) ? tool.type : undefined;
    if (
      type === undefined ||
      (typeof type === 'string' && (CLIENT_TOOL.test(type) || client.forwarding.toolTypes.includes(type)))
    ) {
      continue;
    }
    throw new GatewayError(
      400,
      'tool_not_allowed',
      `tool type ${quoted(String(type))} runs at the provider and is not forwarded; an operator can allow it for client '${client.id}' in its forwarding.toolTypes`,
      { tool_type: String(type).slice(0, 64) },
    );
  }
}

/**
 * Anthropic's version and beta headers from the client, checked: a version is a date, and every
 * beta value (the header may be sent more than once, and each may list several) must be allowed.
 */
export function anthropicHeaders(headers: IncomingHttpHeaders, client: ClientRecord): Record<string, string> {
  const out: Record<string, string> = {};
  const version = headers['anthropic-version'];
  if (version !== undefined) {
    if (typeof version !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(version)) {
      throw new GatewayError(400, 'header_not_allowed', 'anthropic-version: expected one date, YYYY-MM-DD', {
        header: 'anthropic-version',
      });
    }
    out['anthropic-version'] = version;
  }
  const raw = headers['anthropic-beta'];
  const values = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
  for (const value of values) {
    if (DEFAULT_ANTHROPIC_BETAS.includes(value) || client.forwarding.anthropicBetas.includes(value)) continue;
    throw new GatewayError(
      400,
      'header_not_allowed',
      `anthropic-beta value ${quoted(value)} is not forwarded; an operator can allow it for client '${client.id}' in its forwarding.anthropicBetas`,
      { header: 'anthropic-beta' },
    );
  }
  if (values.length > 0) out['anthropic-beta'] = [...new Set(values)].join(',');
  return out;
}
